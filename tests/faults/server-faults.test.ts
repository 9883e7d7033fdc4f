// The database server stopped in the middle of pg_dump, and Redis dropping the connection in
// the middle of its SCAN: the failed component is named, the set is recorded as partial (never
// complete), what was stored for the failed component is gone, the live data is unchanged, and
// the next backup works once the server is back.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine, type Storage } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createRedisSource } from '@scholaria/backup-redis';
import { makeTempDir, startPostgres, startRedis, type PostgresServer, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { assertCatalogSound, captureLogger, sha256sumCheck } from './helpers/common.js';
import { pgDigest, redisDigest, seedPostgres, seedRedis } from './helpers/live-data.js';
import { startPostgresAgain, stopPostgresKeepingData } from './helpers/pg-control.js';
import { gatedPuts } from './helpers/storage-wrappers.js';

let pg: PostgresServer;
let redis: RedisServer;
let dir: TempDir;
let live: { pg: string; redis: string };

beforeAll(async () => {
  [pg, redis] = await Promise.all([startPostgres(), startRedis({ password: 'server-faults-redis' })]);
  await pg.createDatabase('app');
  // Far more data than the pipeline buffers, so a held upload really holds pg_dump and SCAN mid-way.
  await seedPostgres(pg, 'app', 60_000);
  await seedRedis(redis, 30_000);
  live = { pg: await pgDigest(pg, 'app'), redis: await redisDigest(redis) };
  dir = await makeTempDir('faults-servers-');
});

afterAll(async () => {
  await Promise.all([pg?.stop(), redis?.stop(), dir?.remove()]);
});

function engineOn(storage: Storage, logger = captureLogger()): BackupEngine {
  return createBackupEngine({
    sources: [createPostgresSource({ url: pg.url('app'), globals: 'off', connectTimeoutSeconds: 3 }), createRedisSource({ url: redis.url(), scanCount: 100, batchSize: 100, connectTimeoutMs: 3000 })],
    storage,
    logger,
  });
}

async function filesOf(setDir: string): Promise<string[]> {
  return (await readdir(setDir, { recursive: true })).map(String).sort();
}

describe('database server stopped mid-dump', () => {
  it('postgres fails by name, the set is partial (redis only), live data intact after restart, next backup complete', async () => {
    const root = join(dir.path, 'pg-stop');
    const fs = createFsStorage({ root });
    const gate = gatedPuts(fs, 'postgres/app.dump', 256 * 1024);
    const logger = captureLogger();
    const running = engineOn(gate.storage, logger).backup({ tier: 'daily' });
    await gate.reached;
    // pg_dump is blocked mid-COPY by backpressure: now the server goes away.
    stopPostgresKeepingData(pg, 'fast');
    let restarted = false;
    try {
      gate.release();
      const result = await running;
      expect(result.status).toBe('partial');
      const pgOutcome = result.components.find((c) => c.name === 'postgres')!;
      const redisOutcome = result.components.find((c) => c.name === 'redis')!;
      expect(redisOutcome.status).toBe('ok');
      expect(pgOutcome.status).toBe('failed');
      expect(pgOutcome.error!.message).toMatch(/^postgres: /);
      expect(pgOutcome.error!.message).toMatch(/pg_dump|connection|terminat|server closed/i);
      expect(logger.lines.some((l) => l.startsWith('error postgres failed'))).toBe(true);

      // Recorded as partial with the failure, never complete; no postgres file left in the set.
      const engine = engineOn(fs);
      const [shown] = await engine.list();
      expect(shown).toMatchObject({ id: result.setId, status: 'partial' });
      const manifest = await engine.readManifest(result.setId);
      expect(manifest.status).toBe('partial');
      expect(manifest.components.find((c) => c.name === 'postgres')).toMatchObject({ status: 'failed', artifacts: [] });
      expect(manifest.components.find((c) => c.name === 'postgres')!.error!.message).toMatch(/^postgres: /);
      expect((await filesOf(join(root, result.setId))).filter((f) => f.startsWith('postgres'))).toEqual([]);
      await expect(engine.readManifest('latest')).rejects.toMatchObject({ code: 'SET_NOT_FOUND' });
      expect((await engine.verify({ ref: result.setId })).ok).toBe(true);
      expect(sha256sumCheck(join(root, result.setId)).ok).toBe(true);
      await expect(engine.restore({ ref: result.setId, components: ['postgres'] })).rejects.toMatchObject({
        code: 'COMPONENT_UNKNOWN',
        message: expect.stringMatching(/component "postgres" failed in set/),
      });

      // While the server is down, a backup says so for postgres and still saves redis.
      const down = await engine.backup({ tier: 'daily' });
      expect(down.status).toBe('partial');
      const downPg = down.components.find((c) => c.name === 'postgres')!;
      expect(downPg.error).toMatchObject({ code: 'CONNECTION_FAILED' });
      expect(downPg.error!.message).toMatch(new RegExp(`postgres: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${pg.port}`));

      startPostgresAgain(pg);
      restarted = true;
      expect(await pgDigest(pg, 'app')).toBe(live.pg);
      expect(await redisDigest(redis)).toBe(live.redis);
      const next = await engine.backup({ tier: 'daily' });
      expect(next.status).toBe('complete');
      expect((await engine.readManifest('latest')).id).toBe(next.setId);
      expect((await engine.verify({ all: true })).ok).toBe(true);
      await assertCatalogSound(engine);
    } finally {
      if (!restarted) startPostgresAgain(pg);
    }
  });
});

describe('Redis connection reset mid-scan', () => {
  it('redis fails by name, the set is partial (postgres only), the keys are intact, the next backup is complete', async () => {
    const root = join(dir.path, 'redis-reset');
    const fs = createFsStorage({ root });
    const gate = gatedPuts(fs, 'redis/dump.resp', 128 * 1024);
    const running = engineOn(gate.storage).backup({ tier: 'daily' });
    await gate.reached;
    // Every client connection but this one is dropped, the backup's SCAN/DUMP connection included.
    const killed = await redis.command('CLIENT', 'KILL', 'TYPE', 'normal');
    expect(typeof killed === 'number' && killed >= 1).toBe(true);
    gate.release();
    const result = await running;
    expect(result.status).toBe('partial');
    const redisOutcome = result.components.find((c) => c.name === 'redis')!;
    expect(result.components.find((c) => c.name === 'postgres')!.status).toBe('ok');
    expect(redisOutcome.status).toBe('failed');
    expect(redisOutcome.error!.message).toMatch(/^redis: /);
    expect(redisOutcome.error!.message).toMatch(/connection|closed|lost/i);

    const engine = engineOn(fs);
    const manifest = await engine.readManifest(result.setId);
    expect(manifest.status).toBe('partial');
    expect(manifest.components.find((c) => c.name === 'redis')).toMatchObject({ status: 'failed', artifacts: [] });
    expect((await filesOf(join(root, result.setId))).filter((f) => f.startsWith('redis'))).toEqual([]);
    expect((await engine.verify({ ref: result.setId })).ok).toBe(true);
    expect(sha256sumCheck(join(root, result.setId)).ok).toBe(true);
    await expect(engine.readManifest('latest')).rejects.toMatchObject({ code: 'SET_NOT_FOUND' });

    expect(await redisDigest(redis)).toBe(live.redis);
    expect(await pgDigest(pg, 'app')).toBe(live.pg);
    const next = await engine.backup({ tier: 'daily' });
    expect(next.status).toBe('complete');
    expect((await engine.verify({ ref: next.setId })).ok).toBe(true);
    await assertCatalogSound(engine);
  });
});
