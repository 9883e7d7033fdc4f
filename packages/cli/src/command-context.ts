import type { Logger } from '@scholaria/backup-core';
import type { CliIo, Output } from './cli-io.js';
import { createRuntime, type CliRuntime } from './runtime.js';
import { consoleLogger, openRunLog, type RunLogFile } from './run-log.js';
import { compactDate } from './format.js';

export interface CommandContext {
  io: CliIo;
  out: Output;
  json: boolean;
  debug: boolean;
  configPath?: string;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

export interface RunScope {
  rt: CliRuntime;
  /** Writes to the run's log file only (not the terminal). */
  fileLog: Logger;
  /** Path of the run's log file, once something was logged. */
  logPath(): string | undefined;
}

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * A Logger that opens `<logDir>/<name>-<YYYYMMDD>.log` on its first line, so that a command
 * refused before doing anything (unknown set, unknown component) leaves no file behind.
 */
export function lazyFileLogger(rt: CliRuntime, name: string, onOpenError: (error: Error) => void): Logger & { file(): RunLogFile | undefined; close(): void } {
  let file: RunLogFile | undefined;
  let day = '';
  let failed = false;
  const at = (level: Level) => (message: string, fields?: Record<string, unknown>) => {
    const now = new Date();
    const today = compactDate(now, rt.timeZone);
    // A long-running scheduler moves on to the next day's file at midnight (in its zone).
    if (file && today !== day) {
      file.close();
      file = undefined;
    }
    if (!file && !failed) {
      try {
        file = openRunLog({ logDir: rt.logDir, name, timeZone: rt.timeZone, redact: rt.redact, now, base: { command: name } });
        day = today;
      } catch (error) {
        failed = true;
        onOpenError(error as Error);
      }
    }
    file?.logger[level](message, fields);
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    file: () => file,
    close: () => file?.close(),
  };
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Loads the configuration, logs the run to `<logDir>/<name>-<YYYYMMDD>.log` (JSON lines,
 * redacted) and echoes log lines to stderr (not with --json), runs the command, then closes
 * everything. Invalid configuration throws before anything is written.
 */
export async function withRuntime(
  ctx: CommandContext,
  logName: string | undefined,
  run: (scope: RunScope) => Promise<number>,
): Promise<number> {
  const rt = await createRuntime(ctx.io, ctx.configPath !== undefined ? { configPath: ctx.configPath } : {});
  ctx.out.setRedactor(rt.redact);
  for (const warning of rt.warnings) ctx.out.note(`warning: ${warning}`);
  const detach: (() => void)[] = [];
  const fileLog =
    logName === undefined
      ? undefined
      : lazyFileLogger(rt, logName, (error) =>
          ctx.out.note(
            `warning: cannot write the log file in ${rt.logDir} (${error.message}); continuing without it. Set BACKUP_LOG_DIR (or logDir in the config file) to a writable folder.`,
          ),
        );
  if (fileLog) detach.push(rt.hub.attach(fileLog));
  if (!ctx.json) detach.push(rt.hub.attach(consoleLogger((line) => ctx.out.note(line), { debug: ctx.debug, timeZone: rt.timeZone })));
  try {
    const code = await run({ rt, fileLog: fileLog ?? silent, logPath: () => fileLog?.file()?.path });
    if (fileLog?.file()) fileLog.info(`exit code ${code}`, { exitCode: code });
    return code;
  } catch (error) {
    // The terminal gets the error from runCli; an open log file keeps it with the run's lines.
    if (fileLog?.file()) fileLog.error((error as Error).message, { error });
    throw error;
  } finally {
    for (const d of detach) d();
    fileLog?.close();
    await rt.close();
  }
}
