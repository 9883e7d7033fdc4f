/**
 * The Quick start demo (`./scripts/demo.sh`; or, from the repository root,
 * `TSX_TSCONFIG_PATH=examples/quickstart/tsconfig.json node --import tsx examples/quickstart/src/main.ts`
 * to run on the packages' sources, or without TSX_TSCONFIG_PATH after `pnpm build`).
 *
 *   QDRANT_URL, QDRANT_API_KEY   also back up, break and restore a demo collection on that Qdrant
 *   BACKUP_DIR                   where the sets go (default ./backups)
 *   --small                      a tenth of the data (used by the tests)
 *   --skip-restore               skip the restore, to see the integrity check fail (exit 1)
 *
 * Exits 1 when any table, key or point is not back, or when a step fails.
 */
import { parseArgs } from 'node:util';
import { formatSummary, runQuickstart } from './quickstart.js';
import { SMALL_SIZE } from './seed.js';

const { values } = parseArgs({
  options: { small: { type: 'boolean', default: false }, 'skip-restore': { type: 'boolean', default: false } },
  allowPositionals: false,
});
const qdrantUrl = process.env.QDRANT_URL?.trim();
const apiKey = process.env.QDRANT_API_KEY?.trim();

console.log('Scholaria backup Quick start: PostgreSQL + Redis' + (qdrantUrl ? ` + Qdrant (${qdrantUrl})` : ' (set QDRANT_URL to add Qdrant)'));
try {
  const result = await runQuickstart({
    backupDir: process.env.BACKUP_DIR?.trim() || 'backups',
    ...(qdrantUrl ? { qdrant: { url: qdrantUrl, ...(apiKey ? { apiKey } : {}) } } : {}),
    ...(values.small ? { size: SMALL_SIZE, qdrantPoints: 100 } : {}),
    skipRestore: values['skip-restore'],
    log: (line) => console.log(line),
  });
  console.log(formatSummary(result));
  process.exitCode = result.ok ? 0 : 1;
} catch (error) {
  const e = error as Error & { hint?: string };
  console.error(`\nThe demo failed: ${e.message}${e.hint ? `\nHint: ${e.hint}` : ''}`);
  process.exitCode = 1;
}
