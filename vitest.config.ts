import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import workspace packages from source, so they run without a build; the
// "published packages" test imports the built dist/ on purpose.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
export const workspaceAliases = readdirSync(packagesDir).flatMap((dir) => [
  { find: new RegExp(`^@scholaria/backup-${dir}$`), replacement: `${packagesDir}${dir}/src/index.ts` },
  // Subpath entries: an adapter's `./env` descriptor, the testkit's `./conformance` contract.
  { find: new RegExp(`^@scholaria/backup-${dir}/(env|conformance)$`), replacement: `${packagesDir}${dir}/src/$1.ts` },
  // postgres' `./wal-archive`: the WAL archive without the pg client (wal-push loads only this).
  { find: new RegExp(`^@scholaria/backup-${dir}/wal-archive$`), replacement: `${packagesDir}${dir}/src/wal-archive-entry.ts` },
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
