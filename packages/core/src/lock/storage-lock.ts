import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { Storage } from '../interfaces/storage.js';
import type { Logger } from '../interfaces/logger.js';
import { BackupError, LockError } from '../errors/backup-error.js';

export const LOCK_PREFIX = '.scholaria-backup/locks/';

export interface LockInfo {
  id: string;
  action: string;
  host: string;
  pid: number;
  actor: string;
  createdAt: string;
  heartbeatAt: string;
  ttlMs: number;
}

export interface HeldLock {
  info: LockInfo;
  release(): Promise<void>;
}

export interface AcquireLockOptions {
  action: string;
  actor: string;
  ttlMs: number;
  logger: Logger;
  clock?: () => Date;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock is stale when its heartbeat expired, or its owner ran on this host and is gone. */
export function lockIsStale(info: LockInfo, now: Date): { stale: boolean; why?: string } {
  const age = now.getTime() - Date.parse(info.heartbeatAt);
  if (age > info.ttlMs) return { stale: true, why: `heartbeat ${Math.round(age / 1000)} s old (ttl ${Math.round(info.ttlMs / 1000)} s)` };
  if (info.host === hostname() && !processAlive(info.pid)) return { stale: true, why: `process ${info.pid} on ${info.host} is gone` };
  return { stale: false };
}

async function readLock(storage: Storage, key: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await text(await storage.get(key))) as LockInfo;
  } catch {
    return undefined;
  }
}

function describe(info: LockInfo): string {
  return `${info.action} by ${info.actor} (pid ${info.pid} on ${info.host}, since ${info.createdAt})`;
}

/**
 * Takes the run lock on one storage. Every contender writes its own lock object, then lists
 * the lock folder: the oldest live lock (by creation time, then id) wins, the others withdraw.
 * This needs only put/list/delete, so it works on any storage with read-after-write listing.
 */
export async function acquireStorageLock(storage: Storage, options: AcquireLockOptions): Promise<HeldLock> {
  const clock = options.clock ?? (() => new Date());
  const now = clock();
  const id = `${now.getTime().toString().padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
  const info: LockInfo = {
    id,
    action: options.action,
    host: hostname(),
    pid: process.pid,
    actor: options.actor,
    createdAt: now.toISOString(),
    heartbeatAt: now.toISOString(),
    ttlMs: options.ttlMs,
  };
  const key = `${LOCK_PREFIX}${id}.json`;
  const write = (value: LockInfo) => storage.put(key, Readable.from([Buffer.from(JSON.stringify(value))]));
  await write(info);

  const entries = await storage.list(LOCK_PREFIX);
  let blocker: LockInfo | undefined;
  for (const entry of entries.sort((a, b) => a.key.localeCompare(b.key))) {
    if (entry.key === key || !entry.key.endsWith('.json')) continue;
    const other = await readLock(storage, entry.key);
    if (!other) continue;
    const { stale, why } = lockIsStale(other, clock());
    if (stale) {
      options.logger.warn(`taking over a stale lock on ${storage.name}: ${describe(other)}; ${why}`, { storage: storage.name });
      await storage.delete(entry.key).catch(() => {});
      continue;
    }
    if (entry.key < key) {
      blocker = other;
      break;
    }
  }
  if (blocker) {
    await storage.delete(key).catch(() => {});
    throw new LockError(`${storage.name} is locked: ${describe(blocker)} is running`, {
      hint: `Wait for it to finish and try again. If that process is gone, its lock expires ${Math.round(blocker.ttlMs / 1000)} s after its last heartbeat (${blocker.heartbeatAt}).`,
      details: { lock: blocker },
    });
  }

  let current = info;
  let beat: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    current = { ...current, heartbeatAt: clock().toISOString() };
    beat = write(current).catch((error) =>
      options.logger.warn(`could not refresh the lock on ${storage.name}: ${(error as Error).message}`),
    );
  }, Math.max(1000, Math.floor(options.ttlMs / 3)));
  timer.unref();

  let released = false;
  return {
    info,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await beat;
      await storage.delete(key).catch((error) => {
        options.logger.warn(`could not remove the lock ${key} on ${storage.name}: ${(error as Error).message}`);
      });
    },
  };
}

/** Takes the lock on every storage, in order; releases what it took if one is busy. */
export async function acquireLocks(storages: Storage[], options: AcquireLockOptions): Promise<HeldLock[]> {
  const held: HeldLock[] = [];
  try {
    for (const storage of storages) held.push(await acquireStorageLock(storage, options));
    return held;
  } catch (error) {
    await Promise.all(held.map((h) => h.release()));
    if (BackupError.isInstance(error)) throw error;
    throw new BackupError('STORAGE_FAILED', `could not take the run lock: ${(error as Error).message}`, { cause: error, retryable: true });
  }
}

export async function listLocks(storage: Storage): Promise<LockInfo[]> {
  const entries = await storage.list(LOCK_PREFIX);
  const locks: LockInfo[] = [];
  for (const e of entries) {
    const info = await readLock(storage, e.key);
    if (info) locks.push(info);
  }
  return locks;
}
