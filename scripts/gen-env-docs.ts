/**
 * Regenerates the environment-variable tables of docs/configuration.md and
 * docs/ko/configuration.md from the adapters' descriptors (what the CLI lists).
 * `pnpm docs:env` (after `pnpm build`); `--check` only reports whether they differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
// Straight from the sources: the descriptors' own imports resolve to the built packages.
import { replaceEnvTable } from '../packages/core/src/config/env-docs.js';
import { envDocsTable } from '../packages/cli/src/env-docs.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
let stale = 0;
for (const [file, lang] of [['docs/configuration.md', 'en'], ['docs/ko/configuration.md', 'ko']] as const) {
  const path = `${root}${file}`;
  const before = readFileSync(path, 'utf8');
  const after = replaceEnvTable(before, envDocsTable(lang));
  if (after === before) continue;
  stale++;
  if (check) console.error(`${file}: the env-variable table differs from the descriptors; run pnpm docs:env`);
  else {
    writeFileSync(path, after);
    console.log(`${file}: table regenerated`);
  }
}
process.exitCode = check && stale > 0 ? 1 : 0;
