import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { createRedisSource } from '@scholaria/backup-redis';
import { compareFingerprints, fingerprint, loadFixture } from './helpers/fixture.js';

const exec = promisify(execFile);
const ALL_DBS = Array.from({ length: 16 }, (_, i) => i);

describe('redis through the engine and the fs storage', () => {
  let a: RedisServer;
  let b: RedisServer;
  let temp: TempDir;
  let root: string;
  let engine: BackupEngine;
  let before: Awaited<ReturnType<typeof fingerprint>>;

  beforeAll(async () => {
    [a, b, temp] = await Promise.all([
      startRedis({ password: 'engine-a-secret', args: ['--repl-diskless-sync', 'no'] }),
      startRedis({ password: 'engine-b-secret' }),
      makeTempDir('scholaria-redis-engine-'),
    ]);
    root = join(temp.path, 'backup');
    await loadFixture(a.url());
    before = await fingerprint(a.url(), ALL_DBS);
    engine = createBackupEngine({ sources: [createRedisSource({ url: a.url() })], storage: createFsStorage({ root }) });
  });
  afterAll(async () => {
    await engine?.close();
    await Promise.all([a?.stop(), b?.stop(), temp?.remove()]);
  });

  it('backs up a logical set that sha256sum -c accepts, with metadata and a manual restore line', async () => {
    const result = await engine.backup({ tier: 'daily' });
    expect(result.components.map((c) => c.error?.message ?? 'ok')).toEqual(['ok']);
    expect(result.status).toBe('complete');
    const setDir = join(root, result.setId);
    const { stdout } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: setDir });
    expect(stdout).toMatch(/redis\/dump\.resp(\.\w+)*: OK/);
    const component = result.manifest!.components[0]!;
    expect(component.metadata).toMatchObject({ mode: 'logical', serverVersion: expect.stringMatching(/^7\./), rdbVersion: 10 });
    const artifact = component.artifacts.find((x) => x.name === 'dump.resp')!;
    expect(artifact.manualRestore).toMatch(/redis-cli -h HOST -p PORT --pipe/);
    expect(JSON.stringify(result.manifest)).not.toContain('engine-a-secret');
  });

  it('dry-run through the engine plans and writes nothing; restore brings back every key and TTL', async () => {
    const target = createBackupEngine({ sources: [createRedisSource({ url: b.url() })], storage: createFsStorage({ root }) });
    try {
      const dry = await target.restore({ ref: 'latest', dryRun: true });
      expect(dry.components.map((c) => c.error?.message ?? c.status)).toEqual(['planned']);
      expect(dry.components[0]!.plan.join('\n')).toMatch(/would FLUSHDB/);
      expect(Object.values((await fingerprint(b.url(), ALL_DBS)) as Record<string, object>).every((db) => Object.keys(db).length === 0)).toBe(true);

      const res = await target.restore({ ref: 'latest' });
      expect(res.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
      expect(compareFingerprints(before, await fingerprint(b.url(), ALL_DBS))).toEqual([]);
      expect(JSON.stringify(res)).not.toContain('engine-b-secret');
    } finally {
      await target.close();
    }
  });

  it('rdb mode stores dump.rdb uncompressed; restoring it fails with the file-replacement procedure', async () => {
    const rdbRoot = join(temp.path, 'rdb');
    const rdbEngine = createBackupEngine({ sources: [createRedisSource({ url: a.url(), mode: 'rdb' })], storage: createFsStorage({ root: rdbRoot }) });
    try {
      const result = await rdbEngine.backup({ tier: 'daily' });
      expect(result.status).toBe('complete');
      expect(await readdir(join(rdbRoot, result.setId, 'redis'))).toEqual(['dump.rdb']);
      const { stdout } = await exec('redis-check-rdb', [join(rdbRoot, result.setId, 'redis', 'dump.rdb')]);
      expect(stdout).toMatch(/RDB looks OK/);

      const r = new Redis(a.url());
      const keysBefore = await r.dbsize();
      r.disconnect();
      const res = await rdbEngine.restore({ ref: 'latest' });
      expect(res.status).toBe('failed');
      const error = res.components[0]!.error as { message: string; hint?: string } | undefined;
      expect(error?.message).toMatch(/RDB snapshot/);
      expect(error?.hint).toMatch(/appendonly/);
      const after = new Redis(a.url());
      expect(await after.dbsize()).toBe(keysBefore);
      after.disconnect();
    } finally {
      await rdbEngine.close();
    }
  });
});
