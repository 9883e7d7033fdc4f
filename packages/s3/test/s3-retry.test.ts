import { startS3, type S3TestServer } from '@scholaria/backup-testkit';
import { createS3Storage } from '@scholaria/backup-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, httpProxy, readAll, storageOn, xml } from './helpers.js';

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

describe('transient errors are retried with backoff', () => {
  it('two 5xx answers each, then the put and the list succeed', async () => {
    const failuresLeft = new Map([
      ['PUT', 2],
      ['GET', 2],
    ]);
    const proxy = await httpProxy(s3.endpoint, (req, _body, res) => {
      const left = failuresLeft.get(req.method!) ?? 0;
      if (left <= 0) return false;
      failuresLeft.set(req.method!, left - 1);
      if (req.method === 'PUT') xml(res, 500, '<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>');
      else xml(res, 503, '<Error><Code>ServiceUnavailable</Code><Message>Please try again.</Message></Error>');
      return true;
    });
    const storage = storageOn(s3, { endpoint: proxy.endpoint, maxAttempts: 5 });
    try {
      await storage.put('a.txt', bodyOf('survived'));
      expect((await storage.list('')).map((e) => e.key)).toEqual(['a.txt']);
      expect(proxy.seen.filter((r) => r.startsWith('PUT')).length).toBe(3);
      expect(proxy.seen.filter((r) => r.startsWith('GET') && r.includes('list-type=2')).length).toBe(3);
      expect((await readAll(await storage.get('a.txt'))).toString()).toBe('survived');
    } finally {
      await storage.close();
      await proxy.close();
    }
  });

  it('gives up after maxAttempts with a retryable STORAGE_FAILED naming the operation', async () => {
    const proxy = await httpProxy(s3.endpoint, (_req, _body, res) => {
      xml(res, 500, '<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>');
      return true;
    });
    const storage = createS3Storage({ bucket: s3.bucket, endpoint: proxy.endpoint, credentials: s3.credentials, maxAttempts: 2 });
    try {
      const error = await storage.list('set/').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'STORAGE_FAILED', retryable: true });
      expect((error as Error).message).toMatch(/list "set\/" failed after retries: .*InternalError/);
      expect(proxy.seen).toHaveLength(2);
    } finally {
      await storage.close();
      await proxy.close();
    }
  });

  it('per-key InternalError inside a DeleteObjects answer is retried for those keys only', async () => {
    let intercepted = 0;
    const proxy = await httpProxy(s3.endpoint, (req, body, res) => {
      if (req.method !== 'POST' || !req.url?.includes('delete') || intercepted > 0) return false;
      intercepted++;
      // S3 answers 200 and reports the failed key inside; the other key was "deleted".
      const keys = [...body.toString().matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!);
      xml(
        res,
        200,
        `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Error><Key>${keys[0]}</Key><Code>InternalError</Code><Message>try again</Message></Error></DeleteResult>`,
      );
      return true;
    });
    const direct = storageOn(s3);
    const viaProxy = createS3Storage({ bucket: s3.bucket, prefix: direct.prefix, endpoint: proxy.endpoint, credentials: s3.credentials });
    try {
      await direct.put('d/one', bodyOf('1'));
      await direct.put('d/two', bodyOf('2'));
      const result = await viaProxy.deleteMany(['d/one', 'd/two']);
      expect(result.failed).toEqual([]);
      expect(result.deleted.sort()).toEqual(['d/one', 'd/two']);
      // The first answer was faked: only the retried key really went away, so 'd/two' remains.
      expect((await direct.list('')).map((e) => e.key)).toEqual(['d/two']);
      expect(proxy.seen.filter((r) => r.startsWith('POST')).length).toBe(2);
    } finally {
      await viaProxy.close();
      await direct.close();
      await proxy.close();
    }
  });
});
