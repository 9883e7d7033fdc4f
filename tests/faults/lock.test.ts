// Concurrency: the storage lock lets exactly one of two runs through and refuses the other with
// a message that says who holds it; a lock left by a killed process is taken over (at once when
// its process is known to be gone, after its TTL when it ran on another host).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupError, createBackupEngine, type BackupResult, type Storage } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { assertCatalogSound, captureLogger, descendants, faultsDir, sleep, spawnFixture } from './helpers/common.js';
import { delayedPuts, gatedGets, gatedPuts } from './helpers/storage-wrappers.js';
import type { BackupChildConfig } from './fixtures/backup-child.js';

let dir: TempDir;
let root: string;
beforeEach(async () => {
  dir = await makeTempDir('faults-lock-');
  root = join(dir.path, 'backup');
});
afterEach(async () => {
  await dir.remove();
});

const LOCK_MESSAGE = /is locked: (backup|restore|prune) by .+ \(pid \d+ on .+, since .+\) is running/;

/** With `slowMs`, the backup streams 8 chunks of 64 KiB that many ms apart (it outlasts lock contention). */
function source(content: string, slowMs = 0) {
  return createTestSource({ name: 'test', files: { 'data.txt': content }, ...(slowMs ? { generated: { 'big.bin': 512 * 1024 }, chunkDelayMs: slowMs } : {}) });
}

async function lockFiles(): Promise<string[]> {
  return await readdir(join(root, '.scholaria-backup', 'locks')).catch(() => []);
}

/** Whether a PID names a live process here (EPERM: alive, not ours). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A backup child that takes the lock and freezes, run under `unshare` in namespaces of its own
 * (`unshareArgs`; `shell` runs first inside them, then the child): another container, as far as
 * the lock can tell. Resolves once the child holds the lock.
 */
