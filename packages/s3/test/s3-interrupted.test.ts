import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { BackupError, isAbortError } from '@scholaria/backup-core';
import type { S3TestServer } from '@scholaria/backup-testkit';
import { describe, expect, it } from 'vitest';
import { controlledBody, MiB, recordingClient, storageOn, useS3Server, waitFor } from './helpers.js';

let s3: S3TestServer;
let raw: S3Client;
useS3Server((server, client) => {
  s3 = server;
  raw = client;
});

/** Open multipart uploads under `prefix`, seen three ways: the S3 API, the data dir, part files. */
async function openUploads(prefix: string): Promise<{ viaApi: number; onDisk: number; partFiles: number }> {
  const listed = await raw.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }));
  const onDisk = (await s3.listMultipartUploads()).filter((u) => u.key.startsWith(prefix));
  const uploadsDir = join(s3.directory, s3.bucket, '._S3rver_uploads');
  const partFiles = onDisk.reduce(
    (n, u) => n + (existsSync(join(uploadsDir, u.uploadId)) ? readdirSync(join(uploadsDir, u.uploadId)).filter((f) => /^\d+$/.test(f)).length : 0),
    0,
  );
  return { viaApi: listed.Uploads?.length ?? 0, onDisk: onDisk.length, partFiles };
}

async function objectExists(key: string): Promise<boolean> {
  try {
    await raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a put of a body fed by hand and waits until S3 holds an open multipart upload with at
 * least two stored parts, so the interruption really happens in the middle of a multipart upload.
 */
async function startMultipartPut(options: { signal?: AbortSignal } = {}) {
  const { client, requests } = recordingClient(s3);
  const storage = storageOn(s3, { client, partSizeBytes: 5 * MiB, queueSize: 2 });
  const prefix = `${storage.prefix}/`;
  const body = controlledBody();
  const putting = storage.put('set/postgres/db.dump', body.stream, options);
  putting.catch(() => undefined);
  for (let i = 0; i < 12; i++) await body.feed(randomBytes(MiB));
  await waitFor(async () => (await openUploads(prefix)).partFiles >= 2, 'two uploaded parts');
  const fullKey = `${prefix}set/postgres/db.dump`;
  return { storage, client, requests, body, putting, fullKey, prefix };
}

describe('an interrupted upload leaves nothing behind', () => {
  it('a source stream that errors mid-way: rejects with that error, no object, no open multipart upload', async () => {
    const { body, putting, fullKey, requests, client, prefix } = await startMultipartPut();
    expect((await openUploads(prefix)).viaApi).toBe(1);

    body.fail(new Error('pg_dump exited with code 1'));
    const error = await putting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(BackupError.isInstance(error)).toBe(true);
    expect((error as BackupError).message).toContain('pg_dump exited with code 1');
    expect((error as BackupError).message).toContain('set/postgres/db.dump');

    expect(requests.some((r) => r.command === 'AbortMultipartUpload')).toBe(true);
    expect(requests.some((r) => r.command === 'CompleteMultipartUpload')).toBe(false);
    expect(await openUploads(prefix)).toEqual({ viaApi: 0, onDisk: 0, partFiles: 0 });
    expect(await objectExists(fullKey)).toBe(false);
    client.destroy();
  });

  it('an AbortSignal: rejects with ABORTED, no object, no open multipart upload', async () => {
    const controller = new AbortController();
    const { putting, fullKey, requests, client, prefix } = await startMultipartPut({ signal: controller.signal });
    controller.abort(new Error('SIGTERM'));
    const error = await putting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAbortError(error)).toBe(true);
    expect((error as BackupError).code).toBe('ABORTED');
    expect((error as BackupError).message).toContain('SIGTERM');
    expect(requests.some((r) => r.command === 'AbortMultipartUpload')).toBe(true);
    expect(await openUploads(prefix)).toEqual({ viaApi: 0, onDisk: 0, partFiles: 0 });
    expect(await objectExists(fullKey)).toBe(false);
    client.destroy();
  });

  it('still aborts the multipart upload when the first abort request fails', async () => {
    // The first AbortMultipartUpload fails before reaching the server with an error the SDK does
    // not retry; the storage must try again and abort the upload.
    const { client, requests } = recordingClient(s3, (command, attempt) =>
      command === 'AbortMultipartUpload' && attempt === 1 ? Object.assign(new Error('injected: proxy said no'), { name: 'BadRequest' }) : undefined,
    );
    const storage = storageOn(s3, { client, partSizeBytes: 5 * MiB, queueSize: 1 });
    const prefix = `${storage.prefix}/`;
    const body = controlledBody();
    const putting = storage.put('set/redis/dump.rdb', body.stream);
    putting.catch(() => undefined);
    for (let i = 0; i < 12; i++) await body.feed(randomBytes(MiB));
    await waitFor(async () => (await openUploads(prefix)).partFiles >= 1, 'an uploaded part');
    body.fail(new Error('redis connection lost'));
    await expect(putting).rejects.toThrow(/redis connection lost/);
    expect(requests.filter((r) => r.command === 'AbortMultipartUpload').length).toBeGreaterThanOrEqual(2);
    expect(await openUploads(prefix)).toEqual({ viaApi: 0, onDisk: 0, partFiles: 0 });
    client.destroy();
  });

  it('an upload whose parts never started leaves nothing either', async () => {
    const storage = storageOn(s3, { partSizeBytes: 5 * MiB });
    const body = controlledBody();
    const putting = storage.put('small.bin', body.stream);
    await body.feed(randomBytes(64 * 1024));
    body.fail(new Error('early failure'));
    await expect(putting).rejects.toThrow(/early failure/);
    expect(await storage.list('')).toEqual([]);
    expect(await openUploads(`${storage.prefix}/`)).toEqual({ viaApi: 0, onDisk: 0, partFiles: 0 });
    await storage.close();
  });
});
