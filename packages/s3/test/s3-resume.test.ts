import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { BackupError } from '@scholaria/backup-core';
import { startS3, type S3TestServer } from '@scholaria/backup-testkit';
import { createS3Storage } from '@scholaria/backup-s3';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, MiB, readAll, recordingClient, storageOn } from './helpers.js';

let s3: S3TestServer;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

/**
 * A TCP proxy in front of s3rver that breaks the first `cuts` connections after `cutAfter`
 * bytes of response, the way a flaky NAT or load balancer drops a long download.
 */
async function flakyProxy(target: string, cutAfter: number, cuts: number): Promise<{ endpoint: string; connections: () => number; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const index = connections++;
    const upstream = createConnection({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    let sent = 0;
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      sent += d.length;
      if (index < cuts && sent > cutAfter) {
        client.write(d.subarray(0, d.length - (sent - cutAfter)));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('get survives a broken connection', () => {
  it('resumes with a Range request pinned to the ETag and returns every byte once', async () => {
    const writer = storageOn(s3);
    const data = randomBytes(6 * MiB + 99);
    await writer.put('obj.bin', bodyOf(data));

    const proxy = await flakyProxy(s3.endpoint, 2 * MiB, 2);
    const { client, requests } = recordingClient({ ...s3, clientConfig: { ...s3.clientConfig, endpoint: proxy.endpoint } } as S3TestServer);
    try {
      const reader = createS3Storage({ bucket: s3.bucket, prefix: writer.prefix, client });
      const got = await readAll(await reader.get('obj.bin'));
      expect(got.length).toBe(data.length);
      expect(got.equals(data)).toBe(true);
      const gets = requests.filter((r) => r.command === 'GetObject');
      expect(gets.length).toBe(3);
      expect(gets[0]!.headers.range).toBeUndefined();
      for (const resumed of gets.slice(1)) {
        expect(resumed.headers.range).toMatch(/^bytes=\d+-$/);
        expect(resumed.headers['if-match']).toMatch(/^"?[0-9a-f]{32}"?$/);
      }
      expect(Number(/bytes=(\d+)-/.exec(gets[1]!.headers.range!)![1])).toBeGreaterThan(MiB);
      expect(proxy.connections()).toBeGreaterThanOrEqual(3);
    } finally {
      client.destroy();
      await proxy.close();
      await writer.close();
    }
  });

  it('gives up after maxAttempts with a retryable CONNECTION_FAILED error on the stream', async () => {
    const writer = storageOn(s3);
    await writer.put('obj.bin', bodyOf(randomBytes(3 * MiB)));
    const proxy = await flakyProxy(s3.endpoint, 512 * 1024, 100);
    const reader = createS3Storage({
      bucket: s3.bucket,
      prefix: writer.prefix,
      endpoint: proxy.endpoint,
      credentials: s3.credentials,
      maxAttempts: 2,
    });
    try {
      const stream = await reader.get('obj.bin');
      const error = await readAll(stream).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(BackupError.isInstance(error)).toBe(true);
      expect((error as BackupError).code).toBe('CONNECTION_FAILED');
      expect((error as BackupError).retryable).toBe(true);
      expect((error as BackupError).message).toContain('get "obj.bin"');
    } finally {
      await reader.close();
      await proxy.close();
      await writer.close();
    }
  });
});
