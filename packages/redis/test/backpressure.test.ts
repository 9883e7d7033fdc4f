import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { silentLogger, type SourceBackupContext } from '@scholaria/backup-core';
import { startRedis } from '@scholaria/backup-testkit';
import { createRedisSource } from '@scholaria/backup-redis';

async function dumpCalls(command: (...args: string[]) => Promise<unknown>): Promise<number> {
  const info = String(await command('INFO', 'commandstats'));
  return Number(/cmdstat_dump:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

/**
 * A backup context whose artifact sink holds its first write until `release()`, like a stalled
 * upload; `received()` is the bytes handed to the sink so far.
 */
function stalledSink(setId: string): { ctx: SourceBackupContext; release: () => void; received: () => number } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let received = 0;
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, callback) {
      received += chunk.length;
      void released.then(() => callback());
    },
  });
  const ctx: SourceBackupContext = {
    setId,
    tier: 'manual',
    signal: new AbortController().signal,
    logger: silentLogger,
    artifact: () => sink,
    writeArtifact: async (_name, body) => {
      await pipeline(body instanceof Readable ? body : Readable.from(body), sink);
    },
  };
  return { ctx, release, received: () => received };
}

describe('backpressure', () => {
  it('stops reading Redis while the artifact sink is not draining, and finishes once it does', async () => {
    const server = await startRedis();
    try {
      const keys = 20_000;
      for (let start = 0; start < keys; start += 5000) {
        const args: string[] = [];
        for (let i = start; i < start + 5000; i++) args.push(`key:${i}`, 'x'.repeat(100));
        await server.command('MSET', ...args);
      }
      const { ctx, release, received } = stalledSink('bp_20260101_000000');
      const source = createRedisSource({ host: server.host, port: server.port, batchSize: 100, scanCount: 100 });
      const done = source.backup(ctx);

      // Wait until the source stops issuing DUMPs (it must, with the sink stalled).
      let last = -1;
      let calls = await dumpCalls(server.command);
      for (let stable = 0; stable < 5; ) {
        await new Promise((r) => setTimeout(r, 100));
        last = calls;
        calls = await dumpCalls(server.command);
        stable = calls === last ? stable + 1 : 0;
      }
      expect(calls).toBeGreaterThan(0);
      // A handful of 100-key batches at most: the consumer's buffer plus one round trip in flight.
      expect(calls).toBeLessThanOrEqual(1000);
      release();
      const result = await done;
      expect(result.metadata.keys).toBe(keys);
      expect(await dumpCalls(server.command)).toBe(keys);
      // Every RESTORE line carries at least its key name and a payload (values compress inside DUMP).
      expect(received()).toBeGreaterThan(keys * 20);
    } finally {
      await server.stop();
    }
  });

  it('rdb mode: a stalled sink stops the socket reads (the snapshot stays in flight), then the snapshot completes', async () => {
    const server = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    try {
      // 64 MB that does not compress: far more than socket buffers plus the reader's 4 MiB.
      for (let start = 0; start < 4096; start += 256) {
        const args: (string | Buffer)[] = [];
        for (let i = start; i < start + 256; i++) args.push(`blob:${i}`, randomBytes(16 * 1024).toString('base64'));
        await server.command('MSET', ...(args as string[]));
      }
      const { ctx, release, received } = stalledSink('bp_20260101_000001');
      const source = createRedisSource({ host: server.host, port: server.port, mode: 'rdb' });
      const done = source.backup(ctx);
      await expect.poll(() => received(), { timeout: 60_000, interval: 50 }).toBeGreaterThan(0);
      // Stalled for a while, the transfer must not finish: the fork is still sending.
      await new Promise((r) => setTimeout(r, 2000));
      expect(String(await server.command('INFO', 'persistence'))).toMatch(/rdb_bgsave_in_progress:1/);
      expect(received()).toBeLessThanOrEqual(2 * 1024 * 1024);
      release();
      const result = await done;
      expect(result.metadata).toMatchObject({ mode: 'rdb', checksumVerified: true });
      expect(received()).toBeGreaterThan(64 * 1024 * 1024);
    } finally {
      await server.stop();
    }
  });
});
