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

export interface ListOptions {
  all: boolean;
  /** Only sets of this tier. */
  tier?: string;
  /** Only sets in which each of these components was backed up successfully. */
  component: string[];
  /** Only the newest N (after the filters). */
  last?: number;
}

export async function listCommand(ctx: CommandContext, options: ListOptions): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    let sets = await rt.engine.list({ includeIncomplete: options.all });
    if (options.tier !== undefined) sets = sets.filter((s) => s.tier === options.tier);
    if (options.component.length > 0) sets = sets.filter((s) => options.component.every((n) => s.components.some((c) => c.name === n && c.status === 'ok')));
    if (options.last !== undefined) sets = sets.slice(0, options.last);
    const filtered = options.tier !== undefined || options.component.length > 0;
    if (ctx.json) {
      ctx.out.document(sets.map(setJson));
      return EXIT.OK;
    }
    if (sets.length === 0) {
      ctx.out.line(
        `no backup sets${filtered ? ' match' : ''}${options.all ? '' : ' (incomplete ones are shown with --all)'} on ${rt.storages[0]?.name ?? 'the storage'}`,
      );
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
