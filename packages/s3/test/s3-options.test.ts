import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { BackupError, ConfigError } from '@scholaria/backup-core';
import {
  choosePartSize,
  createS3Storage,
  DEFAULT_PART_SIZE,
  MAX_OBJECT_SIZE,
  MAX_PARTS,
  parseS3StorageOptions,
  s3StorageOptionsSchema,
} from '@scholaria/backup-s3';
import { describe, expect, it } from 'vitest';

const MiB = 1024 * 1024;
const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(BackupError.isInstance(error)).toBe(true);
    expect((error as BackupError).code).toBe('CONFIG_INVALID');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('options validation', () => {
  it('accepts the minimal AWS options and names the storage without secrets', () => {
    const storage = createS3Storage({ bucket: 'backups', region: 'eu-central-1', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET } });
    expect(storage.specVersion).toBe('v1');
    expect(storage.name).toBe('s3://backups');
    expect(storage.name).not.toContain('AKIA');
  });

  it('normalises the prefix into the name', () => {
    expect(createS3Storage({ bucket: 'backups', region: 'us-east-1', prefix: '/scholaria/prod/' }).name).toBe('s3://backups/scholaria/prod');
    expect(createS3Storage({ bucket: 'backups', region: 'us-east-1', prefix: '' }).prefix).toBe('');
  });

  it.each([
    [{}, 'bucket'],
    [{ bucket: 'a/b' }, 'bucket'],
    [{ bucket: 'backups', prefix: 'a/../b' }, 'prefix'],
    [{ bucket: 'backups', prefix: 'a//b' }, 'prefix'],
    [{ bucket: 'backups', kmsKeyId: 'key-1' }, 'kmsKeyId'],
    [{ bucket: 'backups', serverSideEncryption: 'aws:kms', kmsKeyId: '' }, 'kmsKeyId'],
    [{ bucket: 'backups', serverSideEncryption: 'DES' }, 'serverSideEncryption'],
    [{ bucket: 'backups', storageClass: 'COLD' }, 'storageClass'],
    [{ bucket: 'backups', provider: 'r2' }, 'endpoint'],
    [{ bucket: 'backups', provider: 'minio' }, 'endpoint'],
    [{ bucket: 'backups', provider: 'b2', endpoint: 'https://b2.example.net' }, 'region'],
    [{ bucket: 'backups', provider: 'wasabi' }, 'provider'],
    [{ bucket: 'backups', endpoint: 'not a url' }, 'endpoint'],
    [{ bucket: 'backups', endpoint: 'ftp://example.net' }, 'endpoint'],
    [{ bucket: 'backups', partSizeBytes: 4 * MiB }, 'partSizeBytes'],
    [{ bucket: 'backups', partSizeBytes: 6 * 1024 * MiB }, 'partSizeBytes'],
    [{ bucket: 'backups', queueSize: 0 }, 'queueSize'],
    [{ bucket: 'backups', objectLock: { mode: 'FOREVER' } }, 'objectLock.mode'],
    [{ bucket: 'backups', maxAttempts: 0 }, 'maxAttempts'],
    [{ bucket: 'backups', listPageSize: 5000 }, 'listPageSize'],
    [{ bucket: 'backups', credentials: { accessKeyId: 'AKIA' } }, 'credentials'],
    [{ bucket: 'backups', buckett: 'typo' }, '(options)'],
  ])('rejects %j naming %s', (options, field) => {
    const error = configError(() => createS3Storage(options as never));
    expect(error.issues.some((issue) => issue.startsWith(`${field}:`) || (field === '(options)' && issue.includes('buckett'))), error.message).toBe(true);
    expect(error.hint).toBeTruthy();
  });

  it('refuses connection options next to a ready client instead of ignoring them', () => {
    const client = new S3Client({ region: 'us-east-1' });
    const error = configError(() => createS3Storage({ bucket: 'backups', client, endpoint: 'http://127.0.0.1:9000', forcePathStyle: true }));
    expect(error.issues.map((i) => i.split(':')[0]).sort()).toEqual(['endpoint', 'forcePathStyle']);
    client.destroy();
  });

  it('never puts a credential into the error', () => {
    const error = configError(() =>
      createS3Storage({ bucket: 'backups', endpoint: `https://AKIAEXAMPLE:${SECRET}@s3.example.net`, credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET, sessionToken: '' } }),
    );
    const text = `${error.message}\n${error.hint}\n${JSON.stringify(error)}`;
    expect(text).not.toContain(SECRET);
    expect(error.issues.some((i) => i.startsWith('endpoint:') && i.includes('credentials'))).toBe(true);
  });

  it('exports the zod schema', () => {
    expect(s3StorageOptionsSchema.safeParse({ bucket: 'backups' }).success).toBe(true);
    expect(s3StorageOptionsSchema.safeParse({ bucket: 'x' }).success).toBe(false);
  });
});

