import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';
import { BackupError, type Storage, type StorageEntry, type StoragePutOptions } from '@scholaria/backup-core';
import { requestChecksumCalculation, StreamUploadError, uploadStream, type StreamUploadParams } from './multipart-upload.js';
import { choosePartSize, maxObjectBytes } from './part-size.js';
import { withRetry, backoffDelay } from './retry.js';
import {
  abortedError,
  httpStatusOf,
  isNotFound,
  isTransientS3Error,
  notFound,
  s3ErrorCode,
  s3Failure,
  type S3ErrorContext,
} from './s3-errors.js';
import { newS3Client } from './s3-client.js';
import { toObjectKey, validateKey, validatePrefix } from './s3-keys.js';
import { parseS3StorageOptions, type ResolvedS3StorageOptions, type S3StorageOptions } from './s3-storage-options.js';

/** DeleteObjects takes at most this many keys per request. */
export const DELETE_BATCH_SIZE = 1000;

export interface S3Storage extends Storage {
  readonly bucket: string;
  /** Normalised key prefix inside the bucket ('' for the bucket root). */
  readonly prefix: string;
  deleteMany(keys: string[]): Promise<{ deleted: string[]; failed: { key: string; error: string }[] }>;
  stat(key: string): Promise<StorageEntry | undefined>;
  /** Only with `conditionalWrites`: `If-None-Match: *` put; the engine's lock does not use it. */
  createExclusive?(key: string, body: Buffer): Promise<boolean>;
  close(): Promise<void>;
}

/** Keys the engine reads to list, verify and lock sets; kept in the bucket's default class. */
function isMetadataKey(key: string): boolean {
  return key.startsWith('.scholaria-backup/') || key.endsWith('/manifest.json') || key === 'manifest.json' || key.endsWith('/SHA256SUMS') || key === 'SHA256SUMS';
}

function longestCommonPrefix(values: string[]): string {
  if (values.length === 0) return '';
  let prefix = values[0]!;
  for (const v of values) {
    let i = 0;
    while (i < prefix.length && i < v.length && prefix[i] === v[i]) i++;
    prefix = prefix.slice(0, i);
    if (!prefix) break;
  }
  return prefix;
}

