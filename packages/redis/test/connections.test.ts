import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { getFreePort, makeTempDir, registerCleanup, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { BackupError } from '@scholaria/backup-core';
import { createRedisSource, type RedisSourceOptions } from '@scholaria/backup-redis';
import { backupToDir, restoreFromDir } from './helpers/dir-context.js';

const run = promisify(execFile);
const dirs: TempDir[] = [];
async function tempDir(): Promise<string> {
  const d = await makeTempDir();
  dirs.push(d);
  return d.path;
}
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

async function seed(url: string, tls?: { ca: Buffer }): Promise<void> {
  const r = new Redis(url, tls ? { tls } : {});
  await r.set('k1', 'v1');
  await r.select(4);
  await r.hset('h', 'f', 'v');
  r.disconnect();
}

/** Logical and rdb backups through the given connection options both see both keys. */
async function backupBothModes(options: RedisSourceOptions): Promise<void> {
  for (const mode of ['logical', 'rdb'] as const) {
    const dir = await tempDir();
    const backup = await backupToDir(createRedisSource({ ...options, mode } as RedisSourceOptions), dir);
    expect(backup.result.metadata.mode).toBe(mode);
    expect(backup.result.metadata.keyCounts).toMatchObject({ '0': 1, '4': 1 });
  }
}

describe('a ready ioredis client', () => {
  it('is duplicated: the caller keeps its connection and its selected database', async () => {
    const server = await startRedis({ password: 'client-pw' });
    const client = new Redis(server.url(3));
    try {
      await seed(server.url());
      await client.set('in-three', 'x');
      const source = createRedisSource({ client });
      const dir = await tempDir();
      const backup = await backupToDir(source, dir);
      expect(backup.result.metadata.keyCounts).toMatchObject({ '0': 1, '3': 1, '4': 1 });
      expect(client.status).toBe('ready');
      await client.set('still-three', 'y');
      expect((await client.keys('*')).sort()).toEqual(['in-three', 'still-three']);

      const target = await startRedis();
      const targetClient = new Redis(target.url());
      try {
        await restoreFromDir(createRedisSource({ client: targetClient }), dir, backup.component);
        expect(targetClient.status).toBe('ready');
        expect(await targetClient.get('k1')).toBe('v1');
      } finally {
        targetClient.disconnect();
        await target.stop();
      }
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
});

describe('least-privilege ACL users (the ones the README recommends)', () => {
  it('backs up with +@read +select +info +time and restores with +select +flushdb +restore +info +dbsize +swapdb +multi +exec (password read at run time)', async () => {
    const server = await startRedis({
      password: 'admin-pw',
      aclUsers: [
        'backup on >backup-pw ~* +@read +select +info +time +ping',
        'restorer on >restorer-pw ~* +select +flushdb +restore +info +ping +config|get +dbsize +swapdb +multi +exec',
        // The rules recommended before restores became all-or-nothing: refused up front, nothing changed.
        'oldrestorer on >old-pw ~* +select +flushdb +restore +info +ping +config|get',
      ],
    });
    try {
      await seed(server.url());
      const dir = await tempDir();
      const backup = await backupToDir(createRedisSource({ host: server.host, port: server.port, username: 'backup', password: async () => 'backup-pw', mode: 'auto' }), dir);
      expect(backup.result.metadata).toMatchObject({ mode: 'logical', keyCounts: { '0': 1, '4': 1 } });
      // CONFIG is refused to this user, so the databases came from INFO keyspace.
      expect(backup.result.metadata.databasesFrom).toBe('info');
      expect(backup.result.metadata.databases).toEqual([0, 4]);

      const admin = new Redis(server.url());
      await admin.set('k1', 'live');
      const old = createRedisSource({ host: server.host, port: server.port, username: 'oldrestorer', password: 'old-pw' });
      const refused = await restoreFromDir(old, dir, backup.component).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(refused?.message).toMatch(/refused a command of the all-or-nothing restore .*NOPERM.*; nothing was changed/);
      expect((refused as { hint?: string }).hint).toMatch(/\+dbsize \+swapdb \+multi \+exec .*allOrNothing: false/);
      expect(await admin.get('k1')).toBe('live');
      await admin.flushall();
      admin.disconnect();
      const res = await restoreFromDir(createRedisSource({ host: server.host, port: server.port, username: 'restorer', password: 'restorer-pw' }), dir, backup.component);
      expect(res.metadata?.keys).toBe(2);
      const check = new Redis(server.url());
      expect(await check.get('k1')).toBe('v1');
      check.disconnect();
    } finally {
      await server.stop();
    }
  });
});

describe('refused commands on the logical path', () => {
  it('without PEXPIRETIME (older servers, or an ACL without it) the expiries come from TIME + PTTL, never later than the real ones', async () => {
    const server = await startRedis({ password: 'admin-pw', aclUsers: ['oldttl on >oldttl-pw ~* +@read +select +info +time +ping -pexpiretime'] });
    try {
      const admin = new Redis(server.url());
      // Far-future absolute expiries, so none of them can pass during the test.
      const expiries = new Map<string, number>();
      for (let i = 0; i < 1500; i++) {
        await admin.set(`k${i}`, `value ${i}`);
        if (i % 3 === 0) {
          const at = 4_102_444_800_000 + i * 1_001;
          await admin.pexpireat(`k${i}`, at);
          expiries.set(`k${i}`, at);
        }
      }
      const dir = await tempDir();
      const backup = await backupToDir(createRedisSource({ host: server.host, port: server.port, username: 'oldttl', password: 'oldttl-pw', batchSize: 100 }), dir);
      expect(backup.result.metadata.keys).toBe(1500);
      await admin.flushall();
      admin.disconnect();
      const res = await restoreFromDir(createRedisSource({ url: server.url() }), dir, backup.component);
      expect(res.metadata?.keys).toBe(1500);
      const check = new Redis(server.url());
      try {
        for (let i = 0; i < 1500; i++) {
          const key = `k${i}`;
          expect(await check.get(key)).toBe(`value ${i}`);
          const restored = Number(await check.call('PEXPIRETIME', key));
          const real = expiries.get(key);
          if (real === undefined) expect(restored).toBe(-1);
          else {
            // TIME is taken before the PTTL of its batch, so an expiry is early by at most that gap, never late.
            expect(restored).toBeLessThanOrEqual(real);
            expect(restored).toBeGreaterThan(real - 60_000);
          }
        }
      } finally {
        check.disconnect();
      }
    } finally {
      await server.stop();
    }
  });

  it('a user that may not DUMP gets SOURCE_FAILED naming the key and the ACL it needs', async () => {
    const server = await startRedis({ password: 'admin-pw', aclUsers: ['nodump on >nodump-pw ~* +@read +select +info +time +ping -dump'] });
    try {
      await seed(server.url());
      const dir = await tempDir();
      const error = await backupToDir(createRedisSource({ host: server.host, port: server.port, username: 'nodump', password: 'nodump-pw' }), dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BackupError);
      expect((error as BackupError).code).toBe('SOURCE_FAILED');
      expect((error as BackupError).message).toMatch(/DUMP of key "k1" failed: NOPERM/);
      expect((error as BackupError).hint).toMatch(/\+dump/);
    } finally {
      await server.stop();
    }
  });
});

describe('unix socket', () => {
  it('backs up through `path` in both modes', async () => {
    const socketDir = await tempDir();
    const path = join(socketDir, 'redis.sock');
    const server = await startRedis({ args: ['--unixsocket', path, '--unixsocketperm', '700', '--repl-diskless-sync', 'no'] });
    try {
      await seed(server.url());
      await backupBothModes({ path });
    } finally {
      await server.stop();
    }
  });
});

describe('TLS', () => {
  let server: RedisServer;
  let tlsPort: number;
  let ca: Buffer;
  beforeAll(async () => {
    const certs = await tempDir();
    const f = (n: string) => join(certs, n);
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=Test CA', '-keyout', f('ca.key'), '-out', f('ca.crt')]);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr')]);
    await writeFile(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('ext.cnf'), '-out', f('server.crt')]);
    ca = await readFile(f('ca.crt'));
    tlsPort = await getFreePort();
    server = await startRedis({
      password: 'tls-pw',
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no', '--tls-replication', 'yes', '--repl-diskless-sync', 'no'],
    });
    await seed(server.url());
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('backs up over rediss:// in both modes (the rdb socket speaks TLS too)', async () => {
    await backupBothModes({ url: `rediss://:tls-pw@localhost:${tlsPort}`, tls: { ca } });
  });

  it('a certificate the client does not trust is a CONNECTION_FAILED', async () => {
    const check = await createRedisSource({ host: 'localhost', port: tlsPort, password: 'tls-pw', tls: true }).check();
    expect(check.ok).toBe(false);
    expect(check.problems?.join('\n')).toMatch(/cannot connect to rediss:\/\/localhost/);
  });
});

describe('Sentinel', () => {
  it('finds the master through Sentinel and backs it up in both modes', async () => {
    const master = await startRedis({ password: 'master-pw', args: ['--repl-diskless-sync', 'no'] });
    const dir = await tempDir();
    const port = await getFreePort();
    const conf = join(dir, 'sentinel.conf');
    await writeFile(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor backupmaster 127.0.0.1 ${master.port} 1`,
        'sentinel auth-pass backupmaster master-pw',
        '',
      ].join('\n'),
    );
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const unregister = registerCleanup(() => {
      sentinel.kill('SIGKILL');
    });
    try {
      for (let i = 0; ; i++) {
        try {
          const s = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
          s.on('error', () => {});
          await s.connect();
          const addr = await s.call('SENTINEL', 'get-master-addr-by-name', 'backupmaster');
          s.disconnect();
          if (Array.isArray(addr)) break;
        } catch {
          if (i > 100) throw new Error('sentinel did not start');
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await seed(master.url());
      await backupBothModes({ sentinels: [{ host: '127.0.0.1', port }], sentinelName: 'backupmaster', password: 'master-pw' });
    } finally {
      sentinel.kill('SIGTERM');
      unregister();
      await master.stop();
    }
  });
});
