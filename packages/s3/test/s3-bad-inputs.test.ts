import { createServer } from 'node:net';
import { BackupError } from '@scholaria/backup-core';
import { backupErrorOf, getFreePort, startS3, type S3TestServer } from '@scholaria/backup-testkit';
import { createS3Storage, type S3Storage } from '@scholaria/backup-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, recordingClient, storageOn } from './helpers.js';

const WRONG_SECRET = 'not-the-secret-0123456789abcdefABCDEF';
let s3: S3TestServer;

beforeAll(async () => {
  s3 = await startS3({ accessKeyId: 'SCHOLARIA_TEST_KEY', secretAccessKey: 'right-secret-9876543210' });
});
afterAll(async () => {
  await s3?.stop();
});

function expectNoSecret(error: BackupError, ...secrets: string[]) {
  const text = [error.message, error.hint, JSON.stringify(error), JSON.stringify(error.details)].join('\n');
  for (const secret of secrets) expect(text).not.toContain(secret);
}

/** Every operation, so each names itself in its error. */
const operations: [string, (s: S3Storage) => Promise<unknown>][] = [
  ['put', (s) => s.put('set/a.bin', bodyOf('data'))],
  ['get', (s) => s.get('set/a.bin')],
  ['list', (s) => s.list('set/')],
  ['stat', (s) => s.stat('set/a.bin')],
  ['deleteMany', (s) => s.deleteMany(['set/a.bin'])],
];

describe('wrong credentials', () => {
  it.each(operations)('an unknown access key id: %s fails fast with AUTH_FAILED naming the bucket', async (op, run) => {
    const { client, requests } = recordingClient(s3);
    client.destroy();
    const storage = createS3Storage({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: 'NO_SUCH_KEY', secretAccessKey: WRONG_SECRET },
    });
    const error = await backupErrorOf(run(storage));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`bucket "${s3.bucket}"`);
    expect(error.message).toContain(op);
    // HEAD answers have no body, so stat only learns "403"; the others get S3's error code.
    expect(error.message).toContain(op === 'stat' ? '403' : 'InvalidAccessKeyId');
    expect(error.hint).toMatch(/credentials/);
    expectNoSecret(error, WRONG_SECRET);
    // Permanent: one attempt, no retries with backoff.
    expect((error.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts).toBe(1);
    expect(requests).toEqual([]);
    await storage.close();
  });

  it('a wrong secret: SignatureDoesNotMatch becomes AUTH_FAILED with a hint about the secret', async () => {
    const storage = createS3Storage({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.credentials.accessKeyId, secretAccessKey: WRONG_SECRET },
    });
    const error = await backupErrorOf(storage.put('set/a.bin', bodyOf('data')));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain('SignatureDoesNotMatch');
    expect(error.message).toContain(`put "set/a.bin"`);
    expect(error.hint).toMatch(/secret access key/);
    expectNoSecret(error, WRONG_SECRET, 'right-secret-9876543210');
    expect((error.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts).toBe(1);
    expect(await storageOn(s3).list('')).toEqual([]);
    await storage.close();
  });

  it('the right credentials work against the same server (the failures above are about the keys)', async () => {
    const storage = storageOn(s3);
    await storage.put('ok.txt', bodyOf('fine'));
    expect((await storage.list('')).map((e) => e.key)).toEqual(['ok.txt']);
    await storage.close();
  });
});

describe('missing bucket', () => {
  it.each(operations)('%s fails with STORAGE_FAILED naming the bucket and saying to create it', async (op, run) => {
    const storage = createS3Storage({ bucket: 'no-such-bucket', endpoint: s3.endpoint, credentials: s3.credentials });
    const error = await backupErrorOf(run(storage));
    expect(error.code).toBe('STORAGE_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('"no-such-bucket" does not exist');
    expect(error.message).toContain(op);
    expect(error.hint).toMatch(/create the bucket/);
    expect(error.details).toMatchObject({ bucket: 'no-such-bucket', op, s3Code: 'NoSuchBucket' });
    await storage.close();
  });

  it('delete of a key in a missing bucket fails too (it is not a "missing key")', async () => {
    const storage = createS3Storage({ bucket: 'no-such-bucket', endpoint: s3.endpoint, credentials: s3.credentials });
    const error = await backupErrorOf(storage.delete('set/a.bin'));
    expect(error.message).toContain('does not exist');
    await storage.close();
  });
});

describe('unreachable endpoint', () => {
  it('a closed port: CONNECTION_FAILED, retryable, naming the endpoint, after retrying', async () => {
    const port = await getFreePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const storage = createS3Storage({ bucket: 'backups', endpoint, credentials: s3.credentials, maxAttempts: 3 });
    const error = await backupErrorOf(storage.put('set/a.bin', bodyOf('data')));
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(endpoint);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.hint).toMatch(/endpoint/);
    expect((error.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts).toBe(3);
    const listError = await backupErrorOf(storage.list(''));
    expect(listError.code).toBe('CONNECTION_FAILED');
    await storage.close();
  });

  it('a server that accepts but never answers: fails with TIMEOUT instead of hanging', async () => {
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const storage = createS3Storage({ bucket: 'backups', endpoint, credentials: s3.credentials, maxAttempts: 1, socketTimeoutMs: 300 });
      const error = await backupErrorOf(storage.list(''));
      expect(['TIMEOUT', 'CONNECTION_FAILED']).toContain(error.code);
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(endpoint);
      await storage.close();
    } finally {
      server.close();
    }
  });
});