/**
 * Storage on AWS S3 or an S3-compatible service (MinIO, Cloudflare R2, Backblaze B2, ...).
 * Uploads stream through multipart uploads from a reused pool of part buffers
 * (multipart-upload.ts: about (queueSize + 1) x partSize per put); a failed or aborted put
 * aborts its multipart upload, so neither an object nor orphaned parts remain. The factory does no I/O: the client
 * is created on first use.
 */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  const o: ResolvedS3StorageOptions = parseS3StorageOptions(options);
  const bucket = o.bucket;
  const storagePrefix = o.prefix;
  const name = `s3://${bucket}${storagePrefix ? `/${storagePrefix}` : ''}`;
  const endpoint = o.endpoint ?? (o.client ? 'the S3 client\'s endpoint' : `AWS S3${o.region ? ` (${o.region})` : ''}`);
  const ownsClient = o.client === undefined;
  let client: S3Client | undefined = o.client;
  let bucketSeen = false;

  const getClient = (): S3Client => {
    client ??= newS3Client(o, { maxAttempts: o.maxAttempts, connectionTimeoutMs: o.connectionTimeoutMs, socketTimeoutMs: o.socketTimeoutMs });
    return client;
  };

  const ctxFor = (op: string, key?: string): S3ErrorContext => ({ storage: name, bucket, op, key, endpoint });
  const objectKey = (key: string) => toObjectKey(storagePrefix, validateKey(key));
  const listRoot = storagePrefix ? `${storagePrefix}/` : '';
  const relative = (fullKey: string) => fullKey.slice(listRoot.length);

  const lockHint = o.objectLock
    ? ' The object may still be under S3 Object Lock retention; it can be deleted after its retain-until date.'
    : '';

  async function abortMultipart(fullKey: string, uploadId: string): Promise<void> {
    await withRetry(
      async () => {
        try {
          await getClient().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: fullKey, UploadId: uploadId }));
        } catch (error) {
          if (s3ErrorCode(error) === 'NoSuchUpload') return;
          throw error;
        }
      },
      { attempts: o.maxAttempts, isRetryable: isTransientS3Error },
    );
  }

  /**
   * Aborts a failed upload's multipart upload, so no parts keep costing money. Transient errors
   * are retried; after any other failure (a proxy refusing once, credentials refreshed since)
   * one more abort is tried before the parts are reported as possibly left behind.
   */
  async function abortUpload(fullKey: string, uploadId: string): Promise<void> {
    try {
      await abortMultipart(fullKey, uploadId);
    } catch {
      await abortMultipart(fullKey, uploadId);
    }
  }

  async function put(key: string, body: Readable, putOptions: StoragePutOptions = {}): Promise<{ size: number }> {
    const fullKey = objectKey(key);
    const ctx = ctxFor('put', key);
    const { signal } = putOptions;
    const partSize = choosePartSize(o.partSizeBytes, putOptions.size);
    if (signal?.aborted) {
      body.destroy();
      throw abortedError(ctx, signal);
    }

    const retainUntil = putOptions.retainUntil;
    const lock = o.objectLock && retainUntil && retainUntil.getTime() > Date.now() ? o.objectLock : undefined;
    const params: StreamUploadParams = {
      Bucket: bucket,
      Key: fullKey,
      ContentType: putOptions.contentType ?? 'application/octet-stream',
      ...(o.serverSideEncryption ? { ServerSideEncryption: o.serverSideEncryption } : {}),
      ...(o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}),
      ...(o.storageClass && !isMetadataKey(key) ? { StorageClass: o.storageClass } : {}),
      ...(lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: retainUntil } : {}),
      // S3 refuses Object Lock uploads without a checksum; WHEN_REQUIRED alone would not send one.
      ...(o.checksumAlgorithm
        ? { ChecksumAlgorithm: o.checksumAlgorithm }
        : lock && (await requestChecksumCalculation(getClient())) === 'WHEN_REQUIRED'
          ? { ChecksumAlgorithm: 'CRC32' as const }
          : {}),
    };

    let size: number;
    try {
      ({ size } = await uploadStream(body, {
        client: getClient(),
        params,
        partSize,
        queueSize: o.queueSize,
        signal,
        abortUpload: (uploadId) => abortUpload(fullKey, uploadId),
      }));
    } catch (error) {
      if (signal?.aborted) throw abortedError(ctx, signal);
      const failed = error instanceof StreamUploadError ? error : new StreamUploadError('service', error);
      const cause = failed.cause;
      const failure =
        failed.reason === 'input'
          ? BackupError.isInstance(cause)
            ? cause
            : new BackupError(
                'STORAGE_FAILED',
                `${name}: put "${key}" failed because its input stream failed: ${cause instanceof Error ? cause.message : String(cause)}`,
                { cause, component: name, hint: 'the data being stored broke off; see the cause (the source, a codec or the pipeline)', details: { bucket, op: 'put', key } },
              )
          : failed.reason === 'part-limit'
            ? new BackupError(
                'STORAGE_FAILED',
                `${name}: put "${key}" failed: the object is larger than ${maxObjectBytes(partSize)} bytes (10,000 parts of ${partSize} bytes)`,
                { cause, component: name, hint: 'pass `size` to put so parts are sized to fit, or raise `partSizeBytes`', details: { bucket, op: 'put', key } },
              )
            : s3Failure(cause, ctx);
      if (failed.abortProblem) {
        throw new BackupError(failure.code, failure.message, {
          cause: failure.cause ?? failure,
          retryable: failure.retryable,
          component: name,
          hint: `${failure.hint ?? ''} The multipart upload could not be aborted (${failed.abortProblem}); its parts may remain until a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them.`.trim(),
          details: { ...failure.details, orphanedUpload: true },
        });
      }
      throw failure;
    }
    if (signal?.aborted) {
      // Aborted after the last byte was sent: the object exists, but the caller gave up on it.
      await deleteObject(fullKey, key).catch(() => undefined);
      throw abortedError(ctx, signal);
    }
    return { size };
  }

  async function openObject(fullKey: string, key: string, signal: AbortSignal | undefined, range?: { offset: number; etag?: string }) {
    try {
      return await getClient().send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: fullKey,
          ...(range ? { Range: `bytes=${range.offset}-`, ...(range.etag ? { IfMatch: range.etag } : {}) } : {}),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (signal?.aborted) throw abortedError(ctxFor('get', key), signal);
      if (isNotFound(error)) throw notFound(ctxFor('get', key), error);
      throw s3Failure(error, ctxFor('get', key));
    }
  }

  /**
   * Streams the object; when the connection breaks mid-way it resumes with a Range request
   * pinned to the same ETag, so a long download survives a network blip.
   */
  async function* resumableBody(first: GetObjectCommandOutput, fullKey: string, key: string, signal?: AbortSignal) {
    let response = first;
    let offset = 0;
    let failures = 0;
    const total = first.ContentLength;
    const etag = first.ETag;
    for (;;) {
      const body = response.Body as Readable;
      try {
        for await (const chunk of body) {
          offset += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (total === undefined || offset >= total) return;
        throw Object.assign(new Error(`connection closed after ${offset} of ${total} bytes`), { code: 'ECONNRESET' });
      } catch (error) {
        if (signal?.aborted) throw abortedError(ctxFor('get', key), signal);
        failures++;
        if (!isTransientS3Error(error) || failures >= o.maxAttempts || total === undefined) {
          throw s3Failure(error, ctxFor('get', key));
        }
      } finally {
        body.destroy();
      }
      await sleep(backoffDelay(failures), undefined, { signal }).catch(() => {
        throw abortedError(ctxFor('get', key), signal);
      });
      response = await openObject(fullKey, key, signal, { offset, etag });
    }
  }

  async function get(key: string, getOptions: { signal?: AbortSignal } = {}): Promise<Readable> {
    const fullKey = objectKey(key);
    const { signal } = getOptions;
    if (signal?.aborted) throw abortedError(ctxFor('get', key), signal);
    const response = await openObject(fullKey, key, signal);
    const stream = Readable.from(resumableBody(response, fullKey, key, signal), { objectMode: false });
    if (signal) {
      const onAbort = () => stream.destroy(abortedError(ctxFor('get', key), signal));
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async function list(prefix: string, listOptions: { signal?: AbortSignal } = {}): Promise<StorageEntry[]> {
    validatePrefix(prefix);
    const { signal } = listOptions;
    const fullPrefix = `${listRoot}${prefix}`;
    const entries: StorageEntry[] = [];
    let token: string | undefined;
    do {
      if (signal?.aborted) throw abortedError(ctxFor('list', prefix), signal);
      let page;
      try {
        page = await getClient().send(
          new ListObjectsV2Command({
            Bucket: bucket,
            ...(fullPrefix ? { Prefix: fullPrefix } : {}),
            MaxKeys: o.listPageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        if (signal?.aborted) throw abortedError(ctxFor('list', prefix), signal);
        throw s3Failure(error, { ...ctxFor('list'), key: prefix === '' ? undefined : prefix });
      }
      for (const item of page.Contents ?? []) {
        // Console "folder" placeholders end in '/' and are not objects of ours.
        if (!item.Key || !item.Key.startsWith(listRoot) || item.Key.endsWith('/')) continue;
        entries.push({ key: relative(item.Key), size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return entries;
  }

  async function deleteObject(fullKey: string, key: string): Promise<void> {
    try {
      await getClient().send(new DeleteObjectCommand({ Bucket: bucket, Key: fullKey }));
    } catch (error) {
      if (isNotFound(error) && s3ErrorCode(error) !== 'NoSuchBucket') return;
      const failure = s3Failure(error, ctxFor('delete', key));
      if (failure.code === 'AUTH_FAILED' && lockHint) {
        throw new BackupError('AUTH_FAILED', `${failure.message}.${lockHint}`, {
          cause: error,
          component: name,
          hint: failure.hint,
          details: failure.details,
        });
      }
      throw failure;
    }
  }

  /** Deletes identifiers in batches; returns the per-identifier errors S3 reported. */
  async function deleteIdentifiers(ids: ObjectIdentifier[]): Promise<Map<string, string>> {
    const errors = new Map<string, string>();
    for (let i = 0; i < ids.length; i += DELETE_BATCH_SIZE) {
      let pending = ids.slice(i, i + DELETE_BATCH_SIZE);
      // Per-key InternalError/SlowDown come back inside a 200 answer, so the SDK does not retry them.
      for (let attempt = 1; pending.length > 0; attempt++) {
        let result;
        try {
          result = await getClient().send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: pending, Quiet: true } }));
        } catch (error) {
          throw s3Failure(error, ctxFor('deleteMany'));
        }
        const retry: ObjectIdentifier[] = [];
        for (const e of result.Errors ?? []) {
          if (!e.Key) continue;
          const id = pending.find((p) => p.Key === e.Key && (e.VersionId === undefined || p.VersionId === e.VersionId));
          const transient = e.Code !== undefined && isTransientS3Error({ Code: e.Code });
          if (transient && attempt < o.maxAttempts && id) {
            retry.push(id);
            continue;
          }
          const locked = e.Code === 'AccessDenied' && o.objectLock !== undefined;
          const message = `${e.Code ?? 'Error'}: ${e.Message ?? 'refused'}${locked ? ` (${lockHint.trim()})` : ''}`;
          const mapKey = `${e.Key}\u0000${e.VersionId ?? ''}`;
          errors.set(mapKey, message);
        }
        pending = retry;
        if (pending.length > 0) await sleep(backoffDelay(attempt));
      }
    }
    return errors;
  }

  async function deleteMany(keys: string[]): Promise<{ deleted: string[]; failed: { key: string; error: string }[] }> {
    const unique = [...new Set(keys)];
    const fullKeys = new Map(unique.map((k) => [objectKey(k), k] as const));
    if (fullKeys.size === 0) return { deleted: [], failed: [] };

    let ids: ObjectIdentifier[];
    if (o.deleteAllVersions) {
      ids = [];
      const listPrefix = longestCommonPrefix([...fullKeys.keys()]);
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      do {
        let page;
        try {
          page = await getClient().send(
            new ListObjectVersionsCommand({
              Bucket: bucket,
              ...(listPrefix ? { Prefix: listPrefix } : {}),
              ...(keyMarker ? { KeyMarker: keyMarker } : {}),
              ...(versionMarker ? { VersionIdMarker: versionMarker } : {}),
            }),
          );
        } catch (error) {
          throw s3Failure(error, ctxFor('deleteMany'));
        }
        for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
          if (v.Key && fullKeys.has(v.Key)) ids.push({ Key: v.Key, VersionId: v.VersionId });
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
      } while (keyMarker);
    } else {
      ids = [...fullKeys.keys()].map((Key) => ({ Key }));
    }

    const errors = await deleteIdentifiers(ids);
    const failedByKey = new Map<string, string[]>();
    for (const [mapKey, message] of errors) {
      const [fullKey, versionId] = mapKey.split('\u0000') as [string, string];
      const list = failedByKey.get(fullKey) ?? [];
      list.push(versionId && o.deleteAllVersions ? `version ${versionId}: ${message}` : message);
      failedByKey.set(fullKey, list);
    }
    const deleted: string[] = [];
    const failed: { key: string; error: string }[] = [];
    for (const [fullKey, key] of fullKeys) {
      const problems = failedByKey.get(fullKey);
      if (problems) failed.push({ key, error: problems.join('; ') });
      else deleted.push(key);
    }
    return { deleted, failed };
  }

  async function del(key: string): Promise<void> {
    const fullKey = objectKey(key);
    if (!o.deleteAllVersions) return deleteObject(fullKey, key);
    const { failed } = await deleteMany([key]);
    if (failed.length > 0) {
      throw new BackupError('STORAGE_FAILED', `${name}: delete "${key}" failed: ${failed[0]!.error}`, {
        component: name,
        hint: lockHint ? lockHint.trim() : 'check the permissions s3:DeleteObject and s3:DeleteObjectVersion',
        details: { bucket, op: 'delete', key },
      });
    }
  }

  async function stat(key: string): Promise<StorageEntry | undefined> {
    const fullKey = objectKey(key);
    try {
      const head = await getClient().send(new HeadObjectCommand({ Bucket: bucket, Key: fullKey }));
      return { key, size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error) && s3ErrorCode(error) !== 'NoSuchBucket') {
        await ensureBucketExists('stat', key);
        return undefined;
      }
      throw s3Failure(error, ctxFor('stat', key));
    }
  }

  /**
   * A HEAD answer has no body, so "no such key" and "no such bucket" are both a bare 404; ask
   * once whether the bucket exists so a wrong bucket name is not mistaken for a missing key.
   */
  async function ensureBucketExists(op: string, key?: string): Promise<void> {
    if (bucketSeen) return;
    try {
      await getClient().send(new HeadBucketCommand({ Bucket: bucket }));
      bucketSeen = true;
    } catch (error) {
      const status = httpStatusOf(error);
      const failure = status === 404 ? Object.assign(new Error('The specified bucket does not exist'), { name: 'NoSuchBucket', Code: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }) : error;
      // Credentials allowed to read objects but not to HEAD the bucket: trust the object answer.
      if (status === 403) return;
      throw s3Failure(failure, ctxFor(op, key));
    }
  }

  async function createExclusive(key: string, body: Buffer): Promise<boolean> {
    const fullKey = objectKey(key);
    try {
      await getClient().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: fullKey,
          Body: body,
          ContentLength: body.length,
          IfNoneMatch: '*',
          ...(o.serverSideEncryption ? { ServerSideEncryption: o.serverSideEncryption } : {}),
          ...(o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}),
        }),
      );
      return true;
    } catch (error) {
      const code = s3ErrorCode(error);
      const status = httpStatusOf(error);
      // 412: the key exists; 409: another writer is creating it right now and will win.
      if (code === 'PreconditionFailed' || status === 412 || code === 'ConditionalRequestConflict' || status === 409) return false;
      throw s3Failure(error, ctxFor('createExclusive', key));
    }
  }

  async function close(): Promise<void> {
    if (ownsClient && client) {
      client.destroy();
      client = undefined;
    }
  }

  const storage: S3Storage = {
    specVersion: 'v1',
    name,
    bucket,
    prefix: storagePrefix,
    put,
    get,
    list,
    delete: del,
    deleteMany,
    stat,
    close,
    capabilities: Object.freeze({ deleteMany }),
    ...(o.conditionalWrites ? { createExclusive } : {}),
  };
  return storage;
}