async function holdLockInNamespaces(unshareArgs: string[], shell: string, config: BackupChildConfig): Promise<{ holder: ChildProcess; exited: Promise<unknown> }> {
  const holder = spawn(
    'unshare',
    [...unshareArgs, '--', 'sh', '-c', `${shell} "$0" "$@"`, process.execPath, '--import', 'tsx', join(faultsDir, 'fixtures', 'backup-child.ts'), JSON.stringify(config)],
    { cwd: faultsDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  holder.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise((r) => holder.once('exit', r));
  const deadline = Date.now() + 120_000;
  while (!out.includes('HOLD ')) {
    if (holder.exitCode !== null || Date.now() > deadline) {
      holder.kill('SIGKILL');
      throw new Error(`holder did not take the lock: ${out} ${err}`);
    }
    await sleep(25);
  }
  return { holder, exited };
}

/** Exactly one run got through, the other was refused by the lock; the set that exists verifies. */
async function expectOneWinner(results: PromiseSettledResult<BackupResult>[], storage: Storage) {
  const won = results.filter((r): r is PromiseFulfilledResult<BackupResult> => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(won.map((w) => w.value.status), `both ran: ${won.map((w) => w.value.setId).join(', ')}`).toEqual(['complete']);
  expect(lost).toHaveLength(1);
  expect(BackupError.isInstance(lost[0]!.reason) && lost[0]!.reason.code).toBe('LOCKED');
  expect((lost[0]!.reason as Error).message).toMatch(LOCK_MESSAGE);
  expect((lost[0]!.reason as BackupError).hint).toMatch(/Wait for it to finish/);
  const check = createBackupEngine({ sources: [source('x')], storage });
  const { complete } = await assertCatalogSound(check);
  expect(complete).toEqual([won[0]!.value.setId]);
  expect((await check.verify({ all: true })).ok).toBe(true);
  expect(await lockFiles()).toEqual([]);
}

describe('two backups started at once', () => {
  it('in one process, 4 rounds: exactly one runs each time, the other is refused with who holds the lock', async () => {
    const storage = createFsStorage({ root });
    for (let round = 0; round < 4; round++) {
      const a = createBackupEngine({ sources: [source(`A${round}`, 300)], storage });
      const b = createBackupEngine({ sources: [source(`B${round}`, 300)], storage });
      const results = await Promise.allSettled([a.backup({ tier: 'daily' }), b.backup({ tier: 'daily' })]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won, `round ${round}: ${results.map((r) => (r.status === 'fulfilled' ? `ran ${r.value.setId}` : `refused ${(r.reason as Error).message}`)).join(' / ')}`).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as BackupError).code)).toEqual(['LOCKED']);
      expect(await lockFiles()).toEqual([]);
    }
    const check = createBackupEngine({ sources: [source('x')], storage });
    expect((await check.verify({ all: true })).ok).toBe(true);
  });

  it('when one contender is slow to write its lock (slow disk or bucket), both must not run', async () => {
    const storage = createFsStorage({ root });
    // A takes its lock id first but its lock write lands 400 ms later; B writes at once.
    const slow = delayedPuts(storage, '.scholaria-backup/locks/', 400);
    const a = createBackupEngine({ sources: [source('content of A', 300)], storage: slow });
    const b = createBackupEngine({ sources: [source('content of B', 300)], storage });
    const first = a.backup({ tier: 'daily' });
    await sleep(100);
    const second = b.backup({ tier: 'daily' });
    await expectOneWinner(await Promise.allSettled([first, second]), storage);
  });

  it('in two processes started at the same moment: one set, one clear refusal', async () => {
    const config = (tier: string): BackupChildConfig => ({ root, sources: 'test', testBytes: 512 * 1024, chunkDelayMs: 300, waitForSignal: true, tier });
    const children = [spawnFixture('backup-child.ts', [JSON.stringify(config('daily'))]), spawnFixture('backup-child.ts', [JSON.stringify(config('weekly'))])];
    await Promise.all(children.map((c) => c.waitForLine(/^ready$/)));
    for (const c of children) process.kill(c.pid, 'SIGUSR1');
    const lines = await Promise.all(children.map((c) => c.waitForLine(/^(done|error) /, 120_000)));
    await Promise.all(children.map((c) => c.exited));
    const done = lines.filter((l) => l.startsWith('done complete '));
    const refused = lines.filter((l) => l.startsWith('error LOCKED '));
    expect({ done: done.length, refused: refused.length }, lines.join(' / ')).toEqual({ done: 1, refused: 1 });
    expect(refused[0]).toMatch(LOCK_MESSAGE);
    const check = createBackupEngine({ sources: [source('x')], storage: createFsStorage({ root }) });
    expect((await check.list()).map((s) => s.id)).toEqual([done[0]!.split(' ')[2]]);
    expect((await check.verify({ all: true })).ok).toBe(true);
    expect(await lockFiles()).toEqual([]);
  });
});

describe('prune and backup during a restore', () => {
  it('the lock refuses them while the restore runs; the restore completes; then they run', async () => {
    const storage = createFsStorage({ root });
    const live = source('version 1');
    const engine = createBackupEngine({ sources: [live], storage });
    const { setId } = await engine.backup({ tier: 'daily' });
    live.data.set('data.txt', Buffer.from('version 2'));

    // The restore holds its lock while it reads (verifies) the artifact; hold that read.
    const gate = gatedGets(storage, `${setId}/test/data.txt`);
    const restoring = createBackupEngine({ sources: [live], storage: gate.storage }).restore({ ref: setId });
    await gate.reached;
    const other = createBackupEngine({ sources: [source('other')], storage });
    await expect(other.prune()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/is locked: restore by /) });
    await expect(other.backup()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/is locked: restore by /) });
    // Refused runs wrote nothing: still one set, the restore's live target not yet touched.
    expect((await engine.list({ includeIncomplete: true })).map((s) => s.id)).toEqual([setId]);
    expect(live.data.get('data.txt')!.toString()).toBe('version 2');
    gate.release();
    expect((await restoring).status).toBe('ok');
    expect(live.data.get('data.txt')!.toString()).toBe('version 1');
    expect((await other.prune()).remove).toEqual([]);
    expect((await other.backup()).status).toBe('complete');
  });

  it('a restore started during a backup is refused and changes nothing', async () => {
    const storage = createFsStorage({ root });
    const live = source('version 1');
    const engine = createBackupEngine({ sources: [live], storage });
    const { setId } = await engine.backup({ tier: 'daily' });
    live.data.set('data.txt', Buffer.from('version 2'));
    const gate = gatedPuts(storage, 'test/big.bin', 64 * 1024);
    const running = createBackupEngine({ sources: [source('other', 1)], storage: gate.storage }).backup();
    await gate.reached;
    await expect(engine.restore({ ref: setId })).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/is locked: backup by /) });
    expect(live.data.get('data.txt')!.toString()).toBe('version 2');
    gate.release();
    expect((await running).status).toBe('complete');
  });
});

