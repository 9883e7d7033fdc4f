import { readdir } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createBackupEngine, type BackupError } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { createRedisSource } from '@scholaria/backup-redis';

/** Every path under `dir`, relative to it. */
async function files(dir: string): Promise<string[]> {
  return readdir(dir, { recursive: true }).catch(() => []);
}

/**
 * A TCP proxy in front of a real Redis that flips one byte of the server's replies at
 * `corruptAt` bytes into a connection. Only the replication connection carries that much, so
 * the ioredis connections of the source pass through untouched.
 */
async function corruptingProxy(target: RedisServer, corruptAt: number): Promise<{ port: number; corrupted: () => number; close: () => Promise<void> }> {
  let corrupted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let seen = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (seen <= corruptAt && corruptAt < seen + chunk.length) {
        chunk[corruptAt - seen] = chunk[corruptAt - seen]! ^ 0x5a;
        corrupted++;
      }
      seen += chunk.length;
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    corrupted: () => corrupted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe.each([
  { transfer: 'disk', args: ['--repl-diskless-sync', 'no'] },
  { transfer: 'diskless', args: ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'] },
])('rdb mode refuses a snapshot whose CRC-64 does not match ($transfer transfer)', ({ args }) => {
  let server: RedisServer;
  let temp: TempDir;
  beforeAll(async () => {
    [server, temp] = await Promise.all([startRedis({ args }), makeTempDir('scholaria-rdb-crc-')]);
    const r = new Redis(server.url());
    try {
      // Random values so the snapshot spans several of the source's 1 MiB output blocks.
      const p = r.pipeline();
      for (let i = 0; i < 400; i++) p.set(`key:${i}`, randomBytes(10_000));
      await p.exec();
    } finally {
      r.disconnect();
    }
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), temp?.remove()]);
  });

  it('the backup fails with a clear checksum error and leaves no manifest and no dump.rdb', async () => {
    const proxy = await corruptingProxy(server, 2_500_000);
    const root = join(temp.path, 'corrupt');
    const engine = createBackupEngine({
      sources: [createRedisSource({ url: `redis://127.0.0.1:${proxy.port}`, mode: 'rdb' })],
      storage: createFsStorage({ root }),
    });
    try {
      const result = await engine.backup({ tier: 'manual' });
      expect(proxy.corrupted()).toBe(1);
      expect(result.status).toBe('failed');
      const error = result.components[0]!.error as BackupError;
      expect(error.code).toBe('SOURCE_FAILED');
      expect(error.message).toMatch(/RDB transfer from .* failed: the RDB checksum does not match its content/);
      expect(result.manifest).toBeUndefined();
      const left = await files(root);
      expect(left.filter((f) => f.endsWith('manifest.json') || f.includes('dump.rdb'))).toEqual([]);
    } finally {
      await engine.close();
      await proxy.close();
    }
  });

  it('the same snapshot through the same proxy, uncorrupted, is stored with its checksum verified', async () => {
    const proxy = await corruptingProxy(server, Number.MAX_SAFE_INTEGER);
    const root = join(temp.path, 'clean');
    const engine = createBackupEngine({
      sources: [createRedisSource({ url: `redis://127.0.0.1:${proxy.port}`, mode: 'rdb' })],
      storage: createFsStorage({ root }),
    });
    try {
      const result = await engine.backup({ tier: 'manual' });
      expect(result.status).toBe('complete');
      const component = result.manifest!.components[0]!;
      expect(component.metadata).toMatchObject({ mode: 'rdb', checksumVerified: true });
      expect(component.artifacts[0]!.size).toBeGreaterThan(4_000_000);
      expect(await files(root)).toContain(join(result.setId, 'manifest.json'));
    } finally {
      await engine.close();
      await proxy.close();
    }
  });
});
