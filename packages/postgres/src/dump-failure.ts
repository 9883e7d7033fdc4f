import { BackupError } from '@scholaria/backup-core';
import type { Runtime } from './runtime.js';

export function aborted(rt: Runtime): BackupError {
  return new BackupError('ABORTED', `${rt.name}: backup aborted`, { component: rt.name });
}

/** Turns whatever a dump step threw into a BackupError naming the component (or ABORTED). */
export function wrapFailure(rt: Runtime, error: unknown, signal: AbortSignal): BackupError {
  if (signal.aborted) return aborted(rt);
  if (BackupError.isInstance(error)) return error;
  const message =
    error instanceof Error
      ? error.message
      : typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string'
        ? error.message
        : String(error);
  return new BackupError('SOURCE_FAILED', `${rt.name}: ${message}`, { component: rt.name, cause: error });
}
