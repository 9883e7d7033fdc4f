import { resolve } from 'node:path';
import { BackupError, type RestoreResult } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { formatDuration } from '../format.js';
import { basePointsOf, PITR_COMPONENT, postgresModule, walArchiveOf } from '../wal/wal-runtime.js';
import { restoreJson } from './restore.js';

export interface PitrRestoreCommandOptions {
  /** A time with offset ('2026-12-02 14:05:00+09'), or 'latest'. */
  to?: string;
  toLsn?: string;
  dataDir?: string;
  port?: number;
  start: boolean;
  restoreCommand?: string;
  runAs?: string;
  dryRun: boolean;
}

/** The `restore` flags that are point-in-time options (cli.ts passes these through as they are). */
export const PITR_RESTORE_FLAGS = ['to', 'toLsn', 'dataDir', 'port', 'start', 'restoreCommand', 'runAs'] as const satisfies readonly (keyof PitrRestoreCommandOptions)[];
export type PitrRestoreFlags = Pick<PitrRestoreCommandOptions, (typeof PITR_RESTORE_FLAGS)[number]>;

/** The point-in-time options out of the parsed `restore` flags (unset ones left out). */
export function pitrRestoreOptionsOf(flags: PitrRestoreFlags & { dryRun?: boolean }): PitrRestoreCommandOptions {
  const out: Record<string, unknown> = { dryRun: Boolean(flags.dryRun) };
  for (const key of PITR_RESTORE_FLAGS) if (flags[key] !== undefined) out[key] = flags[key];
  return out as unknown as PitrRestoreCommandOptions;
}

/** '2026-12-02 14:05:00+09' / ISO 8601; an offset (or Z) is required so the moment is not ambiguous. */
export function parseTargetTime(text: string): Date {
  const t = text.trim();
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i.exec(t);
  const usage = new BackupError('USAGE', `--to "${text}": expected a time with its UTC offset, e.g. "2026-12-02 14:05:00+09" or 2026-12-02T05:05:00Z, or "latest"`, {
    hint: 'Give the offset (+09, +00:00, Z): a time without one could mean different moments on the server and here.',
  });
  if (!m) throw usage;
  let offset = m[3]!.toUpperCase();
  if (offset !== 'Z') {
    const digits = offset.replace(':', '');
    offset = `${digits.slice(0, 3)}:${digits.length > 3 ? digits.slice(3) : '00'}`;
  }
  const date = new Date(`${m[1]}T${m[2]}${offset}`);
  if (Number.isNaN(date.getTime())) throw usage;
  return date;
}

export async function pitrRestoreCommand(ctx: CommandContext, ref: string | undefined, options: PitrRestoreCommandOptions): Promise<number> {
  if ((options.to === undefined) === (options.toLsn === undefined)) {
    throw new BackupError('USAGE', 'give exactly one of --to <time|latest> and --to-lsn <lsn>', { hint: 'e.g. scholaria-backup restore --to "2026-12-02 14:05:00+09" --data-dir /var/lib/postgresql/15/restored' });
  }
  if (!options.dryRun && !options.dataDir) {
    throw new BackupError('USAGE', 'a point-in-time restore needs --data-dir: a new, empty folder for the recovered server', { hint: 'Or run with --dry-run to see the plan first.' });
  }
  const pg = await postgresModule();
  let target: import('@scholaria/backup-postgres').RecoveryTarget;
  if (options.toLsn !== undefined) {
    const lsn = pg.parseLsn(options.toLsn);
    if (lsn === undefined) throw new BackupError('USAGE', `--to-lsn "${options.toLsn}": expected an LSN such as 0/3000060 (as pg_current_wal_lsn() prints it)`);
    target = { kind: 'lsn', lsn, text: pg.formatLsn(lsn) };
  } else if (options.to!.trim().toLowerCase() === 'latest') target = { kind: 'latest' };
  else target = { kind: 'time', time: parseTargetTime(options.to!), text: options.to! };

  return await withRuntime(ctx, options.dryRun ? undefined : 'restore', async ({ rt }) => {
    if (!rt.sources.some((s) => s.name === PITR_COMPONENT)) {
      throw new BackupError('USAGE', `point-in-time restore needs the ${PITR_COMPONENT} source (BACKUP_PITR=on, or createPostgresBaseBackupSource in the config file)`, {
        hint: 'See docs/point-in-time-recovery.md.',
      });
    }
    const sets = (await rt.engine.list()).filter((s) => s.status !== 'incomplete' && s.manifest);
    const bases = basePointsOf(sets.map((s) => s.manifest!));
    let chosen: (typeof bases)[number] | undefined;
    if (ref !== undefined && ref !== 'latest') {
      chosen = bases.find((b) => b.setId === ref);
      if (!chosen) throw new BackupError('SET_NOT_FOUND', `set ${ref} has no ${PITR_COMPONENT} base backup`, { hint: 'Run `scholaria-backup list`, or leave the set out to pick one for the target.' });
    } else {
      // Newest first (engine.list order): the newest base backup that ends before the target.
      chosen = bases.find((b) =>
        target.kind === 'latest' ? true : target.kind === 'time' ? Date.parse(b.stopTime) < target.time.getTime() : pg.parseLsn(b.stopLsn)! <= target.lsn,
      );
      if (!chosen) {
        throw new BackupError('RESTORE_FAILED', `no base backup ends before the target${bases.length ? ` (oldest: set ${bases.at(-1)!.setId}, finished ${bases.at(-1)!.stopTime})` : ': there is none yet'}`, {
          hint: bases.length ? 'Choose a later target.' : 'Run `scholaria-backup backup` with BACKUP_PITR=on first.',
        });
      }
    }
    const archive = await walArchiveOf(rt, ctx.signal);
    const restoreCommand = options.restoreCommand ?? (ctx.configPath ? `scholaria-backup --config ${resolve(ctx.io.cwd, ctx.configPath)} wal-fetch %f %p` : undefined);
    let result: RestoreResult;
    result = await rt.engine.restore({
      ref: chosen.setId,
      components: [PITR_COMPONENT],
      dryRun: options.dryRun,
      signal: ctx.signal,
      componentOptions: {
        [PITR_COMPONENT]: {
          archive,
          target,
          ...(options.dataDir ? { dataDir: resolve(ctx.io.cwd, options.dataDir) } : {}),
          ...(options.port !== undefined ? { port: options.port } : {}),
          start: options.start,
          ...(restoreCommand ? { restoreCommand } : {}),
          ...(options.runAs ? { runAs: options.runAs } : {}),
        },
      },
    });
    if (ctx.json) ctx.out.document(restoreJson(result));
    else {
      for (const c of result.components) {
        ctx.out.line(`${c.name}: ${c.status}${c.durationMs ? ` in ${formatDuration(c.durationMs)}` : ''}`);
        for (const step of c.plan) ctx.out.line(`  - ${step}`);
        if (c.error) ctx.out.line(`  error: ${c.error.message}`);
      }
      ctx.out.line(`point-in-time restore from ${result.setId}${result.dryRun ? ' (dry run: nothing was written)' : ''}: ${result.status.toUpperCase()}`);
      const err = result.components.find((c) => c.error)?.error as BackupError | undefined;
      if (err?.hint) ctx.out.note(`hint: ${err.hint}`);
    }
    return result.status === 'ok' ? EXIT.OK : EXIT.FAILURE;
  });
}
