// SIGKILL of a backup process at 20 seeded points spread over lock, dump, upload, SHA256SUMS,
// manifest and audit, against real PostgreSQL + Redis and against the generated test source.
// After each kill: the live data is unchanged, list() never shows the killed set as complete
// (unless its manifest had committed, and then it verifies), verify and the next backup work.
import { statSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, retentionFromDays, type BackupEngine } from '@scholaria/backup-core';
import { createFsStorage, TEMP_PREFIX } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createRedisSource } from '@scholaria/backup-redis';
import {
  createTestSource,
  makeTempDir,
  startPostgres,
  startRedis,
  type PostgresServer,
  type RedisServer,
  type TempDir,
} from '@scholaria/backup-testkit';
import {
  FAULT_SEED,
  assertCatalogSound,
  descendants,
  seededRandom,
  sha256sumCheck,
  shuffle,
  sleep,
  spawnFixture,
  waitFor,
  walk,
} from './helpers/common.js';
import type { FreezePoint } from './helpers/freeze-storage.js';
import { pgDigest, redisDigest, seedPostgres, seedRedis } from './helpers/live-data.js';
import type { BackupChildConfig } from './fixtures/backup-child.js';

type Phase = 'lock' | 'dump' | 'dump-timed' | 'upload' | 'upload-end' | 'sums' | 'sums-done' | 'manifest' | 'manifest-end' | 'committed' | 'audit';

interface KillPoint {
  n: number;
  phase: Phase;
  sources: 'real' | 'test';
  /** Fraction used to pick a byte offset (or a delay) inside the phase. */
  at: number;
  /** For real sources: which component's artifact the dump/upload points hit. */
  component: 'postgres' | 'redis';
}

/** The 20 points, derived from FAULT_SEED: every phase at least once, real and test sources mixed. */
function killPlan(seed: number): KillPoint[] {
  const random = seededRandom(seed);
  const phases: Phase[] = ['lock', 'dump', 'dump-timed', 'upload', 'upload-end', 'sums', 'sums-done', 'manifest', 'manifest-end', 'committed', 'audit'];
  // The data-carrying phases get the extra draws.
  const extra: Phase[] = shuffle(['dump', 'dump', 'upload', 'upload', 'sums', 'manifest', 'manifest', 'dump-timed', 'upload-end'], random);
  const order = shuffle([...phases, ...extra].slice(0, 20), random);
  return order.map((phase, n) => ({
    n: n + 1,
    phase,
    sources: phase === 'dump-timed' || random() < 0.5 ? 'real' : 'test',
    at: random(),
    component: random() < 0.5 ? 'postgres' : 'redis',
  }));
}

const PLAN = killPlan(FAULT_SEED);
const TEST_BYTES = 3 * 1024 * 1024;
const COMMITTED: Phase[] = ['committed', 'audit'];

let pg: PostgresServer;
let redis: RedisServer;
let dirReal: TempDir;
let dirTest: TempDir;
let engineReal: BackupEngine;
let engineTest: BackupEngine;
let liveBefore: { pg: string; redis: string };
/** Stored sizes of the baseline sets' files, to place byte offsets inside them. */
const sizes: Record<'real' | 'test', Map<string, number>> = { real: new Map(), test: new Map() };
const baseline: Record<'real' | 'test', string> = { real: '', test: '' };

function engineFor(kind: 'real' | 'test', root: string): BackupEngine {
  const sources =
    kind === 'real'
      ? [createPostgresSource({ url: pg.url('app') }), createRedisSource({ url: redis.url(), scanCount: 200, batchSize: 200 })]
      : [createTestSource({ name: 'test', files: { 'small.txt': 'small artifact\n' }, generated: { 'big.bin': TEST_BYTES } })];
  return createBackupEngine({
    sources,
    storage: createFsStorage({ root }),
    retention: { ...retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }), incompleteGracePeriod: '0s' },
  });
}

