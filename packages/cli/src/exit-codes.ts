import { BackupError, type BackupErrorCode } from '@scholaria/backup-core';

/** Exit codes of `scholaria-backup` (documented in the README and docs/cli.md). */
export const EXIT = Object.freeze({
  /** Everything worked. */
  OK: 0,
  /** The operation failed (backup failed, verification failed, a source is down...). */
  FAILURE: 1,
  /** Wrong command line or invalid configuration: nothing was done. */
  USAGE: 2,
  /** A partial backup (some components failed) or a health warning. */
  WARNING: 3,
});

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Errors that mean "you asked for something that does not make sense here": exit 2. */
const USAGE_CODES: ReadonlySet<BackupErrorCode> = new Set<BackupErrorCode>([
  'USAGE',
  'CONFIG_INVALID',
  'COMPONENT_UNKNOWN',
  'SET_NOT_FOUND',
]);

export function exitCodeForError(error: unknown): ExitCode {
  return BackupError.isInstance(error) && USAGE_CODES.has(error.code) ? EXIT.USAGE : EXIT.FAILURE;
}
