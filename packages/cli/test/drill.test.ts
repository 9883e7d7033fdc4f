import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine, type BackupEvent, type DrillResult, type DrillTarget, type Notifier } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresDrillTarget, createPostgresSource } from '@scholaria/backup-postgres';
import { createRedisDrillTarget, createRedisSource } from '@scholaria/backup-redis';
import { createQdrantDrillTarget, createQdrantSource } from '@scholaria/backup-qdrant';
import {
  makeTempDir,
  startPostgres,
  startQdrantSimulator,
  startRedis,
  type PostgresServer,
  type QdrantSimulator,
  type RedisServer,
  type TempDir,
} from '@scholaria/backup-testkit';
import { fingerprint } from './drill-helpers.js';
import { PACKAGES, assertBuilt, parseJson, runBin } from './helpers.js';
import { SchedulerMetrics } from '../src/metrics.js';

// Drills against a real PostgreSQL and Redis and the Qdrant simulator: the set is restored
// beside the live data, checked, and the throwaway targets are removed again.

const DB = 'scholaria';
const CHUNKS = 120;
let pg: PostgresServer;
let redis: RedisServer;
let qdrant: QdrantSimulator;
let work: TempDir;
let root: string;
const events: BackupEvent[] = [];

const notifier: Notifier = {
  specVersion: 'v1',
  name: 'capture',
  on: ['start', 'success', 'partial', 'failure'],
  async notify(event) {
    events.push(event);
  },
};