function freezeFor(p: KillPoint): FreezePoint | undefined {
  const artifact = p.sources === 'test' ? 'test/big.bin' : p.component === 'postgres' ? 'postgres/app.dump' : 'redis/dump.resp';
  const known = sizes[p.sources];
  const size = [...known].find(([path]) => path.startsWith(artifact))?.[1] ?? 1024 * 1024;
  const offset = Math.max(1, Math.floor(size * (0.05 + 0.9 * p.at)));
  const within = (file: string) => Math.floor((known.get(file) ?? 64) * 0.95 * p.at);
  switch (p.phase) {
    case 'lock':
      return { at: 'put-done', key: '/.scholaria-backup/locks/' };
    case 'dump':
      return { at: 'progress', component: p.sources === 'test' ? 'test' : p.component, afterBytes: offset };
    case 'dump-timed':
      return undefined;
    case 'upload':
      return { at: 'put', key: artifact, afterBytes: offset };
    case 'upload-end':
      return { at: 'put', key: artifact, afterBytes: 'end' };
    case 'sums':
      return { at: 'put', key: 'SHA256SUMS', afterBytes: within('SHA256SUMS') };
    case 'sums-done':
      return { at: 'put-done', key: 'SHA256SUMS' };
    case 'manifest':
      return { at: 'put', key: 'manifest.json', afterBytes: within('manifest.json') };
    case 'manifest-end':
      return { at: 'put', key: 'manifest.json', afterBytes: 'end' };
    case 'committed':
      return { at: 'put-done', key: 'manifest.json' };
    case 'audit':
      return { at: 'put', key: '/.scholaria-backup/audit/', afterBytes: Math.floor(200 * p.at) };
  }
}

async function setDirs(root: string): Promise<string[]> {
  return (await readdir(root).catch(() => [] as string[])).filter((n) => n.startsWith('scholaria_backup_')).sort();
}

beforeAll(async () => {
  [pg, redis] = await Promise.all([startPostgres(), startRedis({ password: 'kill-test-redis-pw' })]);
  await pg.createDatabase('app');
  await seedPostgres(pg, 'app', 50_000);
  await seedRedis(redis, 4000);
  dirReal = await makeTempDir('faults-kill-real-');
  dirTest = await makeTempDir('faults-kill-test-');
  engineReal = engineFor('real', join(dirReal.path, 'backup'));
  engineTest = engineFor('test', join(dirTest.path, 'backup'));
  liveBefore = { pg: await pgDigest(pg, 'app'), redis: await redisDigest(redis) };
  // A good set on each storage before any kill: it must survive all of them untouched.
  for (const [kind, engine] of [['real', engineReal], ['test', engineTest]] as const) {
    const r = await engine.backup({ tier: 'daily' });
    expect(r.status, JSON.stringify(r.components.map((c) => c.error?.message))).toBe('complete');
    baseline[kind] = r.setId;
    for (const c of r.manifest!.components) for (const a of c.artifacts) sizes[kind].set(a.path, a.size);
    const setDir = join(engine === engineReal ? dirReal.path : dirTest.path, 'backup', r.setId);
    for (const file of ['SHA256SUMS', 'manifest.json']) sizes[kind].set(file, (await stat(join(setDir, file))).size);
  }
});

afterAll(async () => {
  await engineReal?.close();
  await engineTest?.close();
  await Promise.all([pg?.stop(), redis?.stop(), dirReal?.remove(), dirTest?.remove()]);
});

