import { BackupError } from '@scholaria/backup-core';

/**
 * Awaits `promise` and returns the BackupError it rejected with, so a test can check its code,
 * message and hint. Throws (failing the test) when the promise resolves, or rejects with
 * anything that is not a BackupError.
 */
export async function backupErrorOf(promise: Promise<unknown>): Promise<BackupError> {
  let rejected = false;
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    rejected = true;
    error = e;
  }
  if (!rejected) throw new Error('expected the operation to fail with a BackupError, but it succeeded');
  if (!BackupError.isInstance(error)) throw new Error(`expected a BackupError, got ${String(error)}`, { cause: error });
  return error;
}

/** True while a process with this pid exists (signal 0 probes without sending anything). */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