async function qd(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${qdrant.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const point = (id: number) => ({ id, vector: [Math.sin(id), Math.cos(id), id / CHUNKS, 1], payload: { chunk_id: id, topic: id % 7 } });

/** (Re)creates the live collection "chunks" with exactly these point ids. */
async function seedPoints(ids: number[]): Promise<void> {
  const list = (await qd('GET', '/collections')) as { result: { collections: { name: string }[] } };
  if (list.result.collections.some((c) => c.name === 'chunks')) await qd('DELETE', '/collections/chunks');
  await qd('PUT', '/collections/chunks', { vectors: { size: 4, distance: 'Cosine' } });
  await qd('PUT', '/collections/chunks/points?wait=true', { points: ids.map(point) });
}

function engine(extra: Partial<Parameters<typeof createBackupEngine>[0]> = {}): BackupEngine {
  return createBackupEngine({
    sources: [createPostgresSource({ url: pg.url(DB) }), createRedisSource({ url: redis.url() }), createQdrantSource({ url: qdrant.url })],
    storage: createFsStorage({ root }),
    notifiers: [notifier],
    notify: { retries: 0 },
    ...extra,
  });
}

function targets(): DrillTarget[] {
  return [createPostgresDrillTarget({ url: pg.url(DB) }), createRedisDrillTarget({ url: redis.url() }, { databases: [14, 15] }), createQdrantDrillTarget({ url: qdrant.url })];
}

const joins = [{ left: { component: 'postgres', table: 'chunks', column: 'id' }, right: { component: 'qdrant', collection: 'chunks' } }];

async function leftovers() {
  const dbs = (await pg.query<{ d: string }>('postgres', "SELECT datname AS d FROM pg_database WHERE datname LIKE 'scholaria\\_drill\\_%'")).map((r) => r.d);
  const collections = ((await qd('GET', '/collections')) as { result: { collections: { name: string }[] } }).result.collections.map((c) => c.name).filter((n) => n.includes('_drill_'));
  const redisKeys = [Number(await redis.command('EVAL', "redis.call('SELECT', '14'); return redis.call('DBSIZE')", '0')), Number(await redis.command('EVAL', "redis.call('SELECT', '15'); return redis.call('DBSIZE')", '0'))];
  return { dbs, collections, redisKeys };
}

beforeAll(async () => {
  work = await makeTempDir('scholaria-drill-');
  root = join(work.path, 'backup');
  [pg, redis, qdrant] = await Promise.all([startPostgres(), startRedis(), startQdrantSimulator()]);
  await pg.createDatabase(DB);
  await pg.query(
    DB,
    `CREATE TABLE topics (id serial PRIMARY KEY, name text NOT NULL);
     INSERT INTO topics (name) SELECT 'topic ' || g FROM generate_series(1, 7) g;
     CREATE TABLE chunks (id integer PRIMARY KEY, topic_id integer NOT NULL REFERENCES topics, body text NOT NULL);
     CREATE INDEX chunks_topic ON chunks (topic_id);
     INSERT INTO chunks SELECT g, 1 + g % 7, repeat('chunk text ', 20) || g FROM generate_series(1, ${CHUNKS}) g;`,
  );
  await redis.command('SET', 'session:alice', 'token-a');
  await redis.command('SET', 'session:bob', 'token-b');
  for (let i = 0; i < 5; i++) await redis.command('RPUSH', 'celery', JSON.stringify({ body: `task-${i}`, headers: { id: `t${i}` }, 'content-type': 'application/json' }));
  await redis.command('EVAL', "redis.call('SELECT', '1'); redis.call('SET', 'cache:home', 'html'); return 1", '0');
  await seedPoints(Array.from({ length: CHUNKS }, (_, i) => i + 1));
});

afterAll(async () => {
  await Promise.allSettled([pg?.stop(), redis?.stop(), qdrant?.stop()]);
  await work?.remove();
});

describe('restore drill', () => {
  let good: DrillResult;

  it('a good set passes every check, reports the RTO and leaves the live data byte-identical', async () => {
    const e = engine({ drillMaxAgeMs: 14 * 24 * 3600_000 });
    const backup = await e.backup({ tier: 'daily' });
    expect(backup.status).toBe('complete');
    const before = await fingerprint(pg, redis, qdrant, DB);
    events.length = 0;
    good = await e.drill({ targets: targets(), joins });
    const after = await fingerprint(pg, redis, qdrant, DB);
    expect(after.parts).toEqual(before.parts);
    expect(after.digest).toBe(before.digest);

    expect(good.status, JSON.stringify(good, null, 2)).toBe('passed');
    expect(good.setId).toBe(backup.setId);
    expect(good.components.map((c) => [c.name, c.status])).toEqual([
      ['postgres', 'ok'],
      ['redis', 'ok'],
      ['qdrant', 'ok'],
    ]);
    expect(good.components[0]!.target).toBe(`postgres database "scholaria_drill_${good.drillId}"`);
    expect(good.components[2]!.target).toBe(`qdrant collection "chunks_drill_${good.drillId}"`);
    expect(Object.keys(good.rto.components)).toEqual(['postgres', 'redis', 'qdrant']);
    expect(good.rto.totalMs).toBeGreaterThanOrEqual(Math.max(...Object.values(good.rto.components)));
    const check = (component: string | undefined, name: string) => good.checks.find((c) => c.component === component && c.name === name);
    expect(check('postgres', 'counts')).toMatchObject({ status: 'pass', figures: { tables: 2, restoredRows: CHUNKS + 7, expectedRows: CHUNKS + 7 } });
    // amcheck ships with postgresql-contrib, which the test servers have.
    expect(check('postgres', 'amcheck')).toMatchObject({ status: 'pass' });
    expect(check('postgres', 'amcheck')!.figures!.indexes).toBeGreaterThanOrEqual(3);
    expect(check('redis', 'counts')).toMatchObject({ status: 'pass', figures: { expectedKeys: 4, restoredKeys: 4 } });
    expect(check('redis', 'celery-queues')).toMatchObject({ status: 'pass', figures: { queues: 1, messages: 5, invalid: 0 } });
    expect(check('qdrant', 'counts')).toMatchObject({ status: 'pass', figures: { restoredPoints: CHUNKS } });
    expect(check(undefined, 'cross-store')).toMatchObject({ status: 'pass', figures: { left: CHUNKS, right: CHUNKS, matched: CHUNKS, missing: 0, orphaned: 0 } });

    expect(good.cleanedUp).toEqual(expect.arrayContaining([`postgres database "scholaria_drill_${good.drillId}"`, `qdrant collection "chunks_drill_${good.drillId}"`]));
    expect(await leftovers()).toEqual({ dbs: [], collections: [], redisKeys: [0, 0] });

    // Results: the notifier, the audit log, the drill record read by health.
    expect(events.map((ev) => ev.type)).toEqual(['drill.succeeded']);
    expect(events[0]!.details!.some((d) => d.includes('PASS') && d.includes('cross-store'))).toBe(true);
    const audit = await e.verifyAudit();
    expect(audit.ok).toBe(true);
    const health = await e.health();
    expect(health.checks.find((c) => c.name === 'restore drill')).toMatchObject({ status: 'ok' });
    await e.close();
  });

  it('a set whose Qdrant points do not match the chunks fails and names the mismatches', async () => {
    // Two chunks lose their points and one point has no chunk.
    await seedPoints([...Array.from({ length: CHUNKS }, (_, i) => i + 1).filter((id) => id !== 7 && id !== 8), 9001]);
    const e = engine();
    const backup = await e.backup({ tier: 'daily' });
    expect(backup.status).toBe('complete');
    const before = await fingerprint(pg, redis, qdrant, DB);
    events.length = 0;
    const result = await e.drill({ targets: targets(), joins, maxMismatches: 5 });
    expect((await fingerprint(pg, redis, qdrant, DB)).digest).toBe(before.digest);
    expect(result.status).toBe('failed');
    const cross = result.checks.find((c) => c.name === 'cross-store')!;
    expect(cross).toMatchObject({ status: 'fail', figures: { left: CHUNKS, right: CHUNKS - 1, matched: CHUNKS - 2, missing: 2, orphaned: 1 } });
    expect(cross.mismatches).toEqual(['chunks.id 7 has no chunks point', 'chunks.id 8 has no chunks point', 'chunks point 9001 is orphaned (no chunks.id)']);
    expect(result.error?.message).toMatch(/cross-store/);
    // The counts of each store still agree with its own manifest: only the join sees the damage.
    expect(result.checks.filter((c) => c.name === 'counts').every((c) => c.status === 'pass')).toBe(true);
    expect(events.map((ev) => ev.type)).toEqual(['drill.failed']);
    expect(events[0]!.outcome).toBe('failure');
    expect(events[0]!.details!.join('\n')).toContain('chunks.id 7 has no chunks point');
    expect(await leftovers()).toEqual({ dbs: [], collections: [], redisKeys: [0, 0] });
    await e.close();
    // Back to a consistent state for the next tests.
    await seedPoints(Array.from({ length: CHUNKS }, (_, i) => i + 1));
  });

  it('a drill killed mid-restore leaves its targets; the next drill finds them by name and removes them', async () => {
    assertBuilt();
    const e = engine();
    expect((await e.backup({ tier: 'daily' })).status).toBe('complete');
    const dist = (pkg: string) => pathToFileURL(join(PACKAGES, pkg, 'dist', 'index.js')).href;
    // The child runs a real drill whose Qdrant restore hangs after the upload (the last
    // component), so every throwaway target exists when it is killed.
    const script = join(work.path, 'killed-drill.mjs');
    writeFileSync(
      script,
      `import { createBackupEngine } from ${JSON.stringify(dist('core'))};
import { createFsStorage } from ${JSON.stringify(dist('fs'))};
import { createPostgresSource, createPostgresDrillTarget } from ${JSON.stringify(dist('postgres'))};
import { createRedisSource, createRedisDrillTarget } from ${JSON.stringify(dist('redis'))};
import { createQdrantSource, createQdrantDrillTarget } from ${JSON.stringify(dist('qdrant'))};
const q = createQdrantSource({ url: ${JSON.stringify(qdrant.url)} });
const hanging = { ...q, async restore(ctx) { const r = await q.restore(ctx); process.stdout.write('RESTORED\\n'); await new Promise(() => {}); return r; } };
const engine = createBackupEngine({ sources: [createPostgresSource({ url: ${JSON.stringify(pg.url(DB))} }), createRedisSource({ url: ${JSON.stringify(redis.url())} }), hanging], storage: createFsStorage({ root: ${JSON.stringify(root)} }) });
await engine.drill({ targets: [createPostgresDrillTarget({ url: ${JSON.stringify(pg.url(DB))} }), createRedisDrillTarget({ url: ${JSON.stringify(redis.url())} }, { databases: [14, 15] }), createQdrantDrillTarget({ url: ${JSON.stringify(qdrant.url)} })] });
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child drill did not reach the hang:\n${output}`)), 90_000);
      child.stdout.on('data', () => {
        if (output.includes('RESTORED')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`the child drill exited (${code}) early:\n${output}`)));
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const left = await leftovers();
    expect(left.dbs).toHaveLength(1);
    expect(left.collections).toHaveLength(1);
    expect(left.redisKeys.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const killedId = left.dbs[0]!.replace('scholaria_drill_', '');
    expect(left.collections[0]).toBe(`chunks_drill_${killedId}`);

    // The killed run's lock is stale only after its TTL; a short TTL engine takes it over.
    const next = await createBackupEngine({ ...engine().options, lockTtlMs: 1000 }).drill({ targets: targets(), joins });
    expect(next.status, JSON.stringify(next.checks)).toBe('passed');
    expect(next.removedLeftovers).toEqual(
      expect.arrayContaining([`postgres database "scholaria_drill_${killedId}"`, `qdrant collection "chunks_drill_${killedId}"`, expect.stringMatching(/^redis db 1[45] \(\d+ keys\)$/)]),
    );
    expect(await leftovers()).toEqual({ dbs: [], collections: [], redisKeys: [0, 0] });
    await e.close();
  });

  it('refuses drill databases that hold the live Redis data and touches nothing', async () => {
    const e = engine();
    const before = await fingerprint(pg, redis, qdrant, DB);
    const result = await e.drill({ targets: [createRedisDrillTarget({ url: redis.url() }, { databases: [1, 15] })], components: ['redis'] }).catch((error: Error) => error);
    expect((await fingerprint(pg, redis, qdrant, DB)).digest).toBe(before.digest);
    const failed = result as DrillResult;
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toMatch(/drill database\(s\) 1 hold live data/);
    await e.close();
  });
});

describe('size anomalies', () => {
  it('a backup whose rows drop by more than half from the previous set of the tier carries a warning', async () => {
    const anomalyRoot = join(work.path, 'anomaly');
    const mk = () => createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB) })], storage: createFsStorage({ root: anomalyRoot }), notifiers: [notifier], notify: { retries: 0 } });
    expect((await mk().backup({ tier: 'weekly' })).manifest?.anomalies).toBeUndefined();
    await pg.query(DB, 'DELETE FROM chunks WHERE id > 10');
    try {
      events.length = 0;
      const second = await mk().backup({ tier: 'weekly' });
      expect(second.status).toBe('complete');
      const rows = second.manifest!.anomalies!.find((a) => a.measure === 'rows')!;
      expect(rows).toMatchObject({ component: 'postgres', previous: CHUNKS + 7, current: 17 });
      expect(second.components[0]!.warnings.join('\n')).toMatch(/size anomaly: rows dropped 87% \(127 -> 17\)/);
      expect(second.manifest!.components[0]!.warnings.filter((w) => w.startsWith('size anomaly: rows'))).toHaveLength(1);
      const done = events.find((ev) => ev.type === 'backup.succeeded')!;
      expect(done.details!.join('\n')).toMatch(/WARNING postgres: size anomaly: rows dropped/);
      // Another tier is compared only with its own sets.
      expect((await mk().backup({ tier: 'daily' })).manifest?.anomalies).toBeUndefined();
      // Turned off, nothing is flagged.
      const off = createBackupEngine({ ...mk().options, anomalyDrop: false });
      await pg.query(DB, 'DELETE FROM chunks WHERE id > 2');
      expect((await off.backup({ tier: 'weekly' })).manifest?.anomalies).toBeUndefined();
    } finally {
      await pg.query(DB, `INSERT INTO chunks SELECT g, 1 + g % 7, repeat('chunk text ', 20) || g FROM generate_series(1, ${CHUNKS}) g ON CONFLICT (id) DO NOTHING`);
    }
  });
});

