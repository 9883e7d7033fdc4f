import { mkdir } from 'node:fs/promises';
import { BackupError } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { pitrEnvOf, postgresModule, walArchiveOf } from '../wal/wal-runtime.js';

/** The streaming alternative to archive_command: pg_receivewal over a slot into the archive, until SIGTERM. */
export async function walReceiveCommand(ctx: CommandContext, options: { slot?: string; spoolDir?: string }): Promise<number> {
  return await withRuntime(ctx, 'wal-receive', async ({ rt }) => {
    const env = pitrEnvOf(rt);
    if (!env.url) {
      throw new BackupError('USAGE', 'wal-receive needs a connection: set BACKUP_PITR_URL (or DATABASE_URL) to a role with REPLICATION', { hint: 'See docs/point-in-time-recovery.md.' });
    }
    const spoolDir = options.spoolDir ?? env.spoolDir;
    await mkdir(spoolDir, { recursive: true, mode: 0o700 });
    const { receiveWal } = await postgresModule();
    const archive = await walArchiveOf(rt, ctx.signal);
    rt.hub.info(`wal-receive: streaming into ${spoolDir} over slot ${options.slot ?? env.slot}`);
    await receiveWal({
      url: env.url,
      archive,
      spoolDir,
      slot: options.slot ?? env.slot,
      signal: ctx.signal,
      logger: rt.hub,
      ...(env.binDir ? { binDir: env.binDir } : {}),
      onPushed: (name) => {
        if (ctx.json) ctx.out.jsonLine({ event: 'archived', name });
      },
    });
    return EXIT.OK;
  }, {
    // The service stopped on an error (pg_receivewal died, a push failed): an alert, as for wal-push.
    onFailure: async (rt, error) => {
      if (ctx.signal.aborted) return;
      const { reportWalFailure } = await import('../wal/wal-alerts.js');
      await reportWalFailure(rt, { action: 'wal-receive', file: 'stream', error, warn: (line) => ctx.out.note(line) });
    },
  });
}
