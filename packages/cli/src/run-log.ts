import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger as PinoLogger } from 'pino';
import { BackupError, type Logger, type Redactor } from '@scholaria/backup-core';
import { compactDate } from './format.js';

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

/** A Logger that forwards to whatever sinks are attached; the engine gets one before the files open. */
export class LogHub implements Logger {
  private readonly sinks = new Set<Logger>();

  attach(sink: Logger): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  private emit(level: Level, message: string, fields?: Record<string, unknown>): void {
    for (const sink of this.sinks) {
      try {
        sink[level](message, fields);
      } catch {
        // a broken sink must not break the run
      }
    }
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.emit('debug', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.emit('info', message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.emit('warn', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.emit('error', message, fields);
  }
}

/** Plain lines on stderr for a terminal or a container log: `HH:MM:SS LEVEL message`. */
export function consoleLogger(write: (line: string) => void, options: { debug: boolean; timeZone: string; skipComponentErrors?: boolean; quiet?: boolean }): Logger {
  const stamp = () => new Intl.DateTimeFormat('en-GB', { timeZone: options.timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(new Date());
  const at = (level: Level) => (message: string, fields?: Record<string, unknown>) => {
    if (level === 'debug' && !options.debug) return;
    if (level === 'info' && options.quiet) return;
    // The command's result prints each component's error once; the log file keeps this line.
    if (level === 'error' && options.skipComponentErrors && typeof fields?.component === 'string') return;
    const component = typeof fields?.component === 'string' && !message.startsWith(fields.component) ? `${fields.component}: ` : '';
    write(`${stamp()} ${level.toUpperCase().padEnd(5)} ${component}${message}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
