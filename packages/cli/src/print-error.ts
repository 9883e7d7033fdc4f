import { BackupError } from '@scholaria/backup-core';
import type { Output } from './cli-io.js';
import { errorJson } from './format.js';

/** A command's error: `error:` and `hint:` lines (and `{ ok: false, error }` with --json), the stack only with --debug. */
export function printError(out: Output, error: unknown, options: { json: boolean; debug: boolean }): void {
  const be = BackupError.isInstance(error) ? error : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (options.json) out.document({ ok: false, error: errorJson(error) });
  out.note(`error: ${message}`);
  const hint = be?.hint ?? (be ? undefined : 'This looks like a bug; run again with --debug and report the output.');
  if (hint) out.note(`hint: ${hint}`);
  if (options.debug && error instanceof Error && error.stack) {
    out.note(error.stack);
    let cause = (error as { cause?: unknown }).cause;
    while (cause instanceof Error) {
      out.note(`caused by: ${cause.stack ?? cause.message}`);
      cause = (cause as { cause?: unknown }).cause;
    }
  }
}
