import { text } from 'node:stream/consumers';
import type { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  BackupError,
  ConfigError,
  DEFAULT_LEADER_TTL_MS,
  type Lease,
  type LeaderElector,
  type LeaderIdentity,
  type LeaseHolder,
} from '@scholaria/backup-core';
import { httpStatusOf, s3ErrorCode, s3Failure } from './s3-errors.js';
import { newS3Client } from './s3-client.js';
import { toObjectKey } from './s3-keys.js';
import { parseS3StorageOptions, type S3StorageOptions } from './s3-storage-options.js';

/** Folder of the lease objects, beside the storage's locks. */
export const LEADER_LEASE_PREFIX = '.scholaria-backup/leader/';

export interface S3LeaderElectorOptions {
  /** Where the lease object lives: the same options as `createS3Storage` (bucket, prefix, endpoint, credentials or client). */
  storage: S3StorageOptions;
  /** The lease's name; replicas with the same name in the same bucket and prefix elect one leader. */
  name: string;
  /** Lease time. Default 30 s. */
  ttlMs?: number;
  /** Monotonic milliseconds (tests); default `performance.now`. */
  now?: () => number;
}

/** What the lease object holds (JSON). Times are the holder's clock and only informative. */
export interface S3LeaseBody {
  formatVersion: 1;
  name: string;
  owner: string;
  host: string;
  pid: number;
  acquiredAt: string;
  renewedAt: string;
  expiresAt: string;
  ttlMs: number;
  /** Set by a holder that gave the lease up: anyone may take it at once. */
  released?: boolean;
  /** Increments on every write, so every write has a new ETag. */
  generation: number;
}

const slug = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 100) || 'scheduler';

/**
 * Leader election on S3 conditional writes (S3 User Guide, "How to prevent object overwrites with
 * conditional writes"): the lease object is created with `If-None-Match: *` and renewed, given up
 * or taken over with `If-Match: <etag>`, so of two replicas writing at once exactly one wins
 * (412 PreconditionFailed or 409 ConditionalRequestConflict for the other).
 *
 * A lease is taken over when it was given up, or when a replica has seen the same ETag for a
 * whole TTL by its own monotonic clock (the way Kubernetes' client-go leader election reads a
 * lease): replicas' wall clocks need not agree.
 */