describe('scholaria-backup drill (the built command, configured from the environment)', () => {
  const env = (extra: Record<string, string> = {}) => ({
    BACKUP_DIR: root,
    BACKUP_LOG_DIR: join(work.path, 'logs'),
    DATABASE_URL: pg.url(DB),
    REDIS_URL: redis.url(),
    QDRANT_URL: qdrant.url,
    BACKUP_DRILL_REDIS_DB: '14,15',
    BACKUP_DRILL_JOIN: 'chunks.id=chunks',
    BACKUP_MIN_FREE_DISK: '1MiB',
    ...extra,
  });

  it('drills latest, then scheduler status, health-check and /metrics report it', async () => {
    assertBuilt();
    const backup = await runBin(['backup', '--tier', 'daily'], { env: env() });
    expect(backup.code, backup.stderr).toBe(0);
    const before = await fingerprint(pg, redis, qdrant, DB);
    const r = await runBin(['drill', '--json'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const result = parseJson<DrillResult & { ok: boolean }>(r.stdout);
    expect(result.ok).toBe(true);
    expect(result.checks.find((c) => c.name === 'cross-store')).toMatchObject({ status: 'pass', figures: { left: CHUNKS, right: CHUNKS } });
    expect((await fingerprint(pg, redis, qdrant, DB)).digest).toBe(before.digest);

    const text = await runBin(['drill', 'latest', '--component', 'postgres'], { env: env() });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^PASSED drill \d{8}_\d{6}_[0-9a-f]{4} of scholaria_backup_\d{8}_\d{6}/m);
    expect(text.stdout).toMatch(/PASS postgres amcheck: \d+ B-tree indexes pass/);

    const status = await runBin(['scheduler', 'status', '--json'], { env: env() });
    const s = parseJson<{ drill: { cron: string; last: { status: string; drillId: string } | null } | null }>(status.stdout);
    expect(s.drill?.cron).toBe('0 5 * * 0');
    expect(s.drill?.last?.status).toBe('passed');
    const off = parseJson<{ drill: unknown }>((await runBin(['scheduler', 'status', '--json'], { env: env({ BACKUP_DRILL_SCHEDULE: 'off' }) })).stdout);
    expect(off.drill).toBeNull();

    const health = parseJson<{ checks: { name: string; status: string; message: string }[] }>((await runBin(['health-check', '--json'], { env: env() })).stdout);
    expect(health.checks.find((c) => c.name === 'restore drill')).toMatchObject({ status: 'ok' });

    const metrics = new SchedulerMetrics();
    metrics.drill.seed([result]);
    const body = metrics.render({ timeZone: 'UTC', queued: [], tiers: [], lastRuns: [] });
    expect(body).toContain(`scholaria_backup_drill_last_success_timestamp ${Date.parse(result.finishedAt) / 1000}`);
    expect(body).toContain(`scholaria_backup_drill_rto_seconds{component="postgres"} ${result.rto.components.postgres! / 1000}`);
    expect(body).toContain(`scholaria_backup_drill_rto_seconds{component="set"} ${result.rto.totalMs / 1000}`);
  });

  it('a bad drill setting is a configuration error naming the variable', async () => {
    const r = await runBin(['drill'], { env: env({ BACKUP_DRILL_JOIN: 'chunks=chunks', BACKUP_DRILL_SCHEDULE: 'weekly' }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/BACKUP_DRILL_JOIN/);
    expect(r.stderr).toMatch(/BACKUP_DRILL_SCHEDULE/);
    expect(r.stderr).not.toMatch(/at \w+ \(/);
  });
});
