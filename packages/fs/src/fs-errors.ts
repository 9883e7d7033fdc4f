import { BackupError, wrapError } from '@scholaria/backup-core';

const RETRYABLE = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'EIO', 'ETIMEDOUT']);

export interface FsErrorContext {
  root: string;
  /** What was being done, e.g. 'put', 'get', 'list', 'delete'. */
  op: string;
  key?: string;
}

function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Turns a raw file system error into a BackupError that says what happened and what to do. */
export function fsFailure(error: unknown, ctx: FsErrorContext): BackupError {
  if (BackupError.isInstance(error)) return error;
  const errno = errnoOf(error);
  const where = `fs:${ctx.root}`;
  const what = ctx.key === undefined ? ctx.op : `${ctx.op} "${ctx.key}"`;
  const details = { root: ctx.root, op: ctx.op, ...(ctx.key === undefined ? {} : { key: ctx.key }), errno };
  const reason = error instanceof Error ? error.message : String(error);
  const make = (message: string, hint: string, retryable = false) =>
    new BackupError('STORAGE_FAILED', message, { cause: error, hint, retryable, details });

  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
      return make(
        `${where}: no space left on the device (${what})`,
        `free space on ${ctx.root}, e.g. prune old sets or move the root to a larger disk`,
      );
    case 'EACCES':
    case 'EPERM':
      return make(
        `${where}: permission denied (${what}): ${reason}`,
        `make ${ctx.root} readable and writable by the user running the backup (uid ${process.getuid?.() ?? '?'}), or choose another root`,
      );
    case 'EROFS':
      return make(
        `${where}: the file system is read-only (${what})`,
        `remount the file system holding ${ctx.root} read-write, or choose a writable root`,
      );
    case 'ENOTDIR':
    case 'EISDIR':
    case 'EEXIST':
    case 'ENOTEMPTY':
      return make(
        `${where}: ${what} conflicts with an existing entry (a file where a directory is needed, or a directory where the object should be): ${reason}`,
        'a key cannot be both an object and a prefix of other keys; remove the conflicting entry or use another key',
      );
    case 'ENAMETOOLONG':
      return make(`${where}: path too long (${what})`, 'use a shorter root or shorter keys');
    default:
      if (errno && RETRYABLE.has(errno)) {
        return make(`${where}: ${what} failed: ${reason}`, 'retry later; if it persists check the disk and the system logs', true);
      }
      return wrapError(error, 'STORAGE_FAILED', `${where}: ${what} failed`, {
        hint: `check that ${ctx.root} is a healthy local directory`,
        details,
      });
  }
}

export function abortedError(root: string, op: string, key: string, signal: AbortSignal | undefined): BackupError {
  const reason = signal?.reason;
  const detail = reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : '';
  return new BackupError('ABORTED', `fs:${root}: ${op} "${key}" was aborted${detail}`, {
    retryable: true,
    details: { root, op, key },
  });
}

/** A key that passes through (or is) a symbolic link under the root: refused, never followed. */
export function linkRefused(root: string, op: string, key: string, link: string): BackupError {
  return new BackupError('STORAGE_FAILED', `fs:${root}: ${op} "${key}" refused: "${link}" is a symbolic link, and this storage never follows links under its root`, {
    hint: `Nothing outside ${root} was read or changed. Something other than scholaria-backup put that link there: inspect it (ls -l), remove it, and verify the sets.`,
    details: { root, op, key, link },
  });
}