export function createS3LeaderElector(options: S3LeaderElectorOptions): LeaderElector {
  const o = parseS3StorageOptions(options.storage);
  if (!o.conditionalWrites) {
    throw new ConfigError('createS3LeaderElector: the S3 service does not support conditional writes', ['conditionalWrites: off (the default for provider b2)'], {
      component: 's3',
      hint: 'A lease needs If-None-Match / If-Match on PutObject (AWS S3, MinIO, R2); elect the leader on PostgreSQL instead (BACKUP_LEADER_ELECTION=postgres).',
    });
  }
  const ttlMs = options.ttlMs ?? DEFAULT_LEADER_TTL_MS;
  const now = options.now ?? (() => performance.now());
  const key = toObjectKey(o.prefix, `${LEADER_LEASE_PREFIX}${slug(options.name)}.json`);
  const name = `s3 lease s3://${o.bucket}/${key}`;
  const endpoint = o.endpoint ?? 'AWS S3';
  let client: S3Client | undefined = o.client;
  const getClient = (): S3Client =>
    (client ??= newS3Client(o, {
      // One attempt per call: the leadership retries on its own interval, and a slow retry
      // loop here would hide a lost lease.
      maxAttempts: 2,
      connectionTimeoutMs: Math.min(o.connectionTimeoutMs, ttlMs / 3),
      socketTimeoutMs: Math.min(o.socketTimeoutMs, ttlMs / 3),
    }));
  const ctx = (op: string) => ({ storage: name, bucket: o.bucket, op, key, endpoint });
  /** The ETag this replica last saw and since when (monotonic). */
  let observed: { etag: string; since: number } | undefined;

  async function read(): Promise<{ body: S3LeaseBody | undefined; etag: string } | undefined> {
    try {
      const r = await getClient().send(new GetObjectCommand({ Bucket: o.bucket, Key: key }));
      const raw = await text(r.Body as Readable);
      let body: S3LeaseBody | undefined;
      try {
        const parsed = JSON.parse(raw) as S3LeaseBody;
        body = parsed && typeof parsed.owner === 'string' ? parsed : undefined;
      } catch {
        body = undefined; // unreadable: treated like a lease nobody renews
      }
      return { body, etag: r.ETag ?? '' };
    } catch (error) {
      if (s3ErrorCode(error) === 'NoSuchKey' || httpStatusOf(error) === 404) return undefined;
      throw s3Failure(error, ctx('get'));
    }
  }

  /** Conditional put; undefined when the condition did not hold (someone else wrote first). */
  async function write(body: S3LeaseBody, condition: { ifNoneMatch: '*' } | { ifMatch: string }): Promise<string | undefined> {
    const bytes = Buffer.from(JSON.stringify(body, null, 2));
    try {
      const r = await getClient().send(
        new PutObjectCommand({
          Bucket: o.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.length,
          ContentType: 'application/json',
          ...('ifNoneMatch' in condition ? { IfNoneMatch: '*' } : { IfMatch: condition.ifMatch }),
          ...(o.serverSideEncryption ? { ServerSideEncryption: o.serverSideEncryption } : {}),
          ...(o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}),
        }),
      );
      if (!r.ETag) throw new BackupError('STORAGE_FAILED', `${name}: the server answered a conditional write without an ETag`, { hint: 'The S3 service must support conditional writes (If-None-Match / If-Match on PutObject) for BACKUP_LEADER_ELECTION=s3; use postgres otherwise.' });
      return r.ETag;
    } catch (error) {
      if (BackupError.isInstance(error)) throw error;
      const code = s3ErrorCode(error);
      const status = httpStatusOf(error);
      // 412: the condition failed; 409: a concurrent conditional write wins; 404: If-Match on a key that is gone.
      if (code === 'PreconditionFailed' || status === 412 || code === 'ConditionalRequestConflict' || status === 409 || code === 'NoSuchKey' || status === 404) return undefined;
      throw s3Failure(error, ctx('put'));
    }
  }

  function bodyFor(identity: LeaderIdentity, acquiredAt: string, generation: number, released = false): S3LeaseBody {
    const t = Date.now();
    return {
      formatVersion: 1,
      name: options.name,
      owner: identity.owner,
      host: identity.host,
      pid: identity.pid,
      acquiredAt,
      renewedAt: new Date(t).toISOString(),
      expiresAt: new Date(released ? t : t + ttlMs).toISOString(),
      ttlMs,
      generation,
      ...(released ? { released: true } : {}),
    };
  }

  async function acquire(identity: LeaderIdentity): Promise<Lease | undefined> {
    const current = await read();
    const acquiredAt = new Date().toISOString();
    let etag: string | undefined;
    let generation = 1;
    if (!current) {
      etag = await write(bodyFor(identity, acquiredAt, generation), { ifNoneMatch: '*' });
    } else {
      if (!observed || observed.etag !== current.etag) observed = { etag: current.etag, since: now() };
      const free = current.body?.released === true || now() - observed.since >= ttlMs;
      if (!free) return undefined;
      generation = (current.body?.generation ?? 0) + 1;
      etag = await write(bodyFor(identity, acquiredAt, generation), { ifMatch: current.etag });
    }
    if (etag === undefined) return undefined;
    let mine = etag;
    let released = false;
    const holder: LeaseHolder = { ...identity, acquiredAt };
    return {
      holder,
      async renew() {
        const next = await write(bodyFor(identity, acquiredAt, ++generation), { ifMatch: mine });
        if (next === undefined) return false;
        mine = next;
        return true;
      },
      async release() {
        if (released) return;
        released = true;
        await write(bodyFor(identity, acquiredAt, ++generation, true), { ifMatch: mine }).catch(() => undefined);
      },
    };
  }

  async function holder(): Promise<LeaseHolder | undefined> {
    const current = await read();
    const b = current?.body;
    if (!b || b.released) return undefined;
    return { owner: b.owner, host: b.host, pid: b.pid, acquiredAt: b.acquiredAt, renewedAt: b.renewedAt, expiresAt: b.expiresAt };
  }

  return {
    specVersion: 'v1',
    name,
    ttlMs,
    acquire,
    holder,
    async close() {
      if (!o.client && client) client.destroy();
      client = undefined;
    },
  };
}
