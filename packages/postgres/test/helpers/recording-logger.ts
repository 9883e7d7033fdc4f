import type { Logger } from '@scholaria/backup-core';

export interface LoggedLine {
  message: string;
  fields?: Record<string, unknown>;
}

/** A logger that keeps every line (all levels) in `lines`, for tests that check what was logged. */
export function recordingLogger(lines: LoggedLine[]): Logger {
  const push = (message: string, fields?: Record<string, unknown>) => void lines.push({ message, ...(fields ? { fields } : {}) });
  return { debug: push, info: push, warn: push, error: push } as unknown as Logger;
}