describe(`SIGKILL of a backup at 20 seeded points (FAULT_SEED=${FAULT_SEED})`, () => {
  it.each(PLAN.map((p) => [`#${p.n} ${p.phase} (${p.sources}${p.sources === 'real' ? `, ${p.component}` : ''}, at ${p.at.toFixed(3)})`, p] as const))(
    'kill %s: nothing half-done looks done; list, verify and the next backup work',
    async (_label, point) => {
      const engine = point.sources === 'real' ? engineReal : engineTest;
      const root = join((point.sources === 'real' ? dirReal : dirTest).path, 'backup');
      const before = await setDirs(root);
      const freeze = freezeFor(point);
      const config: BackupChildConfig = {
        root,
        sources: point.sources,
        testBytes: TEST_BYTES,
        postgresUrl: pg.url('app'),
        redisUrl: redis.url(),
        ...(freeze ? { freeze } : {}),
      };
      const child = spawnFixture('backup-child.ts', [JSON.stringify(config)]);
      try {
        if (point.phase === 'dump-timed') {
          // A truly timed kill: some milliseconds after pg_dump started streaming.
          // The pg_dump that streams the database (not `pg_dump --version`) names it with --dbname.
          const dumping = () => descendants(child.pid).some((d) => d.comm === 'pg_dump' && d.cmdline.some((a) => a.startsWith('--dbname=')));
          await waitFor(dumping, 'pg_dump to start', 60_000, 5);
          await sleep(Math.floor(point.at * 120));
        } else {
          const hold = await child.waitForLine(/^HOLD /);
          expect(hold).toMatch(/^HOLD /);
        }
        await child.kill();
      } finally {
        child.killGroup();
      }
      const exit = await child.exited;
      expect(exit.signal, `the fixture must die by SIGKILL, stdout: ${child.lines.join(' | ')} stderr: ${child.stderr().slice(-2000)}`).toBe('SIGKILL');

      // Live data: a backup reads only.
      if (point.sources === 'real') {
        expect(await pgDigest(pg, 'app')).toBe(liveBefore.pg);
        expect(await redisDigest(redis)).toBe(liveBefore.redis);
      }

      const killedIds = (await setDirs(root)).filter((d) => !before.includes(d));
      expect(killedIds.length).toBeLessThanOrEqual(1);
      const killedId = killedIds[0];
      const { complete, incomplete } = await assertCatalogSound(engine);
      const manifestWritten = killedId
        ? (await readdir(join(root, killedId)).catch(() => [] as string[])).includes('manifest.json')
        : false;

      if (process.env.FAULT_VERBOSE) {
        const shown = (await engine.list({ includeIncomplete: true })).find((s) => s.id === killedId);
        console.info(`kill #${point.n} ${point.phase}: ${child.lines.find((l) => l.startsWith('HOLD')) ?? 'timed kill'}; set ${killedId ?? '(nothing visible)'} ${shown ? `listed as ${shown.status}` : 'not listed'}`);
      }
      if (COMMITTED.includes(point.phase)) {
        // The manifest had committed before the kill: a complete set that verifies by both tools.
        expect(killedId).toBeDefined();
        expect(complete).toContain(killedId);
        expect((await engine.verify({ ref: killedId! })).ok).toBe(true);
        expect(sha256sumCheck(join(root, killedId!)).ok).toBe(true);
      } else if (point.phase !== 'dump-timed') {
        expect(manifestWritten).toBe(false);
      }
      if (killedId && !manifestWritten) {
        expect(complete).not.toContain(killedId);
        const visible = (await engine.list({ includeIncomplete: true })).map((s) => s.id);
        if (visible.includes(killedId)) expect(incomplete).toContain(killedId);
        // Asked for by id, a set without manifest is refused with a clear reason.
        await expect(engine.verify({ ref: killedId })).rejects.toMatchObject({
          code: expect.stringMatching(/MANIFEST_INVALID|SET_NOT_FOUND/),
          message: expect.stringMatching(/incomplete|does not exist/),
        });
        await expect(engine.restore({ ref: killedId, dryRun: true })).rejects.toMatchObject({
          code: expect.stringMatching(/MANIFEST_INVALID|SET_NOT_FOUND/),
        });
        expect((await engine.readManifest('latest')).id).not.toBe(killedId);
      }
      if (killedId && manifestWritten) {
        expect((await engine.verify({ ref: killedId })).ok).toBe(true);
      }
      // The good set from before every kill is untouched.
      expect((await engine.verify({ ref: baseline[point.sources] })).ok).toBe(true);

      // The next backup takes over the dead process's lock and produces a set that verifies.
      const next = await engine.backup({ tier: 'daily' });
      expect(next.status, JSON.stringify(next.components.map((c) => c.error?.message))).toBe('complete');
      expect((await engine.verify({ ref: next.setId })).ok).toBe(true);
      expect(sha256sumCheck(join(root, next.setId)).ok).toBe(true);
      expect((await engine.readManifest('latest')).id).toBe(next.setId);
      expect(await readdir(join(root, '.scholaria-backup', 'locks')).catch(() => [])).toEqual([]);
    },
  );

  it('afterwards: prune removes every leftover, every remaining set verifies, and the latest restores', async () => {
    for (const [d, engine] of [[dirReal, engineReal], [dirTest, engineTest]] as const) {
      const root = join(d.path, 'backup');
      const temps = () => walk(root).then((all) => all.filter((e) => e.path.split('/').pop()!.startsWith(TEMP_PREFIX)));
      // Writers killed inside a put leave their temp file (invisible to list); prune sweeps
      // them with the storage's removeStaleTempFiles (grace period 0 s here) and reports each.
      const before = await temps();
      if (process.env.FAULT_VERBOSE) console.info(`${root}: ${before.length} temp files of killed writers before prune, ${before.reduce((n, e) => n + statSync(e.path).size, 0)} bytes`);
      const pruned = await engine.prune();
      expect(pruned.failed).toEqual([]);
      // Temp files inside a removed incomplete set go with its folder (deletePrefix); the
      // sweep reports the rest, e.g. a folder holding nothing but a temp file.
      const beforePaths = new Set(before.map((e) => e.path));
      for (const f of pruned.staleTempFiles) expect(beforePaths.has(join(root, f.key)), f.key).toBe(true);
      expect(await temps()).toEqual([]);
      const { incomplete } = await assertCatalogSound(engine);
      expect(incomplete).toEqual([]);
      const all = await engine.verify({ all: true });
      expect(all.sets.filter((s) => !s.ok).map((s) => `${s.id}: ${s.problems.join('; ')}`)).toEqual([]);
      expect(all.ok).toBe(true);
      expect((await engine.verifyAudit()).ok).toBe(true);
      expect((await engine.list({ includeIncomplete: true })).every((s) => s.status === 'complete')).toBe(true);
    }
    // Restoring the newest real set into a new database gives exactly the live data.
    const restored = await engineReal.restore({
      ref: 'latest',
      components: ['postgres'],
      componentOptions: { postgres: { mode: 'new-database', targetDatabase: 'app_check' } },
    });
    expect(restored.status, JSON.stringify(restored.components.map((c) => c.error?.message))).toBe('ok');
    expect(await pgDigest(pg, 'app_check')).toBe(liveBefore.pg);
    expect(await pgDigest(pg, 'app')).toBe(liveBefore.pg);
  });
});

