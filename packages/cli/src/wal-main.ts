import { ConfigError } from '@scholaria/backup-core';
import { defaultIo, Output, type CliIo } from './cli-io.js';
import { EXIT, exitCodeForError } from './exit-codes.js';
import type { CommandContext } from './command-context.js';
import { printError } from './print-error.js';
import type { WalFastArgs } from './wal-args.js';
import { walPushCommand } from './commands/wal-push.js';
import { walFetchCommand } from './commands/wal-fetch.js';

/**
 * The slim entry of `scholaria-backup wal-push` / `wal-fetch`, which PostgreSQL runs once per
 * WAL file: the same commands as the full CLI (same output, errors and exit codes), without
 * commander, pino, the progress bars and the other commands' code. bin.ts chooses it with
 * `walFastArgs`; anything unusual goes to the full CLI.
 */
export async function runWalCommand(parsed: WalFastArgs, ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { ...defaultIo(), ...ioOverrides };
  const out = new Output(io);
  out.json = parsed.json;
  const ctx: CommandContext = {
    io,
    out,
    json: parsed.json,
    debug: parsed.debug,
    quiet: parsed.quiet,
    progress: parsed.progress,
    ...(parsed.configPath !== undefined ? { configPath: parsed.configPath } : {}),
    signal: io.signal ?? new AbortController().signal,
  };
  try {
    if (parsed.command === 'wal-push') return await walPushCommand(ctx, parsed.args[0]!);
    return await walFetchCommand(ctx, parsed.args[0]!, parsed.args[1]!);
  } catch (error) {
    printError(out, error, { json: parsed.json, debug: parsed.debug });
    return error instanceof ConfigError ? EXIT.USAGE : exitCodeForError(error);
  }
}
