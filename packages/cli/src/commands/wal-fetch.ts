import { isAbsolute, resolve } from 'node:path';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { walArchiveOf } from '../wal/wal-runtime.js';

/**
 * restore_command: `scholaria-backup wal-fetch %f %p`. Verifies both checksums, decodes and
 * writes %p atomically. A file the archive does not have exits 1 with a one-line note: that
 * is how recovery learns it reached the end of the archive (and that a history file does not
 * exist), so it must not look like a failure (no audit line, no alert). Any other failure
 * (a damaged file, an unreadable storage) is audited and notified like wal-push's.
 */
export async function walFetchCommand(ctx: CommandContext, name: string, dest: string): Promise<number> {
  return await withRuntime(
    ctx,
    undefined,
    async ({ rt }) => {
      // The record first: then only the codecs it names are created (age only for age files).
      const probe = await walArchiveOf(rt, ctx.signal, () => false);
      const found = await probe.record(name);
      if (!found) {
        ctx.out.note(`wal-fetch: ${name} is not in the archive`);
        return EXIT.FAILURE;
      }
      const needed = new Set(found.record.codecs.map((c) => c.name));
      const archive = needed.size === 0 ? probe : await walArchiveOf(rt, ctx.signal, (c) => needed.has(c.name));
      const full = isAbsolute(dest) ? dest : resolve(ctx.io.cwd, dest);
      if (!(await archive.fetch(name, full))) {
        ctx.out.note(`wal-fetch: ${name} is not in the archive`);
        return EXIT.FAILURE;
      }
      if (ctx.json) ctx.out.document({ ok: true, name, path: full });
      return EXIT.OK;
    },
    {
      lean: true,
      onFailure: async (rt, error) => {
        // Stopped by a signal (server shutdown, Ctrl-C): not a failure to alert on.
        if (ctx.signal.aborted) return;
        const { reportWalFailure } = await import('../wal/wal-alerts.js');
        await reportWalFailure(rt, { action: 'wal-fetch', file: name, error, warn: (line) => ctx.out.note(line) });
      },
    },
  );
}
