import type { Storage } from '../interfaces/storage.js';
import { BackupError, LockError } from '../errors/backup-error.js';
import { acquireStorageLock, type HeldLock } from '../lock/storage-lock.js';
import type { StorageOutcome } from './types.js';
import type { EngineContext } from './engine-context.js';
import { safeError } from './engine-helpers.js';

/**
 * Takes the run lock on every storage. A busy lock anywhere stops the run; a storage that
 * cannot be reached is left out of this run (and reported) so the others still get the set.
 */
export async function lockStorages(
  ctx: EngineContext,
  action: string,
  storages: Storage[],
): Promise<{ locks: HeldLock[]; live: Storage[]; failed: StorageOutcome[] }> {
  const locks: HeldLock[] = [];
  const live: Storage[] = [];
  const failed: StorageOutcome[] = [];
  for (const storage of storages) {
    try {
      locks.push(await acquireStorageLock(storage, { action, actor: ctx.actor, ttlMs: ctx.lockTtlMs, logger: ctx.logger }));
      live.push(storage);
    } catch (error) {
      if (error instanceof LockError || (BackupError.isInstance(error) && error.code === 'LOCKED')) {
        await Promise.all(locks.map((l) => l.release()));
        throw error;
      }
      const err = safeError(ctx, error, 'STORAGE_FAILED', storage.name);
      ctx.logger.error(`storage ${storage.name} is unavailable: ${err.message}`);
      failed.push({ name: storage.name, ok: false, error: err });
    }
  }
  if (live.length === 0) {
    throw new BackupError('STORAGE_FAILED', `no storage is available: ${failed.map((f) => f.error?.message).join('; ')}`, {
      retryable: true,
      hint: 'Check that the backup directory or bucket exists, is writable and has free space (`scholaria-backup health-check`).',
    });
  }
  return { locks, live, failed };
}
