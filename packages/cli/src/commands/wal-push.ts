import { isAbsolute, resolve } from 'node:path';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { walArchiveOf } from '../wal/wal-runtime.js';

/**
 * archive_command: `scholaria-backup wal-push %p`. Exit 0 only once the file and its record
 * are durably on every storage (PostgreSQL then recycles the segment); any other exit makes
 * PostgreSQL keep the file and call again. No log file per segment: errors go to stderr,
 * which PostgreSQL writes to its own log.
 */
export async function walPushCommand(ctx: CommandContext, path: string): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const archive = await walArchiveOf(rt, ctx.signal);
    const full = isAbsolute(path) ? path : resolve(ctx.io.cwd, path);
    const result = await archive.push(full);
    if (ctx.json) ctx.out.document({ ok: true, ...result });
    return EXIT.OK;
  });
}
