import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createBackupEngine, createGzipCodec } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, startS3, type S3TestServer, type TempDir } from '@scholaria/backup-testkit';
import { createS3Storage } from '@scholaria/backup-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MiB, recordingClient, storageOn } from './helpers.js';

const run = promisify(execFile);
let s3: S3TestServer;
let dir: TempDir;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await dir.remove();
});

describe('engine with fs and S3 storages at once', () => {
  it('writes the same set to both; each alone lists, verifies and restores it; sha256sum -c passes on the S3 copy', async () => {
    const source = createTestSource({
      files: { 'a.txt': 'alpha\n', 'nested/b.bin': Buffer.from([0, 1, 2, 255]) },
      generated: { 'big.bin': 12 * MiB + 5 },
    });
    const fs = createFsStorage({ root: join(dir.path, 'backup') });
    const s3storage = storageOn(s3, { partSizeBytes: 5 * MiB });
    const engine = createBackupEngine({ sources: [source], storage: [fs, s3storage], codecs: [createGzipCodec()] });

    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    expect(result.storages.map((s) => [s.name, s.ok]).sort()).toEqual([
      [fs.name, true],
      [s3storage.name, true],
    ].sort());

    const s3Keys = (await s3storage.list(`${result.setId}/`)).map((e) => e.key).sort();
    expect(s3Keys).toEqual(
      [
        `${result.setId}/SHA256SUMS`,
        `${result.setId}/manifest.json`,
        `${result.setId}/test/a.txt.gz`,
        `${result.setId}/test/big.bin.gz`,
        `${result.setId}/test/nested/b.bin.gz`,
      ].sort(),
    );
    const fsKeys = (await fs.list(`${result.setId}/`)).map((e) => e.key).sort();
    expect(fsKeys).toEqual(s3Keys);

    // No lock-in: download the S3 copy and check it with GNU sha256sum.
    const download = join(dir.path, 'download');
    for (const key of s3Keys) {
      const target = join(download, key);
      await mkdir(dirname(target), { recursive: true });
      await pipeline(await s3storage.get(key), createWriteStream(target));
    }
    const { stdout } = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(download, result.setId) });
    expect(stdout.trim().split('\n').sort()).toEqual(['test/a.txt.gz: OK', 'test/big.bin.gz: OK', 'test/nested/b.bin.gz: OK']);

    // The S3 copy alone is a complete backup.
    const fromS3 = createBackupEngine({ sources: [source], storage: storageOn(s3, { prefix: s3storage.prefix }), codecs: [createGzipCodec()] });
    expect((await fromS3.list()).map((s) => [s.id, s.status])).toEqual([[result.setId, 'complete']]);
    const verified = await fromS3.verify({ ref: 'latest' });
    expect(verified.ok).toBe(true);
    expect(verified.sets[0]!.files.every((f) => f.ok)).toBe(true);

    source.data.clear();
    source.data.set('junk', Buffer.from('x'));
    const restored = await fromS3.restore({ ref: 'latest' });
    expect(restored.status).toBe('ok');
    expect(Object.fromEntries([...source.data].map(([k, v]) => [k, v.toString('hex')]))).toEqual({
      'a.txt': Buffer.from('alpha\n').toString('hex'),
      'nested/b.bin': '000102ff',
    });
    expect(source.received.get('big.bin')).toEqual(source.expectedDigest('big.bin'));
    await fromS3.close();

    // The fs copy alone too.
    const fromFs = createBackupEngine({ sources: [source], storage: createFsStorage({ root: join(dir.path, 'backup') }), codecs: [createGzipCodec()] });
    expect((await fromFs.verify({ ref: result.setId })).ok).toBe(true);
    await fromFs.close();
    await engine.close();
  }, 120_000);

  it('a failing S3 storage does not stop the fs copy, and is reported naming the bucket', async () => {
    const source = createTestSource();
    const fs = createFsStorage({ root: join(dir.path, 'backup') });
    const broken = createS3Storage({ bucket: 'no-such-bucket', endpoint: s3.endpoint, credentials: s3.credentials });
    const engine = createBackupEngine({ sources: [source], storage: [fs, broken] });
    const result = await engine.backup({ tier: 'daily' });
    const s3Outcome = result.storages.find((s) => s.name === broken.name)!;
    expect(s3Outcome.ok).toBe(false);
    expect(s3Outcome.error!.message).toContain('no-such-bucket');
    expect(result.storages.find((s) => s.name === fs.name)!.ok).toBe(true);
    const fromFs = createBackupEngine({ sources: [source], storage: createFsStorage({ root: join(dir.path, 'backup') }) });
    expect((await fromFs.list()).map((s) => [s.id, s.status])).toEqual([[result.setId, 'complete']]);
    expect((await fromFs.verify({ ref: 'latest' })).ok).toBe(true);
    await fromFs.close();
    await engine.close();
  });

  it('locks every object of a set (Object Lock) for as long as its tier\'s retention keeps it', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client, objectLock: { mode: 'COMPLIANCE' } });
    // A clock in the future, so the lock dates are ahead of the real time the storage checks.
    let now = new Date(Date.now() + 86_400_000);
    const engine = createBackupEngine({
      sources: [createTestSource()],
      storage,
      clock: () => now,
      retention: { tiers: { daily: { within: '7d' }, monthly: { within: '1y' }, weekly: { weekly: 4 } } },
    });
    try {
      const lockDates = async (tier: 'daily' | 'weekly' | 'monthly') => {
        requests.length = 0;
        const result = await engine.backup({ tier });
        expect(result.status).toBe('complete');
        const puts = requests.filter((r) => r.command === 'PutObject' && r.path.includes(`/${result.setId}/`));
        expect(puts.map((r) => r.path.split('/').pop()).sort()).toEqual(['SHA256SUMS', 'data.txt', 'manifest.json']);
        return puts.map((r) => r.headers['x-amz-object-lock-retain-until-date']);
      };
      // within 7d: at least 7 days of 23 hours (a day across a DST change), never past what prune keeps.
      const daily = await lockDates('daily');
      for (const d of daily) expect(new Date(d!).getTime()).toBe(now.getTime() + 7 * 23 * 3_600_000);
      const monthly = await lockDates('monthly');
      for (const d of monthly) expect(new Date(d!).getTime()).toBe(now.getTime() + 365 * 86_400_000);
      // A count rule ("the 4 newest weeks") gives no date the set is sure to be kept until: no lock.
      now = new Date(now.getTime() + 3_600_000);
      expect(await lockDates('weekly')).toEqual([undefined, undefined, undefined]);
      for (const r of requests) expect(r.headers['x-amz-object-lock-mode']).toBeUndefined();
    } finally {
      await engine.close();
      client.destroy();
    }
  });

  it('prune removes old sets from S3 through deleteMany and reports objects S3 refuses to delete', async () => {
    let now = new Date('2026-11-20T02:00:00Z');
    const storage = storageOn(s3, { objectLock: { mode: 'GOVERNANCE' } });
    const engine = createBackupEngine({
      sources: [createTestSource()],
      storage,
      clock: () => now,
      retention: { tiers: { daily: { last: 1 } } },
    });
    const first = await engine.backup({ tier: 'daily' });
    now = new Date('2026-11-21T02:00:00Z');
    const second = await engine.backup({ tier: 'daily' });
    now = new Date('2026-11-22T02:00:00Z');
    const third = await engine.backup({ tier: 'daily' });
    // Simulate Object Lock on one object of the oldest set.
    s3.lockObject(`${storage.prefix}/${first.setId}/test/data.txt`);
    try {
      const pruned = await engine.prune();
      expect(pruned.remove.map((r) => r.id).sort()).toEqual([first.setId, second.setId].sort());
      expect(pruned.failed).toEqual([{ key: `${first.setId}/test/data.txt`, error: expect.stringMatching(/AccessDenied/) }]);
      const left = (await storage.list('')).map((e) => e.key).filter((k) => !k.startsWith('.scholaria-backup/'));
      expect(left.some((k) => k.startsWith(`${second.setId}/`))).toBe(false);
      expect(left).toContain(`${first.setId}/test/data.txt`);
      expect(left.filter((k) => k.startsWith(`${third.setId}/`)).length).toBeGreaterThan(0);
    } finally {
      s3.unlockObject(`${storage.prefix}/${first.setId}/test/data.txt`);
      await engine.close();
    }
  });
});
