import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { S3TestServer } from '@scholaria/backup-testkit';
import { createS3LeaderElector } from '@scholaria/backup-s3';
import { BackupError } from '@scholaria/backup-core';
import { useS3Server } from './helpers.js';

// The S3 lease against s3rver (with the testkit's conditional-write handling, which follows S3's
// documented If-None-Match / If-Match semantics).

let s3: S3TestServer;
let client: S3Client;
useS3Server((server, plain) => {
  s3 = server;
  client = plain;
});

const storage = (prefix: string) => ({ bucket: s3.bucket, prefix, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' as const });
const who = (n: number) => ({ owner: `host-${n}:${n}:abcd`, host: `host-${n}`, pid: n });
const status = async (p: Promise<unknown>) => p.then(() => 200, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);

describe('testkit S3: conditional PutObject', () => {
  it('If-None-Match: * creates once (412 after); If-Match writes only over the ETag given (412), and a missing key is 404', async () => {
    const Key = 'cond/object.json';
    const first = await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'one', IfNoneMatch: '*' }));
    expect(await status(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'two', IfNoneMatch: '*' })))).toBe(412);
    expect(await status(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'two', IfMatch: '"0123456789abcdef0123456789abcdef"' })))).toBe(412);
    const second = await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'two', IfMatch: first.ETag }));
    expect(second.ETag).not.toBe(first.ETag);
    // The old ETag no longer matches.
    expect(await status(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'three', IfMatch: first.ETag })))).toBe(412);
    expect(await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key }))).Body!.transformToString()).toBe('two');
    expect(await status(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'cond/missing.json', Body: 'x', IfMatch: first.ETag })))).toBe(404);
  });
});

describe('createS3LeaderElector', () => {
  it('one holder at a time; a follower takes over only after the ETag stayed unchanged for a TTL of its own clock', async () => {
    let clockB = 0;
    const a = createS3LeaderElector({ storage: storage('lease1'), name: 'sched', ttlMs: 10_000 });
    const b = createS3LeaderElector({ storage: storage('lease1'), name: 'sched', ttlMs: 10_000, now: () => clockB });
    const leaseA = await a.acquire(who(1));
    expect(leaseA?.holder.owner).toBe('host-1:1:abcd');
    expect(await b.acquire(who(2))).toBeUndefined();
    expect(await b.holder()).toMatchObject({ owner: 'host-1:1:abcd', host: 'host-1', pid: 1 });
    // A renews: B's observation starts over, so B still waits.
    expect(await leaseA!.renew()).toBe(true);
    clockB = 9_000;
    expect(await b.acquire(who(2))).toBeUndefined();
    clockB = 18_000;
    expect(await b.acquire(who(2))).toBeUndefined(); // seen for 9 s only
    clockB = 20_000;
    const leaseB = await b.acquire(who(2));
    expect(leaseB?.holder.owner).toBe('host-2:2:abcd');
    // A's next renewal is refused (If-Match on its old ETag): it has lost the lease.
    expect(await leaseA!.renew()).toBe(false);
    await leaseA!.release();
    expect(await a.holder()).toMatchObject({ owner: 'host-2:2:abcd' });
    expect(await leaseB!.renew()).toBe(true);
    const body = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'lease1/.scholaria-backup/leader/sched.json' }))).Body!.transformToString());
    expect(body).toMatchObject({ formatVersion: 1, name: 'sched', owner: 'host-2:2:abcd', ttlMs: 10_000 });
    await a.close?.();
    await b.close?.();
  });

  it('a released lease is free at once', async () => {
    const a = createS3LeaderElector({ storage: storage('lease2'), name: 'sched', ttlMs: 60_000 });
    const b = createS3LeaderElector({ storage: storage('lease2'), name: 'sched', ttlMs: 60_000 });
    const leaseA = await a.acquire(who(1));
    expect(leaseA).toBeDefined();
    expect(await b.acquire(who(2))).toBeUndefined();
    await leaseA!.release();
    expect(await b.holder()).toBeUndefined();
    expect((await b.acquire(who(2)))?.holder.pid).toBe(2);
  });

  it('two replicas racing for a free lease: exactly one wins', async () => {
    const electors = [1, 2, 3, 4].map(() => createS3LeaderElector({ storage: storage('lease3'), name: 'sched', ttlMs: 60_000 }));
    const leases = await Promise.all(electors.map((e, i) => e.acquire(who(i + 1))));
    expect(leases.filter(Boolean)).toHaveLength(1);
  });

  it('refuses a service without conditional writes (conditionalWrites off, as for b2)', () => {
    let error: unknown;
    try {
      createS3LeaderElector({ storage: { ...storage('x'), conditionalWrites: false }, name: 'x' });
    } catch (e) {
      error = e;
    }
    expect(BackupError.isInstance(error) && (error as BackupError).code).toBe('CONFIG_INVALID');
    expect(String((error as Error).message)).toMatch(/conditional writes/);
  });
});
