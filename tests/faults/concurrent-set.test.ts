// A whole set (PostgreSQL + Redis + Qdrant simulator) backed up with its components running at
// once (issue 22): one component failing while the others are mid-stream leaves the same partial
// set as before (the failure named, its files gone, the others stored and verifiable), the
// manifest lists the components in configured order whatever order they finish in, and the
// progress events still add up per artifact. With concurrency 1 they run one after another.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, defaultConcurrency, type ProgressEvent, type Storage } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createQdrantSource } from '@scholaria/backup-qdrant';
import { createRedisSource } from '@scholaria/backup-redis';
import { makeTempDir, startPostgres, startQdrantSimulator, startRedis, type PostgresServer, type QdrantSimulator, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { assertCatalogSound, captureLogger, sha256sumCheck } from './helpers/common.js';
import { pgDigest, redisDigest, seedPostgres, seedRedis } from './helpers/live-data.js';
import { gatedPuts } from './helpers/storage-wrappers.js';

let pg: PostgresServer;
let redis: RedisServer;
let qdrant: QdrantSimulator;
let dir: TempDir;
let live: { pg: string; redis: string };

beforeAll(async () => {
  [pg, redis, qdrant] = await Promise.all([startPostgres(), startRedis(), startQdrantSimulator()]);
  await pg.createDatabase('app');
  // Far more than the pipeline buffers, so a held upload really holds pg_dump and SCAN mid-way.
  await seedPostgres(pg, 'app', 60_000);
  await seedRedis(redis, 30_000);
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${qdrant.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
  };
  await put('/collections/chunks', { vectors: { size: 4, distance: 'Cosine' } });
  await put('/collections/chunks/points?wait=true', { points: Array.from({ length: 500 }, (_, i) => ({ id: i + 1, vector: [1, i % 7, i % 13, 1], payload: { n: i } })) });
  live = { pg: await pgDigest(pg, 'app'), redis: await redisDigest(redis) };
  dir = await makeTempDir('faults-concurrent-set-');
});

afterAll(async () => {
  await Promise.all([pg?.stop(), redis?.stop(), qdrant?.stop(), dir?.remove()]);
});

const NAMES = ['postgres', 'redis', 'qdrant'];

function engineOn(storage: Storage, concurrency?: number) {
  return createBackupEngine({
    sources: [
      createPostgresSource({ url: pg.url('app'), globals: 'off', connectTimeoutSeconds: 3 }),
      createRedisSource({ url: redis.url(), scanCount: 100, batchSize: 100, connectTimeoutMs: 3000 }),
      createQdrantSource({ url: qdrant.url }),
    ],
    storage,
    logger: captureLogger(),
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
}

/** Per artifact: bytes never go down, and the one `done` event carries the stored size. */
function checkProgress(events: ProgressEvent[], artifacts: { component: string; name: string; size: number }[]): void {
  const seen = new Map<string, number>();
  for (const e of events.filter((x) => x.phase === 'upload' && x.artifact)) {
    const key = `${e.component}/${e.artifact}`;
    const before = seen.get(key) ?? 0;
    expect(e.bytes, key).toBeGreaterThanOrEqual(before);
    seen.set(key, e.bytes);
  }
  for (const a of artifacts) {
    const done = events.filter((e) => e.done && e.component === a.component && e.artifact === a.name);
    expect(done, `${a.component}/${a.name} done events`).toHaveLength(1);
    expect(done[0]!.bytes).toBe(a.size);
  }
}

describe('whole set, components at once', () => {
  it('the default runs one component per core', () => {
    expect(defaultConcurrency(3, 2)).toBe(2);
    expect(defaultConcurrency(1, 8)).toBe(1);
    expect(defaultConcurrency(3, 8)).toBe(3);
    expect(defaultConcurrency(40, 64)).toBe(16);
    expect(defaultConcurrency(0, 4)).toBe(1);
  });

  it('redis fails while postgres and qdrant are running beside it: partial set, same semantics, manifest in configured order', async () => {
    const root = join(dir.path, 'redis-fails');
    const fs = createFsStorage({ root });
    // Hold postgres and redis mid-stream, so all three are in flight when redis is cut off.
    const pgGate = gatedPuts(fs, 'postgres/app.dump', 256 * 1024);
    const redisGate = gatedPuts(pgGate.storage, 'redis/dump.resp', 128 * 1024);
    const events: ProgressEvent[] = [];
    const running = engineOn(redisGate.storage, 3).backup({ tier: 'daily', onProgress: (e) => events.push(e) });
    await Promise.all([pgGate.reached, redisGate.reached]);
    // Both held at once proves they run concurrently; qdrant (not held) runs on beside them.
    const killed = await redis.command('CLIENT', 'KILL', 'TYPE', 'normal');
    expect(typeof killed === 'number' && killed >= 1).toBe(true);
    redisGate.release();
    // Qdrant finishes (its done event) while postgres is still held.
    await expect.poll(() => events.some((e) => e.component === 'qdrant' && e.done), { timeout: 60_000, interval: 50 }).toBe(true);
    pgGate.release();
    const result = await running;

    expect(result.status).toBe('partial');
    expect(result.components.map((c) => c.name)).toEqual(NAMES);
    expect(result.components.map((c) => c.status)).toEqual(['ok', 'failed', 'ok']);
    const redisOutcome = result.components[1]!;
    expect(redisOutcome.error!.message).toMatch(/^redis: /);
    expect(redisOutcome.error!.message).toMatch(/connection|closed|lost/i);

    const engine = engineOn(fs);
    const manifest = await engine.readManifest(result.setId);
    expect(manifest.status).toBe('partial');
    expect(manifest.components.map((c) => c.name)).toEqual(NAMES);
    expect(manifest.components[1]).toMatchObject({ name: 'redis', status: 'failed', artifacts: [] });
    const files = (await readdir(join(root, result.setId), { recursive: true })).map(String);
    expect(files.filter((f) => f.startsWith('redis'))).toEqual([]);
    expect(files.some((f) => f.startsWith('postgres/'))).toBe(true);
    expect(files.some((f) => f.startsWith('qdrant/'))).toBe(true);
    expect((await engine.verify({ ref: result.setId })).ok).toBe(true);
    expect(sha256sumCheck(join(root, result.setId)).ok).toBe(true);
    await expect(engine.readManifest('latest')).rejects.toMatchObject({ code: 'SET_NOT_FOUND' });

    const stored = manifest.components.filter((c) => c.status === 'ok').flatMap((c) => c.artifacts.map((a) => ({ component: c.name, name: a.name, size: a.size })));
    checkProgress(events, stored);
    expect(events.some((e) => e.component === 'redis' && e.done)).toBe(false);

    expect(await redisDigest(redis)).toBe(live.redis);
    expect(await pgDigest(pg, 'app')).toBe(live.pg);
    const next = await engine.backup({ tier: 'daily' });
    expect(next.status).toBe('complete');
    expect(next.components.map((c) => c.name)).toEqual(NAMES);
    expect((await engine.verify({ ref: next.setId })).ok).toBe(true);
    await assertCatalogSound(engine);
  });

  it('concurrency 1 runs the components one after another, in configured order', async () => {
    const root = join(dir.path, 'sequential');
    const fs = createFsStorage({ root });
    const pgGate = gatedPuts(fs, 'postgres/app.dump', 256 * 1024);
    const events: ProgressEvent[] = [];
    const running = engineOn(pgGate.storage, 1).backup({ tier: 'daily', onProgress: (e) => events.push(e) });
    await pgGate.reached;
    // While postgres is held, nothing else may start: give a wrong implementation time to.
    await new Promise((r) => setTimeout(r, 1000));
    expect(events.filter((e) => e.component !== 'postgres')).toEqual([]);
    pgGate.release();
    const result = await running;
    expect(result.status).toBe('complete');
    expect(result.components.map((c) => c.name)).toEqual(NAMES);
    // Each component's first event comes after the previous one's last.
    const order = events.map((e) => e.component).filter((c, i, a) => i === 0 || a[i - 1] !== c);
    expect(order).toEqual(NAMES);
    const manifest = await engineOn(fs).readManifest(result.setId);
    checkProgress(events, manifest.components.flatMap((c) => c.artifacts.map((a) => ({ component: c.name, name: a.name, size: a.size }))));
  });
});
