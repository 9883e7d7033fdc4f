import { isAbsolute, resolve } from 'node:path';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { walArchiveOf } from '../wal/wal-runtime.js';

/**
 * restore_command: `scholaria-backup wal-fetch %f %p`. Verifies both checksums, decodes and
 * writes %p atomically. A file the archive does not have exits 1 with a one-line note: that
 * is how recovery learns it reached the end of the archive (and that a history file does not
 * exist), so it must not look like a failure.
 */
export async function walFetchCommand(ctx: CommandContext, name: string, dest: string): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const archive = await walArchiveOf(rt, ctx.signal);
    const full = isAbsolute(dest) ? dest : resolve(ctx.io.cwd, dest);
    const found = await archive.fetch(name, full);
    if (!found) {
      ctx.out.note(`wal-fetch: ${name} is not in the archive`);
      return EXIT.FAILURE;
    }
    if (ctx.json) ctx.out.document({ ok: true, name, path: full });
    return EXIT.OK;
  });
}
