import { readFile, writeFile, readdir, mkdir, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBackupEngine, retentionFromDays, type Logger } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { spawnFixture } from './helpers.js';

function captureLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

describe('engine lifecycle', () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await dir.remove();
  });

  it('a backup killed with SIGKILL mid-write leaves no manifest; list hides it; prune removes it', async () => {
    const child = spawnFixture('slow-backup.ts', [dir.path, String(256 * 1024 * 1024)]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('started')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`fixture exited early (${code}): ${stderr}`)));
    });
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const sets = (await readdir(dir.path)).filter((n) => n.startsWith('scholaria_backup_'));
    expect(sets).toHaveLength(1);
    const files = await readdir(join(dir.path, sets[0]!), { recursive: true });
    expect(files).not.toContain('manifest.json');

    const engine = createBackupEngine({
      sources: [createTestSource()],
      storage: createFsStorage({ root: dir.path }),
      retention: { ...retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }), incompleteGracePeriod: '0s' },
    });
    expect(await engine.list()).toEqual([]);
    const all = await engine.list({ includeIncomplete: true });
    expect(all.map((s) => [s.id, s.status])).toEqual([[sets[0], 'incomplete']]);
    const verify = await engine.verify({ all: true });
    expect(verify.sets).toEqual([]);

    // The killed run's lock is stale (its pid is gone): the next backup takes it over.
    const next = await engine.backup({ tier: 'daily' });
    expect(next.status).toBe('complete');

    const pruned = await engine.prune();
    expect(pruned.remove.map((r) => r.id)).toEqual([sets[0]]);
    expect(pruned.remove[0]!.reasons[0]).toMatch(/incomplete/);
    const left = (await readdir(dir.path)).filter((n) => n.startsWith('scholaria_backup_'));
    expect(left).toEqual([next.setId]);
  });

  it('refuses a second backup while one holds the lock, with a clear message', async () => {
    const storage = createFsStorage({ root: dir.path });
    const slow = createBackupEngine({ sources: [createTestSource({ generated: { 'big.bin': 8 * 1024 * 1024 }, chunkDelayMs: 5 })], storage });
    const other = createBackupEngine({ sources: [createTestSource()], storage });
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const first = slow.backup({ onProgress: () => started() });
    await startedP;
    await expect(other.backup()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/is locked: backup by .* is running/) });
    await expect(other.prune()).rejects.toMatchObject({ code: 'LOCKED' });
    expect((await first).status).toBe('complete');
    expect((await other.backup()).status).toBe('complete');
  });

  it('takes over a stale lock whose heartbeat expired, with a warning', async () => {
    await mkdir(join(dir.path, '.scholaria-backup', 'locks'), { recursive: true });
    const old = new Date(Date.now() - 60 * 60_000).toISOString();
    await writeFile(
      join(dir.path, '.scholaria-backup', 'locks', '000000000000001-aaaaaaaaaaaa.json'),
      JSON.stringify({ id: '000000000000001-aaaaaaaaaaaa', action: 'backup', host: 'other-host', pid: 1, actor: 'x@other-host', createdAt: old, heartbeatAt: old, ttlMs: 600_000 }),
    );
    const logger = captureLogger();
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), logger });
    expect((await engine.backup()).status).toBe('complete');
    expect(logger.lines.some((l) => /^warn taking over a stale lock .*backup by x@other-host.*heartbeat \d+ s old/.test(l))).toBe(true);
    expect(await readdir(join(dir.path, '.scholaria-backup', 'locks')).catch(() => [])).toEqual([]);
  });

  it('refuses a live lock of another host until its heartbeat expires', async () => {
    await mkdir(join(dir.path, '.scholaria-backup', 'locks'), { recursive: true });
    const now = new Date().toISOString();
    await writeFile(
      join(dir.path, '.scholaria-backup', 'locks', '000000000000001-bbbbbbbbbbbb.json'),
      JSON.stringify({ id: '000000000000001-bbbbbbbbbbbb', action: 'restore', host: `not-${hostname()}`, pid: 1, actor: 'ops@elsewhere', createdAt: now, heartbeatAt: now, ttlMs: 600_000 }),
    );
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }) });
    await expect(engine.backup()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('restore by ops@elsewhere') });
    expect((await readdir(dir.path)).filter((n) => n.startsWith('scholaria_backup_'))).toEqual([]);
  });

  it('prune sweeps a set folder that holds only a stale temp file (a backup killed during its first artifact)', async () => {
    // What a writer killed before its first artifact was renamed into place leaves behind:
    // a set folder that `list` cannot see, because temp files are not objects.
    const killed = join(dir.path, 'scholaria_backup_20261120_020000', 'postgres');
    await mkdir(killed, { recursive: true });
    await writeFile(join(killed, '.tmp-4242-0123456789abcdef'), 'half a dump');
    const fresh = join(dir.path, 'scholaria_backup_20261126_020000');
    await mkdir(fresh, { recursive: true });
    await writeFile(join(fresh, '.tmp-4343-fedcba9876543210'), 'a backup still writing');
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(killed, '.tmp-4242-0123456789abcdef'), old, old);

    const engine = createBackupEngine({
      sources: [createTestSource()],
      storage: createFsStorage({ root: dir.path }),
      retention: { ...retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }), incompleteGracePeriod: '1h' },
    });
    expect(await engine.list({ includeIncomplete: true })).toEqual([]);

    const dry = await engine.prune({ dryRun: true });
    expect(dry.staleTempFiles).toEqual([
      { storage: `fs:${dir.path}`, key: 'scholaria_backup_20261120_020000/postgres/.tmp-4242-0123456789abcdef' },
    ]);
    expect(await readdir(killed)).toEqual(['.tmp-4242-0123456789abcdef']);

    const logger = captureLogger();
    const real = await createBackupEngine({ ...engine.options, logger }).prune();
    expect(real.staleTempFiles).toEqual(dry.staleTempFiles);
    expect(logger.lines.some((l) => /and 1 stale temp files/.test(l))).toBe(true);
    // The killed run's folder is gone; the fresh temp file (younger than the grace period) stays.
    expect((await readdir(dir.path)).filter((n) => n.startsWith('scholaria_backup_'))).toEqual(['scholaria_backup_20261126_020000']);
    expect(await readdir(fresh)).toEqual(['.tmp-4343-fedcba9876543210']);
  });

  it('prunes by tier with reasons, never the newest complete set, and dry-run deletes nothing', async () => {
    let now = new Date('2026-11-01T02:00:00Z');
    const storage = createFsStorage({ root: dir.path });
    const engine = createBackupEngine({ sources: [createTestSource()], storage, clock: () => now, retention: retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }) });
    const ids: Record<string, string[]> = { daily: [], monthly: [] };
    for (let day = 0; day < 20; day++) {
      now = new Date(Date.UTC(2026, 10, 1 + day, 2));
      ids.daily!.push((await engine.backup({ tier: 'daily' })).setId);
    }
    now = new Date(Date.UTC(2025, 0, 1, 4));
    ids.monthly!.push((await engine.backup({ tier: 'monthly' })).setId);
    now = new Date(Date.UTC(2026, 10, 21, 3));

    const dry = await engine.prune({ dryRun: true });
    // within 7d of the newest daily set (Nov 20): Nov 14..20 kept, Nov 1..13 removed.
    expect(dry.remove.map((r) => r.id).sort()).toEqual(ids.daily!.slice(0, 13).sort());
    expect(dry.keep.filter((k) => k.tier === 'daily')).toHaveLength(7);
    for (const k of dry.keep) expect(k.reasons.length).toBeGreaterThan(0);
    // The only monthly set is older than 365 days but is the newest complete monthly set.
    expect(dry.keep.find((k) => k.id === ids.monthly![0])!.reasons.join(' ')).toMatch(/newest complete set/);
    expect((await engine.list()).length).toBe(21);

    const real = await engine.prune();
    expect(real.remove.map((r) => r.id).sort()).toEqual(dry.remove.map((r) => r.id).sort());
    expect((await engine.list()).length).toBe(8);
    expect((await engine.prune()).remove).toEqual([]);
  });

  it('audits every backup, restore, verify and prune in a hash chain that detects edits', async () => {
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), actor: 'ops@test' });
    const { setId } = await engine.backup({ tier: 'daily' });
    await engine.verify({ ref: setId });
    await engine.restore({ ref: setId });
    await engine.prune();
    const auditDir = join(dir.path, '.scholaria-backup', 'audit');
    const [file] = await readdir(auditDir);
    const lines = (await readFile(join(auditDir, file!), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.action, l.result, l.actor])).toEqual([
      ['backup', 'ok', 'ops@test'],
      ['verify', 'ok', 'ops@test'],
      ['restore', 'ok', 'ops@test'],
      ['prune', 'ok', 'ops@test'],
    ]);
    expect((await engine.verifyAudit()).ok).toBe(true);

    const text = await readFile(join(auditDir, file!), 'utf8');
    await writeFile(join(auditDir, file!), text.replace('"action":"restore"', '"action":"backup"'));
    const broken = await engine.verifyAudit();
    expect(broken.ok).toBe(false);
    expect(broken.firstBroken!.line).toBe(3);
  });

  it('health reports storage, disk space, recent backups per tier and sources', async () => {
    const now = new Date();
    const engine = createBackupEngine({
      sources: [createTestSource(), createTestSource({ name: 'sick', healthy: false })],
      storage: createFsStorage({ root: dir.path }),
      retention: retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }),
      clock: () => now,
      minFreeBytes: 1,
    });
    await engine.backup({ tier: 'daily' });
    const report = await engine.health();
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(byName[`storage fs:${dir.path}`]).toBe('ok');
    expect(byName[`disk space fs:${dir.path}`]).toBe('ok');
    expect(byName['recent daily backup']).toBe('ok');
    expect(byName['recent weekly backup']).toBe('warn');
    expect(byName['source test']).toBe('ok');
    expect(byName['source sick']).toBe('fail');
    expect(report.status).toBe('fail');
  });

  it('health fails when the newest daily backup is too old', async () => {
    let now = new Date('2026-11-01T02:00:00Z');
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), clock: () => now, minFreeBytes: 1 });
    await engine.backup({ tier: 'daily' });
    now = new Date('2026-11-03T02:00:00Z');
    const check = (await engine.health()).checks.find((c) => c.name === 'recent daily backup')!;
    expect(check.status).toBe('fail');
    expect(check.message).toMatch(/2\.0 days old/);
  });

  it('streams a large artifact with memory that does not grow with its size', async () => {
    const bytes = 192 * 1024 * 1024;
    const source = createTestSource({ generated: { 'big.bin': bytes } });
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }) });
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const result = await engine.backup();
      expect(result.status).toBe('complete');
      await engine.restore({ ref: 'latest' });
    } finally {
      clearInterval(timer);
    }
    expect(source.received.get('big.bin')).toEqual(source.expectedDigest('big.bin'));
    expect(peak - base).toBeLessThan(96 * 1024 * 1024);
  });
});
