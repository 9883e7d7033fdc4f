import { zonedParts, type Logger } from '@scholaria/backup-core';

type Level = 'debug' | 'info' | 'warn' | 'error';

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
  const stamp = () => {
    const p = zonedParts(new Date(), options.timeZone);
    return `${p.hour}:${p.minute}:${p.second}`;
  };
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
