import { existsSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { walArchiveOf } from '../wal/wal-runtime.js';
import { walFailureStatePath } from '../wal/wal-paths.js';

/**
 * archive_command: `scholaria-backup wal-push %p`. Exit 0 only once the file and its record
 * are durably on every storage (PostgreSQL then recycles the segment); any other exit makes
 * PostgreSQL keep the file and call again. No log file per segment: errors go to stderr,
 * which PostgreSQL writes to its own log. A failure is audited and notified (wal/wal-alerts.ts,
 * loaded only then); a success is not, except the first one after a reported failure.
 */
export async function walPushCommand(ctx: CommandContext, path: string): Promise<number> {
  const full = isAbsolute(path) ? path : resolve(ctx.io.cwd, path);
  const file = basename(full);
  return await withRuntime(
    ctx,
    undefined,
    async ({ rt }) => {
      // Only the codecs that encode: an identity-only age key is not needed to archive.
      const archive = await walArchiveOf(rt, ctx.signal, (c) => !c.decodeOnly);
      const result = await archive.push(full);
      if (existsSync(walFailureStatePath(rt, 'wal-push'))) {
        const { reportWalRecovered } = await import('../wal/wal-alerts.js');
        await reportWalRecovered(rt, { action: 'wal-push', file, warn: (line) => ctx.out.note(line) });
      }
      if (ctx.json) ctx.out.document({ ok: true, ...result });
      return EXIT.OK;
    },
    {
      lean: true,
      onFailure: async (rt, error) => {
        // Stopped by a signal (server shutdown, Ctrl-C): not a failure to alert on.
        if (ctx.signal.aborted) return;
        const { reportWalFailure } = await import('../wal/wal-alerts.js');
        await reportWalFailure(rt, { action: 'wal-push', file, error, warn: (line) => ctx.out.note(line) });
      },
    },
  );
}
