/**
 * The Quick start demo (`./scripts/demo.sh`, or `node --import tsx examples/quickstart/src/main.ts`).
 * Set QDRANT_URL (and QDRANT_API_KEY) to include a Qdrant collection; BACKUP_DIR to write the
 * sets elsewhere than ./backups. Exits 1 when any table, key or point is not back.
 */
import { formatSummary, runQuickstart } from './quickstart.js';

const qdrantUrl = process.env.QDRANT_URL?.trim();
const apiKey = process.env.QDRANT_API_KEY?.trim();

console.log('Scholaria backup Quick start: PostgreSQL + Redis' + (qdrantUrl ? ` + Qdrant (${qdrantUrl})` : ' (set QDRANT_URL to add Qdrant)'));
try {
  const result = await runQuickstart({
    backupDir: process.env.BACKUP_DIR?.trim() || 'backups',
    ...(qdrantUrl ? { qdrant: { url: qdrantUrl, ...(apiKey ? { apiKey } : {}) } } : {}),
    log: (line) => console.log(line),
  });
  console.log(formatSummary(result));
  process.exitCode = result.ok ? 0 : 1;
} catch (error) {
  const e = error as Error & { hint?: string };
  console.error(`\nThe demo failed: ${e.message}${e.hint ? `\nHint: ${e.hint}` : ''}`);
  process.exitCode = 1;
}
