// An S3 endpoint that answers 500/503, hangs or cuts answers for a while (a loopback proxy in
// front of s3rver injects the faults), then recovers. Short fault periods are absorbed by the
// retries; an outage longer than the retries fails the run by name and leaves no complete set;
// after recovery everything works and no multipart upload is left open.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { createS3Storage, type S3Storage } from '@scholaria/backup-s3';
import { createTestSource, startS3, type S3TestServer, type TestSource } from '@scholaria/backup-testkit';
import { assertCatalogSound, captureLogger, sleep } from './helpers/common.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';

const MiB = 1024 * 1024;
let s3: S3TestServer;
let proxy: FaultProxy;
let prefix = 0;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint);
});
afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
});
beforeEach(() => {
  proxy.rule = () => 'pass';
  proxy.requests.length = 0;
});

function storageThroughProxy(maxAttempts = 4): S3Storage {
  return createS3Storage({
    bucket: s3.bucket,
    endpoint: proxy.url,
    region: s3.region,
    credentials: s3.credentials,
    prefix: `faults/${++prefix}`,
    partSizeBytes: 5 * MiB,
    queueSize: 2,
    maxAttempts,
    socketTimeoutMs: 1500,
    connectionTimeoutMs: 1500,
  });
}

function setup(options: { lockTtlMs?: number; maxAttempts?: number } = {}) {
  const storage = storageThroughProxy(options.maxAttempts);
  // 12 MiB: a multipart upload of three parts.
  const source = createTestSource({ name: 'test', files: { 'data.txt': 'live data v1\n' }, generated: { 'big.bin': 12 * MiB } });
  const logger = captureLogger();
  const engine = createBackupEngine({
    sources: [source],
    storage,
    logger,
    retention: { tiers: {}, incompleteGracePeriod: '0s' },
    ...(options.lockTtlMs ? { lockTtlMs: options.lockTtlMs } : {}),
  });
  return { storage, source, engine, logger };
}

const isUploadPart = (path: string) => /[?&]partNumber=/.test(path);
const isObjectWrite = (method: string, path: string) => method === 'PUT' && !path.includes('.scholaria-backup');

async function expectRestorable(engine: BackupEngine, source: TestSource, setId: string) {
  expect((await engine.verify({ ref: setId })).ok).toBe(true);
  source.data.set('data.txt', Buffer.from('changed live data'));
  const restored = await engine.restore({ ref: setId });
  expect(restored.status).toBe('ok');
  expect(source.data.get('data.txt')!.toString()).toBe('live data v1\n');
  expect(source.received.get('big.bin')).toEqual(source.expectedDigest('big.bin'));
}

describe('S3 faults for a while, then recovery', () => {
  it('500 InternalError on the first two attempts of every request for the first 60 requests: the backup completes and restores', async () => {
    const { engine, source, storage } = setup();
    let faulted = 0;
    proxy.rule = (r) => (faulted < 60 && r.attempt <= 2 ? (faulted++, 500) : 'pass');
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status, JSON.stringify(result.components.map((c) => c.error?.message))).toBe('complete');
    expect(proxy.faultsServed()).toBeGreaterThanOrEqual(20);
    expect(proxy.requests.some((r) => r.fault === 500 && isUploadPart(r.path))).toBe(true);
    await expectRestorable(engine, source, result.setId);
    expect(await s3.listMultipartUploads()).toEqual([]);
    await assertCatalogSound(engine);
    await storage.close();
  });

  it('timeouts: the first attempt of every object write hangs, then 503 SlowDown on part uploads: completes, no open multipart upload', async () => {
    const { engine, source, storage } = setup();
    let hung = 0;
    proxy.rule = (r) => {
      if (isObjectWrite(r.method, r.path) && r.attempt === 1 && hung < 4) {
        hung++;
        return 'hang';
      }
      if (isUploadPart(r.path) && r.attempt === 2) return 503;
      return 'pass';
    };
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status, JSON.stringify(result.components.map((c) => c.error?.message))).toBe('complete');
    expect(proxy.requests.filter((r) => r.fault === 'hang').length).toBe(4);
    expect(proxy.requests.some((r) => r.fault === 503)).toBe(true);
    await expectRestorable(engine, source, result.setId);
    expect(await s3.listMultipartUploads()).toEqual([]);
    await storage.close();
  });

  it('downloads cut off mid-body (verify and restore) resume and still check every byte', async () => {
    const { engine, source, storage } = setup();
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    let cuts = 0;
    proxy.rule = (r) => (r.method === 'GET' && r.path.includes('big.bin') && !/[?&]list-type/.test(r.path) && cuts < 3 ? (cuts++, { cutAfterBytes: 3 * MiB + 17 }) : 'pass');
    expect((await engine.verify({ ref: result.setId })).ok).toBe(true);
    expect(cuts).toBeGreaterThanOrEqual(1);
    await expectRestorable(engine, source, result.setId);
    await storage.close();
  });

  it('an outage longer than the retries, starting mid-upload: the run fails naming S3, nothing looks complete; after recovery all is well', async () => {
    const { engine, source, storage, logger } = setup({ lockTtlMs: 3000, maxAttempts: 3 });
    const good = await engine.backup({ tier: 'daily' });
    expect(good.status).toBe('complete');
    let outage = false;
    proxy.rule = (r) => {
      if (isUploadPart(r.path)) outage = true;
      return outage ? 503 : 'pass';
    };
    const failed = await engine.backup({ tier: 'daily' });
    expect(failed.status).toBe('failed');
    const componentError = failed.components[0]!.error!;
    expect(componentError.message).toMatch(/^test: /);
    expect(componentError.message).toMatch(new RegExp(`s3://${s3.bucket}/faults/\\d+`));
    expect(componentError.message).toMatch(/SlowDown|503|failed after retries/);
    expect(failed.storages[0]!.ok).toBe(false);
    // Still down: the catalog cannot even be listed, and says so.
    await expect(engine.list()).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringMatching(/no storage could be listed/) });

    proxy.rule = () => 'pass';
    const { complete } = await assertCatalogSound(engine);
    expect(complete).toEqual([good.setId]);
    expect((await engine.verify({ ref: good.setId })).ok).toBe(true);
    // The failed run could not remove its lock during the outage; this process lives on, so it
    // holds until its TTL (3 s here).
    expect(logger.lines.some((l) => l.startsWith('warn could not remove the lock'))).toBe(true);
    await sleep(3500);
    const next = await engine.backup({ tier: 'daily' });
    expect(next.status, `${next.error?.message ?? ''} ${next.components.map((c) => c.error?.message ?? '').join(' ')}`).toBe('complete');
    await expectRestorable(engine, source, next.setId);
    // Leftovers of the failed run (if its cleanup also met the outage) are pruned.
    await engine.prune();
    const all = await engine.list({ includeIncomplete: true });
    expect(all.every((s) => s.status === 'complete')).toBe(true);
    expect((await engine.verify({ all: true })).ok).toBe(true);
    // An upload whose abort also met the outage stays open on the bucket; the run said so.
    const open = await s3.listMultipartUploads();
    if (open.length > 0) {
      expect(open.every((u) => u.key.includes(failed.setId))).toBe(true);
      expect(`${(componentError as { hint?: string }).hint}`).toMatch(/AbortIncompleteMultipartUpload/);
    }
    await storage.close();
  });
});
