import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger as PinoLogger } from 'pino';
import { BackupError, type Logger, type Redactor } from '@scholaria/backup-core';
import { compactDate } from './format.js';
import type { CliRuntime } from './runtime.js';

// LogHub and consoleLogger live in log-hub.ts (no pino), so wal-push can log without loading pino.
export { LogHub, consoleLogger } from './log-hub.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** Errors inside fields become plain objects: pino would log them as `{}`. */
function plainFields(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] =
      value instanceof Error
        ? {
            type: value.name,
            message: value.message,
            ...(BackupError.isInstance(value) ? { code: value.code, ...(value.hint ? { hint: value.hint } : {}) } : {}),
          }
        : value;
  }
  return out;
}

/** Core's `(message, fields)` Logger on top of pino's `(fields, message)`. */
export function loggerFromPino(instance: PinoLogger): Logger {
  const at = (level: Level) => (message: string, fields?: Record<string, unknown>) => instance[level](plainFields(fields), message);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface RunLogFile {
  path: string;
  logger: Logger;
  close(): void;
}

/** Creates the log folder 0700 (an existing folder keeps its mode). */
export function ensureLogDir(logDir: string): void {
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
}

/**
 * Opens `<logDir>/<name>-<YYYYMMDD>.log` for appending (0600), as JSON lines via pino. Every
 * line is passed through the redactor just before it is written.
 */
export function openRunLog(options: { logDir: string; name: string; timeZone: string; redact: Redactor; now?: Date; base?: Record<string, unknown> }): RunLogFile {
  ensureLogDir(options.logDir);
  const path = join(options.logDir, `${options.name}-${compactDate(options.now ?? new Date(), options.timeZone)}.log`);
  const fd = openSync(path, 'a', 0o600);
  try {
    // A file created earlier by hand (or with another umask) is tightened too.
    fchmodSync(fd, 0o600);
  } catch {
    // not our file to chmod (another owner): keep writing, the mode is reported by ls
  }
  const destination = pino.destination({ dest: fd, sync: true });
  const instance = pino(
    {
      level: 'debug',
      base: { pid: process.pid, ...(options.base ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: (line) => options.redact(line) },
    },
    destination,
  );
  let closed = false;
  return {
    path,
    logger: loggerFromPino(instance),
    close() {
      if (closed) return;
      closed = true;
      try {
        destination.flushSync();
      } catch {
        // sync destination: nothing buffered
      }
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    },
  };
}

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
