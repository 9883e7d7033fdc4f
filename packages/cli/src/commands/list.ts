import type { BackupSetSummary } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { formatBytes, formatTime, table } from '../format.js';

export function setJson(s: BackupSetSummary) {
  return {
    id: s.id,
    status: s.status,
    tier: s.tier ?? null,
    time: s.time.toISOString(),
    startedAt: s.startedAt ?? null,
    finishedAt: s.finishedAt ?? null,
    bytes: s.bytes,
    components: s.components,
    storage: s.storage,
    encrypted: Boolean(s.manifest?.encryption),
    problem: s.problem ?? null,
  };
}

export async function listCommand(ctx: CommandContext, options: { all: boolean }): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const sets = await rt.engine.list({ includeIncomplete: options.all });
    if (ctx.json) {
      ctx.out.document(sets.map(setJson));
      return EXIT.OK;
    }
    if (sets.length === 0) {
      ctx.out.line(`no backup sets${options.all ? '' : ' (incomplete ones are shown with --all)'} on ${rt.storages[0]?.name ?? 'the storage'}`);
      return EXIT.OK;
    }
    ctx.out.line(
      table(
        ['SET', 'TIER', 'STATUS', 'STARTED', 'SIZE', 'COMPONENTS'],
        sets.map((s) => [
          s.id,
          s.tier ?? '-',
          s.status,
          formatTime(s.startedAt ?? s.time, rt.timeZone),
          formatBytes(s.bytes),
          s.problem ? `(${s.problem})` : s.components.map((c) => (c.status === 'ok' ? c.name : `${c.name}:FAILED`)).join(', ') || '-',
        ]),
      ),
    );
    return EXIT.OK;
  });
}