describe('provider presets', () => {
  it('aws: virtual-hosted style, flexible checksums, region from the SDK chain when unset', () => {
    const o = parseS3StorageOptions({ bucket: 'backups', provider: 'aws' });
    expect(o).toMatchObject({ forcePathStyle: false, checksumMode: 'WHEN_SUPPORTED', deleteAllVersions: false, conditionalWrites: true });
    expect(o.region).toBeUndefined();
  });

  it('minio: path style and us-east-1', () => {
    expect(parseS3StorageOptions({ bucket: 'backups', provider: 'minio', endpoint: 'http://127.0.0.1:9000' })).toMatchObject({
      forcePathStyle: true,
      region: 'us-east-1',
      checksumMode: 'WHEN_SUPPORTED',
    });
  });

  it('r2: region auto, checksums only when required', () => {
    expect(parseS3StorageOptions({ bucket: 'backups', provider: 'r2', endpoint: 'https://0123abcd.r2.cloudflarestorage.com' })).toMatchObject({
      region: 'auto',
      forcePathStyle: false,
      checksumMode: 'WHEN_REQUIRED',
    });
  });

  it('b2: region from the endpoint, checksums only when required, deletes remove every version', () => {
    expect(parseS3StorageOptions({ bucket: 'backups', provider: 'b2', endpoint: 'https://s3.us-west-004.backblazeb2.com' })).toMatchObject({
      region: 'us-west-004',
      checksumMode: 'WHEN_REQUIRED',
      deleteAllVersions: true,
      conditionalWrites: false,
    });
  });

  it('an endpoint without a provider gets the settings most S3-compatible servers accept', () => {
    expect(parseS3StorageOptions({ bucket: 'backups', endpoint: 'http://127.0.0.1:4568' })).toMatchObject({
      region: 'us-east-1',
      forcePathStyle: true,
      checksumMode: 'WHEN_REQUIRED',
    });
  });

  it('object lock turns on version-aware deletes; explicit options beat presets', () => {
    expect(parseS3StorageOptions({ bucket: 'backups', region: 'eu-west-1', objectLock: { mode: 'COMPLIANCE' } }).deleteAllVersions).toBe(true);
    expect(
      parseS3StorageOptions({
        bucket: 'backups',
        provider: 'r2',
        endpoint: 'https://0123abcd.r2.cloudflarestorage.com',
        region: 'weur',
        forcePathStyle: true,
        checksumMode: 'WHEN_SUPPORTED',
      }),
    ).toMatchObject({ region: 'weur', forcePathStyle: true, checksumMode: 'WHEN_SUPPORTED' });
  });

  it('has the documented defaults', () => {
    expect(parseS3StorageOptions({ bucket: 'backups' })).toMatchObject({
      partSizeBytes: 8 * MiB,
      queueSize: 4,
      maxAttempts: 5,
      connectionTimeoutMs: 10_000,
      socketTimeoutMs: 120_000,
      listPageSize: 1000,
      prefix: '',
    });
  });
});

describe('part sizing', () => {
  it('keeps the configured size when the object fits', () => {
    expect(choosePartSize(DEFAULT_PART_SIZE)).toBe(DEFAULT_PART_SIZE);
    expect(choosePartSize(DEFAULT_PART_SIZE, 100 * MiB)).toBe(DEFAULT_PART_SIZE);
    expect(choosePartSize(DEFAULT_PART_SIZE, DEFAULT_PART_SIZE * MAX_PARTS)).toBe(DEFAULT_PART_SIZE);
  });

  it('raises the part size so a 5 TiB object fits in 10,000 parts', () => {
    const part = choosePartSize(DEFAULT_PART_SIZE, MAX_OBJECT_SIZE);
    expect(part % MiB).toBe(0);
    expect(Math.ceil(MAX_OBJECT_SIZE / part)).toBeLessThanOrEqual(MAX_PARTS);
    expect(part).toBe(525 * MiB);
    const justOver = DEFAULT_PART_SIZE * MAX_PARTS + 1;
    expect(Math.ceil(justOver / choosePartSize(DEFAULT_PART_SIZE, justOver))).toBeLessThanOrEqual(MAX_PARTS);
  });

  it('refuses objects over 5 TiB and nonsense sizes', () => {
    expect(() => choosePartSize(DEFAULT_PART_SIZE, MAX_OBJECT_SIZE + 1)).toThrow(/5 TiB/);
    expect(() => choosePartSize(DEFAULT_PART_SIZE, -1)).toThrow(BackupError);
  });
});

describe('factory', () => {
  it('does no I/O: nothing connects until an operation runs', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const storage = createS3Storage({ bucket: 'backups', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
      await sleep(200);
      expect(sockets).toHaveLength(0);
      // The same storage does connect once asked to, so the listener above would have seen it.
      await expect(storage.list('')).rejects.toBeInstanceOf(Error);
      expect(sockets.length).toBeGreaterThan(0);
      await storage.close();
    } finally {
      server.close();
    }
  });
});