describe('a lock left by a killed process', () => {
  it('on this host: taken over by the next run at once (its pid is gone), with a warning', async () => {
    const child = spawnFixture('backup-child.ts', [
      JSON.stringify({ root, sources: 'test', lockTtlMs: 600_000, freeze: { at: 'put-done', key: '/.scholaria-backup/locks/' } } satisfies BackupChildConfig),
    ]);
    await child.waitForLine(/^HOLD /);
    // While the holder lives, its lock is respected.
    const logger = captureLogger();
    const engine = createBackupEngine({ sources: [source('x')], storage: createFsStorage({ root }), logger });
    await expect(engine.backup()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining(`pid ${child.pid} on ${hostname()}`) });
    await child.kill();
    const result = await engine.backup();
    expect(result.status).toBe('complete');
    expect(logger.lines.some((l) => l.startsWith('warn taking over a stale lock') && l.includes(`process ${child.pid}`) && l.includes('is gone'))).toBe(true);
    expect(await lockFiles()).toEqual([]);
  });

  it('from another host (a killed container): refused until its TTL passed, then taken over', async () => {
    // The holder runs in its own UTS namespace with another host name, like another container.
    const probe = spawnSync('unshare', ['--uts', 'true']);
    expect(probe.status, `unshare --uts must work (as root): ${probe.stderr}`).toBe(0);
    const ttlMs = 4000;
    const config: BackupChildConfig = { root, sources: 'test', lockTtlMs: ttlMs, freeze: { at: 'put-done', key: '/.scholaria-backup/locks/' } };
    const { holder, exited } = await holdLockInNamespaces(['--uts'], 'hostname backup-container-b && exec', config);
    const [lockName] = await lockFiles();
    const lock = JSON.parse(await readFile(join(root, '.scholaria-backup', 'locks', lockName!), 'utf8')) as { host: string; heartbeatAt: string };
    expect(lock.host).toBe('backup-container-b');
    // SIGKILL the container's process tree.
    const tree = descendants(holder.pid!);
    holder.kill('SIGKILL');
    for (const d of tree) {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;

    const logger = captureLogger();
    const engine = createBackupEngine({ sources: [source('x')], storage: createFsStorage({ root }), logger });
    const refusal = await engine.backup().then(
      () => undefined,
      (e: BackupError) => e,
    );
    // The heartbeat is fresh: another host's process cannot be checked, so the TTL decides.
    expect(Date.now() - Date.parse(lock.heartbeatAt)).toBeLessThan(ttlMs);
    expect(refusal?.code).toBe('LOCKED');
    expect(refusal?.message).toMatch(/is locked: backup by .+ \(pid \d+ on backup-container-b/);
    expect(refusal?.hint).toMatch(/expires 4 s after its last heartbeat/);
    expect((await engine.list({ includeIncomplete: true })).length).toBe(0);

    await sleep(Math.max(0, Date.parse(lock.heartbeatAt) + ttlMs + 300 - Date.now()));
    const result = await engine.backup();
    expect(result.status).toBe('complete');
    expect(logger.lines.some((l) => /^warn taking over a stale lock .*backup-container-b.*heartbeat \d+ s old \(ttl 4 s\)/.test(l))).toBe(true);
    expect((await engine.verify({ ref: result.setId })).ok).toBe(true);
    expect(await lockFiles()).toEqual([]);
  });
});

describe('a live lock held from another PID namespace with the same host name (issue 17 B)', () => {
  // Host-network containers, Kubernetes hostNetwork pods and compose services sharing a hostname:
  // same host name, own PID namespace, so the holder's PID means nothing here.
  it('is respected while its heartbeat is fresh (backup and prune refused, the running set kept), taken over only after its TTL', async () => {
    const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']);
    expect(probe.status, `unshare --pid must work (as root): ${probe.stderr}`).toBe(0);
    // Pick a PID free here; the holder gets that PID inside its namespace (ns_last_pid), so on
    // this side "process N is gone" would be concluded from a PID that is not visible here.
    const alive = pidAlive;
    let innerPid = 30_000;
    while (alive(innerPid) || alive(innerPid - 1)) innerPid--;
    // Generous: the holder is frozen (no heartbeat), and the refusals below must land inside the TTL even on a loaded machine.
    const ttlMs = 15_000;
    const config: BackupChildConfig = { root, sources: 'test', lockTtlMs: ttlMs, freeze: { at: 'put-done', key: '/.scholaria-backup/locks/' } };
    const { holder, exited } = await holdLockInNamespaces(['--pid', '--fork', '--kill-child=SIGKILL', '--mount-proc'], `echo ${innerPid - 1} > /proc/sys/kernel/ns_last_pid &&`, config);
    try {
      const [lockName] = await lockFiles();
      const lockPath = join(root, '.scholaria-backup', 'locks', lockName!);
      const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { host: string; pid: number; heartbeatAt: string; bootId?: string; pidNamespace?: string };
      expect(lock.host).toBe(hostname());
      expect(lock.pid).toBe(innerPid);
      expect(alive(lock.pid), `pid ${lock.pid} must not be visible here`).toBe(false);
      expect(lock.bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(lock.pidNamespace).toMatch(/^pid:\[\d+\]$/);
      expect(lock.pidNamespace).not.toBe((await import('node:fs')).readlinkSync('/proc/self/ns/pid'));

      const logger = captureLogger();
      const engine = createBackupEngine({ sources: [source('x')], storage: createFsStorage({ root }), logger });
      const refusal = await engine.backup().then(
        () => undefined,
        (e: BackupError) => e,
      );
      expect(Date.now() - Date.parse(lock.heartbeatAt)).toBeLessThan(ttlMs);
      expect(refusal?.code).toBe('LOCKED');
      expect(refusal?.message).toMatch(new RegExp(`is locked: backup by .+ \\(pid ${innerPid} on ${hostname()}`));
      const prune = await engine.prune().then(
        () => undefined,
        (e: BackupError) => e,
      );
      expect(prune?.code).toBe('LOCKED');
      // The holder's lock is still there and was not reported as taken over.
      expect(await lockFiles()).toEqual([lockName]);
      expect(logger.lines.filter((l) => l.includes('taking over'))).toEqual([]);

      // Kill the holder; only once its heartbeat expired is the lock taken over.
      holder.kill('SIGKILL');
      await exited;
      const last = JSON.parse(await readFile(lockPath, 'utf8')) as { heartbeatAt: string };
      await sleep(Math.max(0, Date.parse(last.heartbeatAt) + ttlMs + 300 - Date.now()));
      const result = await engine.backup();
      expect(result.status).toBe('complete');
      expect(logger.lines.some((l) => /^warn taking over a stale lock .*heartbeat \d+ s old \(ttl 15 s\)/.test(l))).toBe(true);
    } finally {
      holder.kill('SIGKILL');
      await exited;
    }
  });

  it('a lock from this host with another boot id, or with no boot id (older versions), is judged by its heartbeat only', async () => {
    const storage = createFsStorage({ root });
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { processIdentity } = await import('@scholaria/backup-core');
    const self = processIdentity();
    expect(self.bootId, 'this test runs on Linux with /proc').toBeDefined();
    await mkdir(join(root, '.scholaria-backup', 'locks'), { recursive: true });
    // A PID that is not alive here.
    let deadPid = 31_000;
    while (pidAlive(deadPid)) deadPid--;
    const now = new Date().toISOString();
    const base = { action: 'backup', host: hostname(), pid: deadPid, actor: 'test', createdAt: now, heartbeatAt: now, ttlMs: 600_000, acquired: true };
    for (const [name, extra] of [
      ['other-boot', { bootId: '00000000-0000-4000-8000-000000000000', pidNamespace: self.pidNamespace }],
      ['no-identity', {}],
    ] as const) {
      const file = join(root, '.scholaria-backup', 'locks', `000000000000001-${name}.json`);
      await writeFile(file, JSON.stringify({ id: name, ...base, ...extra }));
      await expect(createBackupEngine({ sources: [source('x')], storage }).backup(), name).rejects.toMatchObject({ code: 'LOCKED' });
      const { rm } = await import('node:fs/promises');
      await rm(file);
    }
    // Same boot and namespace: provably gone, taken over at once.
    const file = join(root, '.scholaria-backup', 'locks', '000000000000001-same.json');
    await writeFile(file, JSON.stringify({ id: 'same', ...base, bootId: self.bootId, pidNamespace: self.pidNamespace }));
    const logger = captureLogger();
    expect((await createBackupEngine({ sources: [source('x')], storage, logger }).backup()).status).toBe('complete');
    expect(logger.lines.some((l) => l.includes(`process ${deadPid} on ${hostname()} is gone (same boot and PID namespace)`))).toBe(true);
  });
});

describe('separate processes: prune, restore and backup while another process is mid-backup (issue 17 item 4)', () => {
  it('all three are refused while the backup runs; its half-written set is neither deleted nor visible; after the writer dies its lock is taken over', async () => {
    const storage = createFsStorage({ root });
    const live = source('version 1');
    const retention = { tiers: { daily: { last: 1 } }, incompleteGracePeriod: '0s' };
    const engine = createBackupEngine({ sources: [live], storage, retention });
    const { setId } = await engine.backup({ tier: 'daily' });
    live.data.set('data.txt', Buffer.from('version 2'));
    const child = spawnFixture('backup-child.ts', [
      JSON.stringify({ root, sources: 'test', testBytes: 1024 * 1024, lockTtlMs: 600_000, freeze: { at: 'put', key: 'test/big.bin', afterBytes: 256 * 1024 } } satisfies BackupChildConfig),
    ]);
    try {
      await child.waitForLine(/^HOLD /);
      const writing = (await engine.list({ includeIncomplete: true })).filter((s) => s.id !== setId);
      await expect(engine.prune()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(new RegExp(`is locked: backup by .+ \\(pid ${child.pid} `)) });
      await expect(engine.restore({ ref: setId })).rejects.toMatchObject({ code: 'LOCKED' });
      await expect(engine.backup({ tier: 'daily' })).rejects.toMatchObject({ code: 'LOCKED' });
      expect(live.data.get('data.txt')!.toString()).toBe('version 2');
      // Nothing half-visible: only the complete set is listed as a set; the child's folder is still there.
      expect((await engine.list()).map((s) => s.id)).toEqual([setId]);
      expect((await engine.list({ includeIncomplete: true })).filter((s) => s.id !== setId)).toEqual(writing);
    } finally {
      await child.kill();
    }
    const logger = captureLogger();
    const after = createBackupEngine({ sources: [live], storage, retention, logger });
    const pruned = await after.prune();
    expect(logger.lines.some((l) => l.startsWith('warn taking over a stale lock') && l.includes(`process ${child.pid}`))).toBe(true);
    expect(pruned.keep.map((k) => k.id)).toContain(setId);
    expect((await after.verify({ ref: setId })).ok).toBe(true);
  });
});
