import type { PruneResult, RetentionPolicy } from '@scholaria/backup-core';
import type { Output } from '../cli-io.js';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { table } from '../format.js';
import { pitrConfigured, pruneWal } from '../wal/wal-runtime.js';

export function pruneJson(result: PruneResult) {
  return {
    dryRun: result.dryRun,
    keep: result.keep.map((d) => ({ id: d.id, storage: d.storage, tier: d.tier ?? null, status: d.status, reasons: d.reasons })),
    remove: result.remove.map((d) => ({ id: d.id, storage: d.storage, tier: d.tier ?? null, status: d.status, reasons: d.reasons })),
    failed: result.failed,
    staleTempFiles: result.staleTempFiles,
    ...(result.warnings?.length ? { warnings: result.warnings } : {}),
  };
}

export function printPrune(out: Output, result: PruneResult, _timeZone: string): void {
  const verb = result.dryRun ? 'would remove' : 'removed';
  out.line(`prune${result.dryRun ? ' (dry run, nothing deleted)' : ''}: keeps ${result.keep.length}, ${verb} ${result.remove.length}`);
  const rows = [
    ...result.remove.map((d) => [result.dryRun ? 'remove' : 'removed', d.id, d.tier ?? '-', d.storage, d.reasons.join('; ')]),
    ...result.keep.map((d) => ['keep', d.id, d.tier ?? '-', d.storage, d.reasons.join('; ')]),
  ];
  if (rows.length > 0) out.line(table(['ACTION', 'SET', 'TIER', 'STORAGE', 'WHY'], rows));
  for (const f of result.staleTempFiles) {
    out.line(`${result.dryRun ? 'would remove' : 'removed'} stale temp file ${f.key} on ${f.storage} (left by a killed writer)`);
  }
  for (const f of result.failed) out.line(`could not delete ${f.key}: ${f.error}`);
  for (const w of result.warnings ?? []) out.line(`warning: ${w}`);
}

export async function pruneCommand(ctx: CommandContext, options: { dryRun: boolean; policy?: RetentionPolicy }): Promise<number> {
  return await withRuntime(ctx, options.dryRun ? undefined : 'prune', async ({ rt }) => {
    if (options.policy && !ctx.json) {
      ctx.out.note(`policy from the command line, for every set as one group (the configured tier policies are not used): ${JSON.stringify(options.policy)}`);
    }
    const result = await rt.engine.prune({ dryRun: options.dryRun, ...(options.policy ? { policy: options.policy } : {}) });
    const wal = pitrConfigured(rt) ? await pruneWal(rt, { dryRun: options.dryRun }) : undefined;
    if (ctx.json) ctx.out.document({ ...pruneJson(result), ...(wal ? { wal } : {}) });
    else {
      printPrune(ctx.out, result, rt.timeZone);
      if (wal) {
        ctx.out.line(
          `WAL archive: ${options.dryRun ? 'would remove' : 'removed'} ${wal.remove.length} file${wal.remove.length === 1 ? '' : 's'}${wal.oldestNeeded ? ` older than ${wal.oldestNeeded} (start of the oldest kept base backup)` : ' (no kept base backup: everything kept)'}`,
        );
        for (const f of wal.failed) ctx.out.line(`could not delete WAL file ${f.name}: ${f.error}`);
      }
    }
    return result.failed.length > 0 || (wal?.failed.length ?? 0) > 0 ? EXIT.FAILURE : EXIT.OK;
  });
}