describe('SIGKILL while zstd writes the dump file itself (one fs storage)', () => {
  it('pg_dump and zstd stop soon after the backup process dies, instead of running to the end of the dump', async () => {
    // A pg_dump whose output trickles out (4 KiB every 50 ms: the dump would take minutes), so
    // the tools are still running when the backup process is killed.
    const dir = join(dirReal.path, 'slow-pg-dump');
    await mkdir(dir, { recursive: true });
    const throttle = join(dir, 'throttle.cjs');
    await writeFile(
      throttle,
      `process.stdin.on('readable', function pump() { process.stdin.off('readable', pump); const step = () => { const c = process.stdin.read(4096) ?? process.stdin.read(); if (c === null) { if (process.stdin.readableEnded) return; return process.stdin.once('readable', step); } process.stdout.write(c); setTimeout(step, 50); }; step(); });`,
    );
    const pgDump = join(dir, 'pg_dump');
    await writeFile(pgDump, `#!/bin/sh\ncase " $* " in *" --version "*|*" -V "*) exec '${join(pg.binDir, 'pg_dump')}' "$@";; esac\n'${join(pg.binDir, 'pg_dump')}' "$@" | exec '${process.execPath}' '${throttle}'\n`, { mode: 0o755 });
    const root = join(dirReal.path, 'pdeathsig');
    const config: BackupChildConfig = { root, sources: 'real', postgresUrl: pg.url('app'), redisUrl: redis.url(), pgDumpPath: pgDump };
    const child = spawnFixture('backup-child.ts', [JSON.stringify(config)]);
    const tools = () =>
      descendants(child.pid).filter((d) => (d.comm === 'zstd' && !d.cmdline.includes('-d')) || (d.comm === 'pg_dump' && d.cmdline.some((a) => a.startsWith('--dbname='))));
    let running: number[] = [];
    try {
      await waitFor(() => tools().some((d) => d.comm === 'zstd') && tools().some((d) => d.comm === 'pg_dump'), 'the compressing zstd and pg_dump to run', 60_000, 10);
      // Bytes have reached the file the backup writes.
      await waitFor(async () => (await walk(root)).some((f) => !f.isDir && f.path.includes(TEMP_PREFIX)), 'the dump file to be written', 60_000, 10);
      running = tools().map((d) => d.pid);
      // SIGKILL of the Node process alone (not its group), as `kill -9 PID` would.
      await child.kill();
      const gone = (pid: number) => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      await waitFor(() => running.every(gone), 'zstd and pg_dump to exit after the backup process died', 10_000);
    } finally {
      child.killGroup();
    }
    // The compressing zstd, and pg_dump (the wrapper shell has the same name).
    expect(running.length).toBeGreaterThanOrEqual(2);
  });
});
