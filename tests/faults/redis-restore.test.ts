// Redis restore is all-or-nothing for the live data (issue 17 A): a restore that cannot fit is
// refused before anything is touched (INFO memory vs the dump), and one that fails partway (OOM
// while staging) leaves the live keys exactly as they were, because the keys are staged in an
// empty scratch database and swapped in (SWAPDB) only when every RESTORE was accepted.
// Also: restore beside the live data (targetUrl / targetDb / dbMap), and a REDIS_URL ending in
// `/0` means database 0 only, for backup and restore (issue 17 H).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError, createBackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createRedisSource } from '@scholaria/backup-redis';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { redisDigest } from './helpers/live-data.js';

let redis: RedisServer;
let other: RedisServer;
let dir: TempDir;

beforeAll(async () => {
  [redis, other] = await Promise.all([startRedis({ password: 'restore-faults' }), startRedis()]);
  dir = await makeTempDir('faults-redis-restore-');
});
afterAll(async () => {
  await Promise.all([redis?.stop(), other?.stop(), dir?.remove()]);
});

async function cmd(server: RedisServer, ...args: string[]): Promise<unknown> {
  const reply = await server.command(...args);
  if (reply instanceof Error) throw reply;
  return reply;
}

async function usedMemory(server: RedisServer): Promise<number> {
  const info = String(await cmd(server, 'INFO', 'memory'));
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function dbsize(server: RedisServer, db: number): Promise<number> {
  const reply = await server.command('EVAL', `redis.call('SELECT', ARGV[1]) return redis.call('DBSIZE')`, '0', String(db));
  return Number(reply);
}

async function reset(server: RedisServer) {
  await cmd(server, 'CONFIG', 'SET', 'maxmemory', '0');
  await cmd(server, 'FLUSHALL');
}

/** 201 keys in db 0: `compressible` values shrink to a few bytes in a DUMP payload, random ones do not. */
async function seed(server: RedisServer, compressible: boolean, valueBytes = 16 * 1024) {
  for (let i = 0; i < 201; i++) {
    const value = compressible ? 'x'.repeat(valueBytes) : randomBytes(valueBytes / 2).toString('hex');
    await cmd(server, 'SET', `key:${i}`, value);
  }
}

function engineFor(root: string, url = redis.url()) {
  return createBackupEngine({ sources: [createRedisSource({ url, batchSize: 20, connectTimeoutMs: 3000 })], storage: createFsStorage({ root }) });
}

async function restoreError(engine: ReturnType<typeof engineFor>, setId: string, options: Record<string, unknown> = {}) {
  const result = await engine.restore({ ref: setId, componentOptions: { redis: options } });
  expect(result.status).toBe('failed');
  const error = result.components.find((c) => c.name === 'redis')!.error!;
  expect(BackupError.isInstance(error)).toBe(true);
  return error as BackupError;
}

describe('a Redis restore that cannot fit in maxmemory', () => {
  it('is refused before anything is flushed when INFO memory shows the dump cannot fit beside the live data', async () => {
    await reset(redis);
    await seed(redis, false);
    const engine = engineFor(join(dir.path, 'preflight'));
    const { setId, status } = await engine.backup();
    expect(status).toBe('complete');
    // The live data changed since (fewer, smaller keys); the set is 201 keys of ~16 KiB.
    await cmd(redis, 'FLUSHALL');
    for (let i = 0; i < 64; i++) await cmd(redis, 'SET', `live:${i}`, `v2-${i}`);
    const before = await redisDigest(redis);
    // Just below what the set needs: the old restore flushed db 0 and then ran out of memory.
    await cmd(redis, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await cmd(redis, 'CONFIG', 'SET', 'maxmemory', String((await usedMemory(redis)) + 2 * 1024 * 1024));
    const error = await restoreError(engine, setId);
    expect(error.message).toMatch(/maxmemory .* MiB .* would run out of memory; nothing was changed/);
    expect(error.hint).toMatch(/Raise maxmemory|targetUrl/);
    expect(await redisDigest(redis)).toBe(before);
    expect(await dbsize(redis, 0)).toBe(64);
    await reset(redis);
  });

  it('an OOM while staging (the preflight could not see it) leaves the live keys as they were and the scratch database empty', async () => {
    await reset(redis);
    // Compressible values: the DUMP payloads are tiny, the restored values are not, so the
    // preflight (a lower bound) passes and Redis refuses a RESTORE partway.
    await seed(redis, true);
    const engine = engineFor(join(dir.path, 'midway'));
    const { setId } = await engine.backup();
    await cmd(redis, 'FLUSHALL');
    for (let i = 0; i < 201; i++) await cmd(redis, 'SET', `key:${i}`, `v2-${i}`);
    const before = await redisDigest(redis);
    await cmd(redis, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await cmd(redis, 'CONFIG', 'SET', 'maxmemory', String((await usedMemory(redis)) + 1024 * 1024));
    const error = await restoreError(engine, setId);
    expect(error.message).toMatch(/OOM/);
    expect(error.message).toMatch(/the live data was not changed/);
    expect(await redisDigest(redis)).toBe(before);
    expect(await dbsize(redis, 0)).toBe(201);
    for (let db = 1; db < 16; db++) expect(await dbsize(redis, db), `db ${db}`).toBe(0);

    // With room, the same restore replaces db 0 in one swap and leaves no scratch keys behind.
    await cmd(redis, 'CONFIG', 'SET', 'maxmemory', '0');
    const ok = await engine.restore({ ref: setId });
    expect(ok.status).toBe('ok');
    expect(ok.components[0]!.plan.join('\n')).toMatch(/staged in scratch database\(s\) 15, then swapped in \(SWAPDB\)/);
    expect(await dbsize(redis, 0)).toBe(201);
    expect(String(await cmd(redis, 'STRLEN', 'key:7'))).toBe(String(16 * 1024));
    for (let db = 1; db < 16; db++) expect(await dbsize(redis, db), `db ${db}`).toBe(0);
    await reset(redis);
  });

  it('refuses clearly when no empty scratch database is left, and restores straight with allOrNothing: false', async () => {
    await reset(redis);
    for (let db = 0; db < 16; db++) await redis.command('EVAL', `redis.call('SELECT', ARGV[1]) redis.call('SET', 'k', ARGV[1]) return 1`, '0', String(db));
    const engine = engineFor(join(dir.path, 'noscratch'));
    const { setId } = await engine.backup();
    const error = await restoreError(engine, setId);
    expect(error.message).toMatch(/has only 0 empty one\(s\) besides the targets; nothing was changed/);
    expect(error.hint).toMatch(/allOrNothing: false/);
    const ok = await engine.restore({ ref: setId, componentOptions: { redis: { allOrNothing: false } } });
    expect(ok.status).toBe('ok');
    expect(await dbsize(redis, 9)).toBe(1);
    await reset(redis);
  });
});

describe('merge mode, all or nothing', () => {
  it('stages, then moves the keys over: keys not in the dump stay, keys in it are replaced, no scratch keys left', async () => {
    await reset(redis);
    await seed(redis, true, 64);
    const engine = engineFor(join(dir.path, 'merge'));
    const { setId } = await engine.backup();
    await cmd(redis, 'SET', 'key:0', 'changed');
    await cmd(redis, 'SET', 'only-live', 'stays');
    const result = await engine.restore({ ref: setId, componentOptions: { redis: { mode: 'merge' } } });
    expect(result.status, JSON.stringify(result.components)).toBe('ok');
    expect(result.components[0]!.plan.join('\n')).toMatch(/then moved over/);
    expect(String(await cmd(redis, 'GET', 'key:0'))).toBe('x'.repeat(64));
    expect(String(await cmd(redis, 'GET', 'only-live'))).toBe('stays');
    expect(await dbsize(redis, 0)).toBe(202);
    for (let db = 1; db < 16; db++) expect(await dbsize(redis, db), `db ${db}`).toBe(0);
    await reset(redis);
  });
});

describe('restore beside the live data', () => {
  it('targetUrl + targetDb restores into another server and database; the configured one is not touched', async () => {
    await reset(redis);
    await reset(other);
    await seed(redis, true, 64);
    const engine = engineFor(join(dir.path, 'beside'));
    const { setId } = await engine.backup();
    await cmd(redis, 'SET', 'key:0', 'changed');
    const live = await redisDigest(redis);
    await cmd(other, 'SET', 'keep-me', '1');
    const result = await engine.restore({ ref: setId, componentOptions: { redis: { targetUrl: other.url(), targetDb: 5 } } });
    expect(result.status, JSON.stringify(result.components)).toBe('ok');
    expect(await redisDigest(redis)).toBe(live);
    expect(await dbsize(other, 5)).toBe(201);
    expect(await dbsize(other, 0)).toBe(1);
    expect(await other.command('EVAL', `redis.call('SELECT', '5') return redis.call('GET', 'key:0')`, '0')).toEqual(Buffer.from('x'.repeat(64)));

    // A database in the target URL acts as targetDb; dbMap maps database by database.
    const viaUrl = await engine.restore({ ref: setId, componentOptions: { redis: { targetUrl: other.url(7) } } });
    expect(viaUrl.status, JSON.stringify(viaUrl.components)).toBe('ok');
    expect(await dbsize(other, 7)).toBe(201);
    const mapped = await engine.restore({ ref: setId, componentOptions: { redis: { dbMap: { '0': 3 } } } });
    expect(mapped.status).toBe('ok');
    expect(mapped.components[0]!.plan.join('\n')).toMatch(/replaced database\(s\) 3/);
    expect(await redisDigest(redis)).toBe(live);
    expect(await dbsize(redis, 3)).toBe(201);
    // The dry run names the mapping.
    const dry = await engine.restore({ ref: setId, dryRun: true, componentOptions: { redis: { dbMap: { '0': 4 } } } });
    expect(dry.components[0]!.plan.join('\n')).toMatch(/dump db0 -> db4/);
    await reset(redis);
    await reset(other);
  });

  it('targetDb with a dump of several databases is refused by name', async () => {
    await reset(redis);
    await redis.command('EVAL', `redis.call('SELECT', '0') redis.call('SET', 'a', '1') redis.call('SELECT', '1') redis.call('SET', 'b', '1') return 1`, '0');
    const engine = engineFor(join(dir.path, 'multi'));
    const { setId } = await engine.backup();
    const error = await restoreError(engine, setId, { targetDb: 5 });
    expect(error.message).toMatch(/targetDb 5 needs exactly one database from the dump, but it holds database\(s\) 0, 1; nothing was changed/);
    await reset(redis);
  });
});

describe('REDIS_URL ending in /0', () => {
  it('backs up and restores database 0 only; database 1 is neither saved nor flushed', async () => {
    await reset(redis);
    await redis.command('EVAL', `redis.call('SELECT', '0') redis.call('SET', 'a', '1') redis.call('SELECT', '1') redis.call('SET', 'b', '1') return 1`, '0');
    const engine = engineFor(join(dir.path, 'db0'), redis.url(0));
    const { setId } = await engine.backup();
    const set = (await engine.list()).find((s) => s.id === setId)!;
    expect(set).toBeDefined();
    await redis.command('EVAL', `redis.call('SELECT', '1') redis.call('SET', 'b2', '2') return 1`, '0');
    const result = await engine.restore({ ref: setId });
    expect(result.status).toBe('ok');
    expect(result.components[0]!.plan.join('\n')).toMatch(/replaced database\(s\) 0\b/);
    expect(await dbsize(redis, 1)).toBe(2);
    // An older set with every database, restored through a /0 URL, touches database 0 only.
    const all = engineFor(join(dir.path, 'db0'), redis.url());
    const { setId: allId } = await all.backup();
    await redis.command('EVAL', `redis.call('SELECT', '1') redis.call('SET', 'b3', '3') return 1`, '0');
    expect((await engine.restore({ ref: allId })).status).toBe('ok');
    expect(await dbsize(redis, 1)).toBe(3);
    await reset(redis);
  });
});
