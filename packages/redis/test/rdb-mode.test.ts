import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { BackupError } from '@scholaria/backup-core';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { createRedisSource } from '@scholaria/backup-redis';
import { backupToDir, restoreFromDir } from './helpers/dir-context.js';
import { loadFixture } from './helpers/fixture.js';

const run = promisify(execFile);
const ALL_DBS = Array.from({ length: 16 }, (_, i) => i);

async function dbsizes(url: string): Promise<Record<string, number>> {
  const r = new Redis(url);
  try {
    const out: Record<string, number> = {};
    for (const db of ALL_DBS) {
      await r.select(db);
      const n = await r.dbsize();
      if (n) out[String(db)] = n;
    }
    return out;
  } finally {
    r.disconnect();
  }
}

const dirs: TempDir[] = [];
async function tempDir() {
  const d = await makeTempDir();
  dirs.push(d);
  return d.path;
}
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

describe.each([
  { transfer: 'disk', args: ['--repl-diskless-sync', 'no'] },
  // The delay makes the master send keep-alive newlines before the payload.
  { transfer: 'diskless', args: ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '2'] },
])('rdb mode, $transfer transfer', ({ transfer, args }) => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({ password: 'rdb-secret', args });
    await loadFixture(server.url());
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('streams a dump.rdb that redis-check-rdb accepts and a fresh server loads with the same keys', async () => {
    const dir = await tempDir();
    const backup = await backupToDir(createRedisSource({ url: server.url(), mode: 'rdb' }), dir);
    const m = backup.result.metadata;
    expect(m.mode).toBe('rdb');
    expect(m.transfer).toBe(transfer);
    expect(m.rdbVersion).toBe(10);
    expect(m.checksumVerified).toBe(true);
    expect(m.keyCounts).toEqual(await dbsizes(server.url()));
    expect(backup.artifacts.get('dump.rdb')?.compression).toBe(false);
    expect(backup.artifacts.get('dump.rdb')?.contentType).toBe('application/x-redis-rdb');

    const check = await run('redis-check-rdb', [backup.path('dump.rdb')]);
    expect(check.stdout).toMatch(/RDB looks OK/);

    const fresh = await startRedis({ rdbFile: backup.path('dump.rdb') });
    try {
      expect(await dbsizes(fresh.url())).toEqual(m.keyCounts);
      expect(Object.values(m.keyCounts as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(m.keys);
    } finally {
      await fresh.stop();
    }
  });
});

describe('rdb artifacts and restore', () => {
  it('refuses to restore an rdb artifact in place and explains the file replacement and the AOF caveat', async () => {
    const server = await startRedis({ args: ['--repl-diskless-sync', 'no'] });
    try {
      const r = new Redis(server.url());
      await r.set('k', 'v');
      r.disconnect();
      const dir = await tempDir();
      const source = createRedisSource({ url: server.url(), mode: 'rdb' });
      const backup = await backupToDir(source, dir);
      for (const dryRun of [false, true]) {
        const error = await restoreFromDir(source, dir, backup.component, { dryRun }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(BackupError.isInstance(error)).toBe(true);
        const e = error as BackupError;
        expect(e.code).toBe('RESTORE_FAILED');
        expect(e.message).toMatch(/dump\.rdb is an RDB snapshot/);
        expect(e.hint).toMatch(/dbfilename/);
        expect(e.hint).toMatch(/appendonly/);
      }
      const check = new Redis(server.url());
      expect(await check.get('k')).toBe('v');
      check.disconnect();
    } finally {
      await server.stop();
    }
  });
});

describe('auto mode', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({
      password: 'admin-secret',
      args: ['--repl-diskless-sync', 'no'],
      aclUsers: ['nosync on >nosync-secret ~* &* +@all -sync -psync', 'replicator on >repl-secret ~* +@read +select +info +time +ping +sync +psync +replconf'],
    });
    const r = new Redis(server.url());
    await r.set('a', '1');
    await r.select(2);
    await r.set('b', '2');
    r.disconnect();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('falls back to logical when the ACL user may not SYNC/PSYNC, and records why', async () => {
    const dir = await tempDir();
    const source = createRedisSource({ host: server.host, port: server.port, username: 'nosync', password: 'nosync-secret', mode: 'auto' });
    const backup = await backupToDir(source, dir);
    const m = backup.result.metadata;
    expect(m.requestedMode).toBe('auto');
    expect(m.mode).toBe('logical');
    expect(String(m.fallbackReason)).toMatch(/NOPERM/);
    expect(backup.result.warnings?.join('\n')).toMatch(/fell back to logical/);
    expect(m.keyCounts).toMatchObject({ '0': 1, '2': 1 });
    expect([...backup.artifacts.keys()]).toEqual(['dump.resp']);
    expect(JSON.stringify(backup.logs)).not.toContain('nosync-secret');
    expect(JSON.stringify(backup.result)).not.toContain('nosync-secret');
  });

  it('mode rdb with the same user fails with a clear error instead of falling back', async () => {
    const dir = await tempDir();
    const source = createRedisSource({ host: server.host, port: server.port, username: 'nosync', password: 'nosync-secret', mode: 'rdb' });
    const error = await backupToDir(source, dir).then(
      () => undefined,
      (e: unknown) => e as BackupError,
    );
    expect(error?.code).toBe('SOURCE_FAILED');
    expect(error?.message).toMatch(/refused to send an RDB snapshot.*NOPERM/);
    expect(error?.hint).toMatch(/auto/);
    expect(error?.message).not.toContain('nosync-secret');
  });

  it('uses rdb when the user may replicate', async () => {
    const dir = await tempDir();
    const source = createRedisSource({ host: server.host, port: server.port, username: 'replicator', password: 'repl-secret', mode: 'auto' });
    const backup = await backupToDir(source, dir);
    expect(backup.result.metadata.mode).toBe('rdb');
    expect(backup.result.metadata.fallbackReason).toBeUndefined();
    expect([...backup.artifacts.keys()]).toEqual(['dump.rdb']);
  });

  it('check() reports whether SYNC is allowed', async () => {
    const denied = await createRedisSource({ host: server.host, port: server.port, username: 'nosync', password: 'nosync-secret', mode: 'rdb' }).check();
    expect(denied.ok).toBe(false);
    expect(denied.problems?.join('\n')).toMatch(/may not run SYNC/);
    const auto = await createRedisSource({ host: server.host, port: server.port, username: 'nosync', password: 'nosync-secret', mode: 'auto' }).check();
    expect(auto.ok).toBe(true);
    expect(auto.warnings?.join('\n')).toMatch(/fall back to logical/);
    const allowed = await createRedisSource({ host: server.host, port: server.port, username: 'replicator', password: 'repl-secret', mode: 'rdb' }).check();
    expect(allowed.ok).toBe(true);
    expect(allowed.details?.serverVersion).toMatch(/^7\./);
  });
});
