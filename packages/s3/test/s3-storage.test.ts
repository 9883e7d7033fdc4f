import { randomBytes } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BackupError } from '@scholaria/backup-core';
import type { S3TestServer } from '@scholaria/backup-testkit';
import { createS3Storage, DELETE_BATCH_SIZE } from '@scholaria/backup-s3';
import { describe, expect, it } from 'vitest';
import { bodyOf, MiB, readAll, recordingClient, storageOn, useS3Server } from './helpers.js';

let s3: S3TestServer;
let raw: S3Client;
useS3Server((server, client) => {
  s3 = server;
  raw = client;
});

async function rawKeys(prefix: string): Promise<string[]> {
  const out = await raw.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((c) => c.Key!).sort();
}

describe('prefix and keys', () => {
  it('stores objects under the prefix in the bucket and hides the prefix from callers', async () => {
    const storage = storageOn(s3);
    await storage.put('set_1/postgres/db.dump', bodyOf('dump'));
    await storage.put('set_1/manifest.json', bodyOf('{}'));
    expect(await rawKeys(`${storage.prefix}/`)).toEqual([`${storage.prefix}/set_1/manifest.json`, `${storage.prefix}/set_1/postgres/db.dump`]);
    expect((await storage.list('')).map((e) => e.key).sort()).toEqual(['set_1/manifest.json', 'set_1/postgres/db.dump']);
    expect(await storage.stat('set_1/manifest.json')).toMatchObject({ key: 'set_1/manifest.json', size: 2 });
    expect(storage.name).toBe(`s3://${s3.bucket}/${storage.prefix}`);
    await storage.close();
  });

  it('does not see objects of a sibling prefix, nor console "folder" placeholders', async () => {
    const a = storageOn(s3);
    const b = createS3Storage({ bucket: s3.bucket, endpoint: s3.endpoint, credentials: s3.credentials, prefix: `${a.prefix}-other` });
    await a.put('x', bodyOf('a'));
    await b.put('x', bodyOf('b'));
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${a.prefix}/folder/`, Body: '' }));
    expect((await a.list('')).map((e) => e.key)).toEqual(['x']);
    expect((await readAll(await b.get('x'))).toString()).toBe('b');
    await a.close();
    await b.close();
  });

  it('works at the bucket root without a prefix', async () => {
    const root = createS3Storage({ bucket: s3.bucket, endpoint: s3.endpoint, credentials: s3.credentials });
    const key = `root-${randomBytes(4).toString('hex')}/obj`;
    await root.put(key, bodyOf('root'));
    expect(await rawKeys(key)).toEqual([key]);
    expect((await root.list(key)).map((e) => e.key)).toEqual([key]);
    await root.delete(key);
    expect(await rawKeys(key)).toEqual([]);
    await root.close();
  });

  it('rejects keys that would exceed S3\'s 1024-byte key limit with INVALID_KEY', async () => {
    const storage = storageOn(s3);
    const error = await storage.put(`${'a'.repeat(1000)}/b`, bodyOf('x')).catch((e: unknown) => e);
    expect(BackupError.isInstance(error) && error.code).toBe('INVALID_KEY');
    await expect(storage.list('a//')).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await storage.close();
  });
});

describe('list pagination', () => {
  it('follows continuation tokens until every object is listed', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client, listPageSize: 2 });
    const keys = Array.from({ length: 7 }, (_, i) => `page/obj-${i}`);
    for (const key of keys) await storage.put(key, bodyOf(key));
    const listed = await storage.list('page/');
    expect(listed.map((e) => e.key).sort()).toEqual(keys);
    expect(listed.every((e) => e.size === 10)).toBe(true);
    expect(requests.filter((r) => r.command === 'ListObjectsV2')).toHaveLength(4);
    client.destroy();
  });
});

describe('uploads', () => {
  it('streams a multi-part object and reads it back byte for byte', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client, partSizeBytes: 5 * MiB, queueSize: 3 });
    const data = randomBytes(17 * MiB + 123);
    const result = await storage.put('mp/object.bin', bodyOf(data.subarray(0, 3 * MiB), data.subarray(3 * MiB)), { size: data.length });
    expect(result.size).toBe(data.length);
    expect(requests.filter((r) => r.command === 'UploadPart')).toHaveLength(4);
    expect(requests.filter((r) => r.command === 'CompleteMultipartUpload')).toHaveLength(1);
    expect((await readAll(await storage.get('mp/object.bin'))).equals(data)).toBe(true);
    client.destroy();
  });

  it('sends content type, server-side encryption and storage class, but keeps metadata objects in the default class', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client, serverSideEncryption: 'aws:kms', kmsKeyId: 'alias/backups', storageClass: 'DEEP_ARCHIVE' });
    await storage.put('set_1/postgres/db.dump', bodyOf('dump'), { contentType: 'application/x-pg-dump' });
    await storage.put('set_1/SHA256SUMS', bodyOf('sums'));
    await storage.put('set_1/manifest.json', bodyOf('{}'), { contentType: 'application/json' });
    const puts = requests.filter((r) => r.command === 'PutObject');
    expect(puts).toHaveLength(3);
    for (const put of puts) {
      expect(put.headers['x-amz-server-side-encryption']).toBe('aws:kms');
      expect(put.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/backups');
    }
    expect(puts[0]!.headers['x-amz-storage-class']).toBe('DEEP_ARCHIVE');
    expect(puts[0]!.headers['content-type']).toBe('application/x-pg-dump');
    expect(puts[1]!.headers['x-amz-storage-class']).toBeUndefined();
    expect(puts[2]!.headers['x-amz-storage-class']).toBeUndefined();
    client.destroy();
  });

  it('applies Object Lock retention from retainUntil, with the checksum S3 requires for it', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client, objectLock: { mode: 'COMPLIANCE' }, partSizeBytes: 5 * MiB });
    const retainUntil = new Date(Date.now() + 7 * 86_400_000);
    await storage.put('set_1/small.bin', bodyOf('x'), { retainUntil });
    await storage.put('set_1/large.bin', bodyOf(randomBytes(6 * MiB)), { retainUntil });
    await storage.put('set_1/unlocked.bin', bodyOf('y'));
    await storage.put('set_1/past.bin', bodyOf('z'), { retainUntil: new Date(Date.now() - 1000) });
    const put = requests.filter((r) => r.command === 'PutObject');
    expect(put[0]!.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
    expect(new Date(put[0]!.headers['x-amz-object-lock-retain-until-date']!).getTime()).toBe(retainUntil.getTime());
    expect(put[0]!.headers['x-amz-checksum-crc32']).toBeTruthy();
    const create = requests.find((r) => r.command === 'CreateMultipartUpload')!;
    expect(create.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
    expect(create.headers['x-amz-checksum-algorithm']).toBe('CRC32');
    for (const part of requests.filter((r) => r.command === 'UploadPart')) expect(part.headers['x-amz-checksum-crc32']).toBeTruthy();
    expect(put[1]!.headers['x-amz-object-lock-mode']).toBeUndefined();
    expect(put[2]!.headers['x-amz-object-lock-mode']).toBeUndefined();
    // s3rver ignores the lock but stores the bytes: the checksummed upload is intact.
    expect((await readAll(await storage.get('set_1/small.bin'))).toString()).toBe('x');
    client.destroy();
  });

  it('without objectLock configured, retainUntil is ignored', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client });
    await storage.put('a.bin', bodyOf('x'), { retainUntil: new Date(Date.now() + 86_400_000) });
    expect(requests.find((r) => r.command === 'PutObject')!.headers['x-amz-object-lock-mode']).toBeUndefined();
    client.destroy();
  });
});

describe('get', () => {
  it('an abort mid-stream ends the stream with ABORTED', async () => {
    const storage = storageOn(s3);
    await storage.put('big.bin', bodyOf(randomBytes(4 * MiB)));
    const controller = new AbortController();
    const stream = await storage.get('big.bin', { signal: controller.signal });
    let received = 0;
    const error = await (async () => {
      for await (const chunk of stream) {
        received += (chunk as Buffer).length;
        if (received > 64 * 1024) controller.abort(new Error('enough'));
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(BackupError.isInstance(error) && error.code).toBe('ABORTED');
    expect(received).toBeLessThan(4 * MiB);
    await storage.close();
  });

  it('an already aborted signal rejects before any request', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client });
    const controller = new AbortController();
    controller.abort();
    await expect(storage.get('x', { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(requests).toEqual([]);
    client.destroy();
  });
});

describe('deleteMany', () => {
  it(`deletes more than ${DELETE_BATCH_SIZE} keys in batches of ${DELETE_BATCH_SIZE}`, async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client });
    // Spread over directories: s3rver rescans an object's directory on every delete.
    const keys = Array.from({ length: DELETE_BATCH_SIZE + 5 }, (_, i) => `many/${i % 40}/${String(i).padStart(5, '0')}`);
    // Seeded straight through the SDK, 32 at a time: 1005 storage puts would be slow for no gain.
    for (let i = 0; i < keys.length; i += 32) {
      await Promise.all(keys.slice(i, i + 32).map((k) => raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${storage.prefix}/${k}`, Body: 'x' }))));
    }
    await storage.put('many-keep', bodyOf('keep'));
    const result = await storage.deleteMany([...keys, keys[0]!]);
    expect(result.failed).toEqual([]);
    expect(result.deleted.sort()).toEqual([...keys].sort());
    const batches = requests.filter((r) => r.command === 'DeleteObjects');
    expect(batches).toHaveLength(2);
    expect((await storage.list('')).map((e) => e.key)).toEqual(['many-keep']);
    client.destroy();
  });

  it('reports keys the service refuses (object lock) and deletes the rest', async () => {
    const storage = storageOn(s3, { objectLock: { mode: 'GOVERNANCE' }, deleteAllVersions: false });
    for (const k of ['s/a', 's/b', 's/c']) await storage.put(k, bodyOf(k));
    s3.lockObject(`${storage.prefix}/s/b`);
    try {
      const result = await storage.deleteMany(['s/a', 's/b', 's/c']);
      expect(result.deleted.sort()).toEqual(['s/a', 's/c']);
      expect(result.failed).toEqual([{ key: 's/b', error: expect.stringContaining('AccessDenied') }]);
      expect(result.failed[0]!.error).toMatch(/Object Lock/);
      expect((await storage.list('')).map((e) => e.key)).toEqual(['s/b']);
      const single = await storage.delete('s/b').catch((e: unknown) => e);
      expect(BackupError.isInstance(single) && single.code).toBe('AUTH_FAILED');
      expect((single as BackupError).message).toMatch(/Object Lock/);
    } finally {
      s3.unlockObject(`${storage.prefix}/s/b`);
    }
  });

  it('with deleteAllVersions, deletes every version and reports locked versions', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client, deleteAllVersions: true });
    for (const k of ['v/a', 'v/b', 'v/c', 'other/d']) await storage.put(k, bodyOf(k));
    s3.lockObject(`${storage.prefix}/v/c`);
    try {
      const result = await storage.deleteMany(['v/a', 'v/c', 'v/missing']);
      expect(result.deleted.sort()).toEqual(['v/a', 'v/missing']);
      expect(result.failed).toEqual([{ key: 'v/c', error: expect.stringMatching(/version null: AccessDenied/) }]);
      expect((await storage.list('')).map((e) => e.key).sort()).toEqual(['other/d', 'v/b', 'v/c']);
      const listVersions = requests.filter((r) => r.command === 'ListObjectVersions');
      expect(listVersions).toHaveLength(1);
      expect(listVersions[0]!.query.prefix).toBe(`${storage.prefix}/v/`);
      await storage.delete('v/b');
      expect((await storage.list('v/')).map((e) => e.key)).toEqual(['v/c']);
    } finally {
      s3.unlockObject(`${storage.prefix}/v/c`);
      client.destroy();
    }
  });

  it('validates every key before deleting anything', async () => {
    const storage = storageOn(s3);
    await storage.put('keep', bodyOf('x'));
    await expect(storage.deleteMany(['keep', '../escape'])).rejects.toMatchObject({ code: 'INVALID_KEY' });
    expect((await storage.list('')).map((e) => e.key)).toEqual(['keep']);
    await storage.close();
  });
});

