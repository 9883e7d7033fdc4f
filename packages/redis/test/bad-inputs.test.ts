import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { BackupError, type ComponentManifest } from '@scholaria/backup-core';
import { backupErrorOf, getFreePort, makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { createRedisSource, encodeCommand, readDumpFooter, withDumpVersion } from '@scholaria/backup-redis';
import { backupToDir, restoreFromDir, type DirBackup } from './helpers/dir-context.js';

const PASSWORD = 'correct-horse-battery';

let server: RedisServer;
let dir: TempDir;
let backup: DirBackup;

async function keysIn(url: string): Promise<string[]> {
  const r = new Redis(url);
  try {
    return (await r.keys('*')).sort();
  } finally {
    r.disconnect();
  }
}

beforeAll(async () => {
  server = await startRedis({ password: PASSWORD });
  dir = await makeTempDir();
  const r = new Redis(server.url());
  await r.set('alpha', '1');
  await r.rpush('queue', 'a', 'b');
  await r.select(2);
  await r.set('beta', '2', 'PX', 600_000);
  r.disconnect();
  backup = await backupToDir(createRedisSource({ url: server.url() }), dir.path);
});

afterAll(async () => {
  await server?.stop();
  await dir?.remove();
});

describe('connection problems', () => {
  it('a wrong password is AUTH_FAILED with a hint, and the password appears nowhere', async () => {
    const wrong = 'not-the-password-123';
    const source = createRedisSource({ host: server.host, port: server.port, password: wrong });
    const out = await makeTempDir();
    try {
      const error = await backupErrorOf(backupToDir(source, out.path));
      expect(error.code).toBe('AUTH_FAILED');
      expect(error.component).toBe('redis');
      expect(error.message).toMatch(/authentication to redis:\/\/127\.0\.0\.1:\d+ failed/);
      expect(error.hint).toMatch(/password/);
      expect(JSON.stringify({ m: error.message, h: error.hint, j: error.toJSON() })).not.toContain(wrong);
      const check = await source.check();
      expect(check.ok).toBe(false);
      expect(check.problems?.join('\n')).toMatch(/authentication/);
      expect(JSON.stringify(check)).not.toContain(wrong);
    } finally {
      await out.remove();
    }
  });

  it('a password in the url never shows in errors either', async () => {
    const url = `redis://:${encodeURIComponent('url-secret-xyz')}@127.0.0.1:${server.port}`;
    const check = await createRedisSource({ url }).check();
    expect(check.ok).toBe(false);
    expect(check.problems?.join('\n')).toMatch(/authentication to redis:\/\/127\.0\.0\.1:\d+ failed/);
    expect(JSON.stringify(check)).not.toContain('url-secret-xyz');
  });

  it('an unreachable server is a retryable CONNECTION_FAILED', async () => {
    const port = await getFreePort();
    const source = createRedisSource({ host: '127.0.0.1', port, connectTimeoutMs: 2000 });
    const out = await makeTempDir();
    try {
      const error = await backupErrorOf(backupToDir(source, out.path));
      expect(error.code).toBe('CONNECTION_FAILED');
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect(error.hint).toMatch(/reachable/);
      const check = await source.check();
      expect(check.ok).toBe(false);
      const restoreError = await backupErrorOf(restoreFromDir(source, dir.path, backup.component, { dryRun: true }));
      expect(restoreError.code).toBe('CONNECTION_FAILED');
    } finally {
      await out.remove();
    }
  });

  it('an aborted run stops with ABORTED', async () => {
    const controller = new AbortController();
    controller.abort();
    const out = await makeTempDir();
    try {
      const error = await backupErrorOf(backupToDir(createRedisSource({ url: server.url() }), out.path, { signal: controller.signal }));
      expect(error.code).toBe('ABORTED');
    } finally {
      await out.remove();
    }
  });
});

describe('a target older than the dump', () => {
  it('dry-run says the dump is too new (targetRdbVersion override) and a real restore refuses before writing', async () => {
    const target = await startRedis();
    try {
      const r = new Redis(target.url());
      await r.set('live', 'data');
      r.disconnect();
      const source = createRedisSource({ url: target.url() });
      const dry = await restoreFromDir(source, dir.path, backup.component, { dryRun: true, options: { targetRdbVersion: 9 } });
      expect(dry.metadata?.rdbVersionTooNew).toBe(true);
      expect(dry.metadata?.targetRdbVersion).toBe(9);
      expect(dry.plan?.join('\n')).toMatch(/PROBLEM: the dump's RDB version 10 is newer than the target supports \(9\)/);
      expect(dry.warnings?.join('\n')).toMatch(/newer than the target supports/);

      const error = await backupErrorOf(restoreFromDir(source, dir.path, backup.component, { options: { targetRdbVersion: 9 } }));
      expect(error.code).toBe('UNSUPPORTED_VERSION');
      expect(error.message).toMatch(/nothing was changed/);
      expect(await keysIn(target.url())).toEqual(['live']);
    } finally {
      await target.stop();
    }
  });

  it('a payload with a newer RDB version (valid CRC-64) is reported by dry-run, refused by restore, and really rejected by Redis', async () => {
    const r = new Redis(server.url());
    const payload = (await r.dumpBuffer('alpha'))!;
    r.disconnect();
    const newer = withDumpVersion(payload, 11);
    expect(readDumpFooter(newer, true)).toEqual({ rdbVersion: 11, crcValid: true });
    const crafted = await makeTempDir();
    const target = await startRedis();
    try {
      await writeFile(
        join(crafted.path, 'dump.resp'),
        Buffer.concat([encodeCommand(['SELECT', '0']), encodeCommand(['RESTORE', 'alpha', '0', newer, 'REPLACE', 'ABSTTL'])]),
      );
      // No rdbVersions in the metadata: the source has to find the version in the artifact itself.
      const component: ComponentManifest = { ...backup.component, metadata: { mode: 'logical' } };
      const source = createRedisSource({ url: target.url() });
      const dry = await restoreFromDir(source, crafted.path, component, { dryRun: true });
      expect(dry.metadata?.dumpRdbVersions).toEqual([11]);
      expect(dry.metadata?.targetRdbVersion).toBe(10);
      expect(dry.metadata?.rdbVersionTooNew).toBe(true);
      expect(dry.metadata?.badChecksums).toBe(0);
      const error = await backupErrorOf(restoreFromDir(source, crafted.path, component));
      expect(error.code).toBe('UNSUPPORTED_VERSION');
      expect(await keysIn(target.url())).toEqual([]);

      const t = new Redis(target.url());
      await expect(t.restore('alpha', 0, newer)).rejects.toThrow(/payload version or checksum are wrong/);
      t.disconnect();
    } finally {
      await target.stop();
      await crafted.remove();
    }
  });
});

describe('bad artifacts and options', () => {
  it('refuses commands other than SELECT and RESTORE, before writing when they come first', async () => {
    const crafted = await makeTempDir();
    const target = await startRedis();
    try {
      const r = new Redis(target.url());
      await r.set('keep', 'me');
      r.disconnect();
      await writeFile(join(crafted.path, 'dump.resp'), Buffer.concat([encodeCommand(['FLUSHALL']), encodeCommand(['SELECT', '0'])]));
      const component: ComponentManifest = { ...backup.component, metadata: { mode: 'logical', rdbVersions: [10], databases: [0] } };
      const error = await backupErrorOf(restoreFromDir(createRedisSource({ url: target.url() }), crafted.path, component));
      expect(error.code).toBe('RESTORE_FAILED');
      expect(error.message).toMatch(/unexpected command "FLUSHALL"/);
      expect(await keysIn(target.url())).toEqual(['keep']);

      await writeFile(join(crafted.path, 'dump.resp'), Buffer.from('not resp at all\r\n'));
      const garbage = await backupErrorOf(restoreFromDir(createRedisSource({ url: target.url() }), crafted.path, component, { dryRun: true }));
      expect(garbage.message).toMatch(/not a valid logical Redis dump: expected '\*'/);
    } finally {
      await target.stop();
      await crafted.remove();
    }
  });

  it('dry-run catches a truncated artifact', async () => {
    const { readFile } = await import('node:fs/promises');
    const whole = await readFile(backup.path('dump.resp'));
    const crafted = await makeTempDir();
    const target = await startRedis();
    try {
      await writeFile(join(crafted.path, 'dump.resp'), whole.subarray(0, whole.length - 5));
      const error = await backupErrorOf(restoreFromDir(createRedisSource({ url: target.url() }), crafted.path, backup.component, { dryRun: true }));
      expect(error.code).toBe('RESTORE_FAILED');
      expect(error.message).toMatch(/truncated/);
    } finally {
      await target.stop();
      await crafted.remove();
    }
  });

  it('invalid options are a ConfigError naming the field, and the factory does no I/O', () => {
    const cases: [unknown, RegExp][] = [
      [{}, /redis\.url: set one of url, host, path, sentinels or client/],
      [{ url: 'http://x' }, /redis\.url: must start with redis:\/\/ or rediss:\/\//],
      [{ host: 'h', port: 70000 }, /redis\.port/],
      [{ url: 'redis://x', host: 'y' }, /set only one of/],
      [{ host: 'h', mode: 'snapshot' }, /redis\.mode/],
      [{ sentinels: [{ host: 'h', port: 26379 }] }, /redis\.sentinelName: is required/],
      [{ host: 'h', databases: [0, 0] }, /redis\.databases: lists a database twice/],
      [{ host: 'h', colour: 'red' }, /colour/],
      [{ client: { not: 'a client' } }, /redis\.client: must be an ioredis Redis instance/],
    ];
    for (const [options, pattern] of cases) {
      let error: unknown;
      try {
        createRedisSource(options as never);
      } catch (e) {
        error = e;
      }
      expect(BackupError.isInstance(error), JSON.stringify(options)).toBe(true);
      expect((error as BackupError).code).toBe('CONFIG_INVALID');
      expect((error as BackupError).message).toMatch(pattern);
    }
    // Nothing listens there; a factory that connected would fail or hang.
    const source = createRedisSource({ host: '203.0.113.1', port: 6379 });
    expect(source.name).toBe('redis');
    expect(source.specVersion).toBe('v1');
  });

  it('invalid restore options are a ConfigError', async () => {
    const error = await backupErrorOf(restoreFromDir(createRedisSource({ url: server.url() }), dir.path, backup.component, { options: { mode: 'wipe' } }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/componentOptions\.redis\.mode/);
  });

  it('a component without dump.resp is a clear error', async () => {
    const component: ComponentManifest = { ...backup.component, artifacts: [] };
    const error = await backupErrorOf(restoreFromDir(createRedisSource({ url: server.url() }), dir.path, component));
    expect(error.code).toBe('RESTORE_FAILED');
    expect(error.message).toMatch(/has no dump\.resp artifact/);
  });
});

describe('verify', () => {
  it('compares live key counts per database with the manifest', async () => {
    const target = await startRedis();
    try {
      const source = createRedisSource({ url: target.url() });
      await restoreFromDir(source, dir.path, backup.component);
      const ctx = { component: backup.component, signal: new AbortController().signal, logger: { debug() {}, info() {}, warn() {}, error() {} } };
      expect(await source.verify!(ctx)).toEqual({ ok: true, mismatches: [] });
      const r = new Redis(target.url());
      await r.select(2);
      await r.del('beta');
      r.disconnect();
      const result = await source.verify!(ctx);
      expect(result.ok).toBe(false);
      expect(result.mismatches).toEqual(['db2: 0 keys live, 1 in the backup']);
    } finally {
      await target.stop();
    }
  });
});
