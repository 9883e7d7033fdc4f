import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import workspace packages from source, so they run without a build; the
// "published packages" test imports the built dist/ on purpose.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
export const workspaceAliases = readdirSync(packagesDir).flatMap((dir) => [
  { find: new RegExp(`^@scholaria/backup-${dir}$`), replacement: `${packagesDir}${dir}/src/index.ts` },
  // The `./env` entry of an adapter: its `.env` descriptor, light enough to load at start.
  { find: new RegExp(`^@scholaria/backup-${dir}/env$`), replacement: `${packagesDir}${dir}/src/env.ts` },
]);

export default defineConfig({
  resolve: { alias: workspaceAliases },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/*.faults.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
