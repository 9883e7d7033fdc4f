import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
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
  /** Set once the owner won the lock; a lock without it may be a contender about to withdraw. */
  acquired?: boolean;
  /** Linux boot id of the owner's kernel (`/proc/sys/kernel/random/boot_id`), when readable. */
  bootId?: string;
  /** The owner's PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`), when readable. */
  pidNamespace?: string;
}

export interface ProcessIdentity {
  host: string;
  bootId?: string;
  pidNamespace?: string;
}

/**
 * Where a PID means something: a PID names one process only within one PID namespace of one
 * boot of one kernel. Containers sharing a host name (host network, Kubernetes hostNetwork,
 * compose services with one hostname) have their own PID namespaces; a reboot reuses PIDs.
 * Feature-detected: off Linux (or without /proc) both are absent.
 */
export function processIdentity(): ProcessIdentity {
  const id: ProcessIdentity = { host: hostname() };
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    if (boot) id.bootId = boot;
  } catch {
    // not Linux, or no /proc
  }
  try {
    id.pidNamespace = readlinkSync('/proc/self/ns/pid');
  } catch {
    // not Linux, or no /proc
  }
  return id;
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

/**
 * A lock is stale when its heartbeat expired, or when its owner is provably gone: it ran on this
 * host, in this boot (boot id) and in this PID namespace, and its PID is not alive. A lock from
 * another PID namespace or boot (or an older lock without those fields) has only its heartbeat:
 * its PID cannot be checked from here.
 */
export function lockIsStale(info: LockInfo, now: Date, self: ProcessIdentity = processIdentity()): { stale: boolean; why?: string } {
  const heartbeat = Date.parse(info.heartbeatAt);
  const age = now.getTime() - heartbeat;
  // Our writer never produces these: a damaged or hand-made lock file would otherwise block forever.
  if (!Number.isFinite(heartbeat) || typeof info.ttlMs !== 'number' || !(info.ttlMs >= 0)) return { stale: true, why: 'the lock has no valid heartbeatAt/ttlMs' };
  if (age > info.ttlMs) return { stale: true, why: `heartbeat ${Math.round(age / 1000)} s old (ttl ${Math.round(info.ttlMs / 1000)} s)` };
  const sameProcessSpace =
    info.host === self.host &&
    self.bootId !== undefined &&
    self.pidNamespace !== undefined &&
    info.bootId === self.bootId &&
    info.pidNamespace === self.pidNamespace;
  if (sameProcessSpace && Number.isInteger(info.pid) && info.pid > 0 && !processAlive(info.pid)) {
    return { stale: true, why: `process ${info.pid} on ${info.host} is gone (same boot and PID namespace)` };
  }
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

/** How many times a contender that met a fresh rival lock withdraws and tries again. */
const CONTENTION_ATTEMPTS = 4;
/** A rival lock created this long before our first attempt is a real holder, not a contender. */
const CONTENTION_WINDOW_MS = 2000;

/**
 * Takes the run lock on one storage. Every contender writes its own lock object, then lists the
 * lock folder, and goes ahead only when it sees no other live lock. That rule is safe with any
 * storage that lists what was written before (fs, S3): of two overlapping runs, the one that
 * lists second always sees the first one's lock. ("Oldest lock wins" is not: a contender whose
 * older lock became visible late would go ahead next to one that listed before it and saw
 * nothing.) Two runs that see each other both withdraw, wait a random moment and try again, so
 * one of them wins; a lock marked `acquired` (or older than the contention window) is a holder
 * and refuses at once.
 * This needs only put/list/delete.
 */
export async function acquireStorageLock(storage: Storage, options: AcquireLockOptions): Promise<HeldLock> {
  const clock = options.clock ?? (() => new Date());
  const firstAttempt = clock().getTime();
  let info: LockInfo | undefined;
  let key = '';
  const write = (value: LockInfo, at: string) => storage.put(at, Readable.from([Buffer.from(JSON.stringify(value))]));

  for (let attempt = 1; ; attempt++) {
    const now = clock();
    const id = `${now.getTime().toString().padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
    const self = processIdentity();
    const mine: LockInfo = {
      id,
      action: options.action,
      host: self.host,
      ...(self.bootId ? { bootId: self.bootId } : {}),
      ...(self.pidNamespace ? { pidNamespace: self.pidNamespace } : {}),
      pid: process.pid,
      actor: options.actor,
      createdAt: now.toISOString(),
      heartbeatAt: now.toISOString(),
      ttlMs: options.ttlMs,
    };
    const mineKey = `${LOCK_PREFIX}${id}.json`;
    await write(mine, mineKey);

    const entries = await storage.list(LOCK_PREFIX);
    const rivals: LockInfo[] = [];
    for (const entry of entries.sort((a, b) => a.key.localeCompare(b.key))) {
      if (entry.key === mineKey || !entry.key.endsWith('.json')) continue;
      const other = await readLock(storage, entry.key);
      if (!other) continue;
      const { stale, why } = lockIsStale(other, clock());
      if (stale) {
        options.logger.warn(`taking over a stale lock on ${storage.name}: ${describe(other)}; ${why}`, { storage: storage.name });
        await storage.delete(entry.key).catch(() => {});
        continue;
      }
      rivals.push(other);
    }
    if (rivals.length === 0) {
      info = mine;
      key = mineKey;
      break;
    }
    await storage.delete(mineKey).catch(() => {});
    const holder = rivals[0]!;
    const settled = rivals.find((r) => r.acquired === true || firstAttempt - Date.parse(r.createdAt) > CONTENTION_WINDOW_MS);
    if (settled || attempt >= CONTENTION_ATTEMPTS) {
      const blocker = settled ?? holder;
      throw new LockError(`${storage.name} is locked: ${describe(blocker)} is running`, {
        hint: `Wait for it to finish and try again. If that process is gone, its lock expires ${Math.round(blocker.ttlMs / 1000)} s after its last heartbeat (${blocker.heartbeatAt}).`,
        details: { lock: blocker },
      });
    }
    // Both sides may have seen each other: back off for a random moment so one of them wins.
    await new Promise((r) => setTimeout(r, 25 + Math.floor(Math.random() * 125 * attempt)));
  }

  // Tell later contenders this is a holder, so they refuse at once instead of retrying.
  const held: LockInfo = { ...info!, acquired: true };
  await write(held, key).catch((error) =>
    options.logger.warn(`could not mark the lock on ${storage.name} as held: ${(error as Error).message}`),
  );
  let current = held;
  let beat: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    current = { ...current, heartbeatAt: clock().toISOString() };
    beat = write(current, key).catch((error) =>
      options.logger.warn(`could not refresh the lock on ${storage.name}: ${(error as Error).message}`),
    );
  }, Math.max(1000, Math.floor(options.ttlMs / 3)));
  timer.unref();

  let released = false;
  return {
    info: held,
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

export async function listLocks(storage: Storage): Promise<LockInfo[]> {
  const entries = await storage.list(LOCK_PREFIX);
  const locks: LockInfo[] = [];
  for (const e of entries) {
    const info = await readLock(storage, e.key);
    if (info) locks.push(info);
  }
  return locks;
}