describe('createExclusive', () => {
  it('is not offered where conditional writes are off (B2 ignores If-None-Match)', () => {
    expect(storageOn(s3, { conditionalWrites: false }).createExclusive).toBeUndefined();
    expect(
      createS3Storage({ bucket: 'backups', provider: 'b2', endpoint: 'https://s3.us-west-004.backblazeb2.com', credentials: s3.credentials }).createExclusive,
    ).toBeUndefined();
    expect(storageOn(s3).createExclusive).toBeTypeOf('function');
  });

  it('sends If-None-Match: * and reads back the winner', async () => {
    const { client, requests } = recordingClient(s3);
    const storage = storageOn(s3, { client });
    expect(await storage.createExclusive!('.scholaria-backup/locks/run.lock', Buffer.from('me'))).toBe(true);
    expect(await storage.createExclusive!('.scholaria-backup/locks/run.lock', Buffer.from('you'))).toBe(false);
    expect(requests.filter((r) => r.command === 'PutObject').every((r) => r.headers['if-none-match'] === '*')).toBe(true);
    const got = await raw.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${storage.prefix}/.scholaria-backup/locks/run.lock` }));
    expect(await got.Body!.transformToString()).toBe('me');
    client.destroy();
  });
});

describe('close', () => {
  it('destroys its own client but leaves a caller\'s client usable', async () => {
    const client = new S3Client(s3.clientConfig);
    const storage = storageOn(s3, { client });
    await storage.put('c', bodyOf('c'));
    await storage.close();
    expect((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${storage.prefix}/` }))).KeyCount).toBe(1);
    client.destroy();

    const own = storageOn(s3);
    await own.put('d', bodyOf('d'));
    await own.close();
    // A closed storage builds a fresh client if used again rather than failing obscurely.
    expect((await own.list('')).map((e) => e.key)).toEqual(['d']);
    await own.close();
  });
});
