import type { BackupEngine, BackupEngineOptions } from './types.js';
import { createEngineContext } from './engine-context.js';
import { runBackup } from './run-backup.js';
import { runRestore } from './run-restore.js';
import { runVerify } from './run-verify.js';
import { runPrune } from './run-prune.js';
import { runHealth } from './run-health.js';
import { runDrill } from '../drill/run-drill.js';
import { readPrimaryCatalog, resolveSet } from './set-catalog.js';
import { createAuditLog } from '../audit/audit-log.js';

/**
 * Composes sources, storages, codecs and notifiers into the engine. Validates the options
 * (throws ConfigError listing every problem) and does no I/O until an operation is called.
 */
export function createBackupEngine(options: BackupEngineOptions): BackupEngine {
  const ctx = createEngineContext(options);
  return {
    options,
    backup: (o) => runBackup(ctx, o),
    restore: (o) => runRestore(ctx, o),
    verify: (o) => runVerify(ctx, o),
    prune: (o) => runPrune(ctx, o),
    health: (o) => runHealth(ctx, o),
    drill: (o) => runDrill(ctx, o),
    async list(o = {}) {
      const { catalog } = await readPrimaryCatalog(ctx);
      return catalog
        .filter((e) => o.includeIncomplete || e.status !== 'incomplete')
        .map(({ files: _files, ...summary }) => summary);
    },
    async readManifest(ref, o = {}) {
      return (await resolveSet(ctx, ref, o)).entry.manifest;
    },
    async verifyAudit() {
      return await createAuditLog(ctx.storages[0]!, { actor: ctx.actor }).verify();
    },
    async close() {
      await Promise.allSettled([
        ...ctx.sources.map((s) => s.close?.()),
        ...ctx.storages.map((s) => s.close?.()),
      ]);
    },
  };
}
