import { createHash, createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { IncomingMessage, Server } from 'node:http';
import { join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { registerCleanup } from './cleanup.js';
import { getFreePort } from './free-port.js';
import { makeTempDir } from './temp-dir.js';

export interface StartS3Options {
  /** Bucket created before the server accepts requests. Default 'scholaria-test'. */
  bucket?: string;
  /** Access key the server accepts. Default 'S3RVER' (s3rver's built-in account). */
  accessKeyId?: string;
  /** Secret for `accessKeyId`. Default 'S3RVER'. */
  secretAccessKey?: string;
  /**
   * Check AWS Signature V4 on every header-signed request, so a wrong secret is refused with
   * SignatureDoesNotMatch like real S3 (s3rver itself only checks the access key id). Default true.
   */
  verifySignatures?: boolean;
}

export interface S3MultipartUploadInfo {
  bucket: string;
  key: string;
  uploadId: string;
}

export interface S3TestServer {
  /** e.g. 'http://127.0.0.1:41234' */
  endpoint: string;
  region: 'us-east-1';
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * Settings an AWS SDK v3 S3Client needs against this server: path-style addressing and
   * checksums only when required (with the SDK's default flexible checksums s3rver stores
   * the aws-chunked framing as object bytes). A fresh copy on every read.
   */
  readonly clientConfig: {
    endpoint: string;
    region: 'us-east-1';
    credentials: { accessKeyId: string; secretAccessKey: string };
    forcePathStyle: true;
    requestChecksumCalculation: 'WHEN_REQUIRED';
    responseChecksumValidation: 'WHEN_REQUIRED';
  };
  /** s3rver's data directory; bucket `b` lives in `<directory>/b`. */
  directory: string;
  /** Multipart uploads started and neither completed nor aborted, read from the data directory. */
  listMultipartUploads(bucket?: string): Promise<S3MultipartUploadInfo[]>;
  /**
   * Simulates an S3 Object Lock refusal: from now on DeleteObject and DeleteObjects refuse this
   * key (in the default bucket unless given) with AccessDenied, as S3 does for a locked version.
   */
  lockObject(key: string, bucket?: string): void;
  unlockObject(key: string, bucket?: string): void;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

interface S3rverInstance {
  middleware: KoaMiddleware[];
  store: {
    existsObject(bucket: string, key: string): Promise<boolean>;
    deleteObject(bucket: string, key: string): Promise<void>;
    getMetadata(bucket: string, key: string): Promise<{ etag?: string }>;
  };
  httpServer?: Server;
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;
type S3ErrorCtor = new (code: string, message?: string, detail?: Record<string, unknown>) => Error;
interface AwsAccountCtor {
  new (id: number, displayName: string): { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void };
  registry: Map<string, { accessKeys: Map<string, string> }>;
}

interface KoaContext {
  req: IncomingMessage;
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

// s3rver ships no types; these are the three parts of it used here.
const S3rver = require('s3rver') as S3rverCtor;
const S3Error = require('s3rver/lib/models/error') as S3ErrorCtor;
const AWSAccount = require('s3rver/lib/models/account') as AwsAccountCtor;

const UPLOADS_DIR = '._S3rver_uploads';
const OBJECT_SUFFIX = '._S3rver_object';
const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/**
 * Starts `s3rver` in-process on 127.0.0.1 with a random free port, its data in a temp dir and
 * `bucket` created. s3rver itself supports single and multipart uploads (initiate, upload part,
 * complete), GetObject with Range, HeadObject, ListObjects, DeleteObject and DeleteObjects. It
 * lacks AbortMultipartUpload, ListMultipartUploads, ListObjectVersions and conditional PUT
 * (`If-None-Match: *`, `If-Match: <etag>`), does not check SigV4 signatures (only the access key id), parses
 * DeleteObjects keys as XML values (so '0012' turns into 12) and fails every truncated
 * ListObjectsV2 on Node >= 17 (its continuation tokens use DES, which OpenSSL 3 refuses). A
 * small middleware in front of it fills these gaps the way S3 answers (unversioned-bucket
 * semantics: every object has the single version 'null').
 */
export async function startS3(options: StartS3Options = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'scholaria-test';
  const accessKeyId = options.accessKeyId ?? 'S3RVER';
  const secretAccessKey = options.secretAccessKey ?? 'S3RVER';
  const verifySignatures = options.verifySignatures ?? true;

  // s3rver keeps accounts in a process-wide registry; only add (and later revoke) our own.
  let revokeKey: (() => void) | undefined;
  const existing = AWSAccount.registry.get(accessKeyId);
  if (!existing) {
    const account = new AWSAccount(123456789012, `scholaria-${accessKeyId}`);
    account.createKeyPair(accessKeyId, secretAccessKey);
    revokeKey = () => account.revokeAccessKey(accessKeyId);
  } else if (existing.accessKeys.get(accessKeyId) !== secretAccessKey) {
    throw new Error(`startS3: access key id '${accessKeyId}' is already registered with a different secret in this process`);
  }

  const dir = await makeTempDir('scholaria-s3-');
  const locked = new Set<string>();
  const inFlightExclusive = new Set<string>();

  let server: S3rverInstance | undefined;
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5 && !server; attempt++) {
    port = await getFreePort();
    const candidate = new S3rver({
      address: '127.0.0.1',
      port,
      silent: true,
      directory: dir.path,
      vhostBuckets: false,
      configureBuckets: [{ name: bucket }],
    });
    candidate.middleware.unshift(
      ...(verifySignatures ? [signatureMiddleware()] : []),
      extensionsMiddleware(candidate, dir.path, locked, inFlightExclusive),
    );
    try {
      await candidate.run();
      server = candidate;
    } catch (error) {
      lastError = error;
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  if (!server) {
    revokeKey?.();
    await dir.remove();
    throw new Error(`startS3: s3rver did not start: ${String(lastError)}`);
  }

  const running = server;
  let stopped = false;
  const stopSync = () => {
    running.httpServer?.closeAllConnections();
    running.httpServer?.close();
    revokeKey?.();
  };
  const unregister = registerCleanup(stopSync);
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId, secretAccessKey };
  const lockId = (key: string, b?: string) => `${b ?? bucket}/${key}`;

  return {
    endpoint,
    region: 'us-east-1',
    bucket,
    credentials,
    // A fresh object per read: the SDK writes bookkeeping fields into the credentials it is given.
    get clientConfig() {
      return {
        endpoint,
        region: 'us-east-1' as const,
        credentials: { ...credentials },
        forcePathStyle: true as const,
        requestChecksumCalculation: 'WHEN_REQUIRED' as const,
        responseChecksumValidation: 'WHEN_REQUIRED' as const,
      };
    },
    directory: dir.path,
    listMultipartUploads: (b?: string) => readUploads(dir.path, b ?? bucket),
    lockObject: (key, b) => void locked.add(lockId(key, b)),
    unlockObject: (key, b) => void locked.delete(lockId(key, b)),
    async stop() {
      if (stopped) return;
      stopped = true;
      unregister();
      const closed = running.close().catch(() => undefined);
      running.httpServer?.closeAllConnections();
      await closed;
      revokeKey?.();
      await dir.remove();
    },
  };
}

async function readUploads(root: string, bucket: string): Promise<S3MultipartUploadInfo[]> {
  const uploadsDir = join(root, bucket, UPLOADS_DIR);
  if (!existsSync(uploadsDir)) return [];
  const out: S3MultipartUploadInfo[] = [];
  for (const uploadId of await readdir(uploadsDir)) {
    const key = await readFile(join(uploadsDir, uploadId, 'key'), 'utf8').catch(() => undefined);
    if (key !== undefined) out.push({ bucket, key, uploadId });
  }
  return out;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

function queryValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Path-style split: '/bucket/a/b' -> ['bucket', 'a/b']; key undefined for bucket-level requests. */
function splitPath(rawPath: string): { bucket?: string; key?: string } {
  const path = rawPath.replace(/^\//, '');
  if (!path) return {};
  const slash = path.indexOf('/');
  if (slash === -1) return { bucket: decodeURIComponent(path) };
  const key = path.slice(slash + 1);
  return { bucket: decodeURIComponent(path.slice(0, slash)), key: key ? decodeURIComponent(key) : undefined };
}

function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function xmlUnescape(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const e = entity.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

function sendXml(ctx: KoaContext, status: number, xml: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): string | Buffer {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {}
}

/** Recomputes the SigV4 signature of header-signed requests with the registered secret. */
function signatureMiddleware(): KoaMiddleware {
  return async (ctx, next) => {
    const authorization = headerValue(ctx.headers.authorization);
    if (!authorization?.startsWith('AWS4-HMAC-SHA256 ')) return next();
    const match = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)/.exec(
      authorization,
    );
    if (!match) throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed.');
    const [, keyId, , region, service, signedHeaderList, signature] = match as unknown as string[];
    const account = AWSAccount.registry.get(keyId!);
    const secret = account?.accessKeys.get(keyId!);
    // Unknown key ids fall through to s3rver, which answers InvalidAccessKeyId.
    if (secret === undefined) return next();
    const amzDate = headerValue(ctx.headers['x-amz-date']) ?? '';
    const dateMatch = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!dateMatch) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    const [, y, mo, d, h, mi, s] = dateMatch;
    const signingDate = new Date(Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!));
    const signed = signedHeaderList!.split(';');
    const headers: Record<string, string> = {};
    for (const name of signed) {
      const value = headerValue(ctx.headers[name]);
      if (value !== undefined) headers[name] = value;
    }
    const rawUrl = ctx.req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query: Record<string, string | string[]> = {};
    if (q !== -1) {
      for (const [k, v] of new URLSearchParams(rawUrl.slice(q + 1))) {
        const prev = query[k];
        query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
    }
    const signer = new SignatureV4({
      credentials: { accessKeyId: keyId!, secretAccessKey: secret },
      region: region!,
      service: service!,
      sha256: NodeSha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const resigned = await signer.sign(
      { method: ctx.method, protocol: 'http:', hostname: '127.0.0.1', path, query, headers, body: undefined },
      { signingDate, signableHeaders: new Set(signed) },
    );
    const expected = /Signature=([0-9a-f]+)/.exec(String(resigned.headers.authorization ?? resigned.headers.Authorization))?.[1];
    if (expected !== signature) {
      throw new S3Error(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { AWSAccessKeyId: keyId },
      );
    }
    return next();
  };
}

/** The S3 operations s3rver lacks and the tests need, answered the way S3 answers them. */
function extensionsMiddleware(
  s3rver: S3rverInstance,
  root: string,
  locked: Set<string>,
  inFlightExclusive: Set<string>,
): KoaMiddleware {
  /**
   * One conditional write per key at a time, as S3 answers a racing one (409
   * ConditionalRequestConflict). The key is claimed before the first await, so concurrent
   * writers see each other.
   */
  const exclusively = async (id: string, write: () => Promise<void>): Promise<void> => {
    if (inFlightExclusive.has(id)) {
      throw Object.assign(
        new S3Error('ConditionalRequestConflict', 'A conflicting conditional operation is currently in progress against this resource.'),
        { status: 409 },
      );
    }
    inFlightExclusive.add(id);
    try {
      await write();
    } finally {
      inFlightExclusive.delete(id);
    }
  };
  const requireKnownKey = (ctx: KoaContext) => {
    const authorization = headerValue(ctx.headers.authorization);
    const keyId = authorization && /Credential=([^/]+)\//.exec(authorization)?.[1];
    if (!keyId) throw new S3Error('AccessDenied', 'Access Denied');
    if (!AWSAccount.registry.has(keyId)) {
      throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
        AWSAccessKeyId: keyId,
      });
    }
  };
  const requireBucket = (bucket: string) => {
    if (!existsSync(join(root, bucket))) {
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
    }
  };

  return async (ctx, next) => {
    const { bucket, key } = splitPath(ctx.path);
    if (!bucket) return next();
    const query = ctx.query;

    // AbortMultipartUpload
    if (ctx.method === 'DELETE' && key !== undefined && query.uploadId !== undefined) {
      requireKnownKey(ctx);
      requireBucket(bucket);
      const uploadId = queryValue(query.uploadId) ?? '';
      const uploadDir = join(root, bucket, UPLOADS_DIR, uploadId);
      const storedKey = /^[0-9a-f]+$/.test(uploadId) ? await readFile(join(uploadDir, 'key'), 'utf8').catch(() => undefined) : undefined;
      if (storedKey !== key) {
        throw new S3Error(
          'NoSuchUpload',
          'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
          { UploadId: uploadId },
        );
      }
      await rm(uploadDir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }

    // ListMultipartUploads (no pagination: test buckets hold few uploads)
    if (ctx.method === 'GET' && key === undefined && query.uploads !== undefined) {
      requireKnownKey(ctx);
      requireBucket(bucket);
      const prefix = queryValue(query.prefix) ?? '';
      const uploads = (await readUploads(root, bucket)).filter((u) => u.key.startsWith(prefix));
      const items = await Promise.all(
        uploads.map(async (u) => {
          const initiated = (await stat(join(root, bucket, UPLOADS_DIR, u.uploadId)).catch(() => undefined))?.mtime ?? new Date();
          return `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`;
        }),
      );
      sendXml(
        ctx,
        200,
        `<ListMultipartUploadsResult xmlns="${S3_NS}"><Bucket>${xmlEscape(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${items.join('')}</ListMultipartUploadsResult>`,
      );
      return;
    }

    // ListObjectsV2: s3rver encrypts continuation tokens with DES, which OpenSSL 3 (Node >= 17)
    // refuses, so any truncated listing fails with InternalError there. Answered here instead.
    if (ctx.method === 'GET' && key === undefined && queryValue(query['list-type']) === '2') {
      requireKnownKey(ctx);
      requireBucket(bucket);
      sendXml(ctx, 200, await listObjectsV2(join(root, bucket), bucket, query));
      return;
    }

    // ListObjectVersions, unversioned-bucket semantics (no pagination)
    if (ctx.method === 'GET' && key === undefined && query.versions !== undefined) {
      requireKnownKey(ctx);
      requireBucket(bucket);
      const prefix = queryValue(query.prefix) ?? '';
      const versions = await listObjectFiles(join(root, bucket), prefix);
      const items = versions
        .map(
          (v) =>
            `<Version><Key>${xmlEscape(v.key)}</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><LastModified>${v.modifiedAt.toISOString()}</LastModified><Size>${v.size}</Size><StorageClass>STANDARD</StorageClass></Version>`,
        )
        .join('');
      sendXml(
        ctx,
        200,
        `<ListVersionsResult xmlns="${S3_NS}"><Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${items}</ListVersionsResult>`,
      );
      return;
    }

    // DeleteObject of a (simulated) locked object
    if (ctx.method === 'DELETE' && key !== undefined && locked.has(`${bucket}/${key}`)) {
      requireKnownKey(ctx);
      throw new S3Error('AccessDenied', 'Access Denied because object protected by object lock.');
    }

    // DeleteObjects: s3rver's own handler parses keys as XML values (so '0012' becomes 12) and
    // ignores VersionId; answer it here with per-key results.
    if (ctx.method === 'POST' && key === undefined && query.delete !== undefined) {
      requireKnownKey(ctx);
      requireBucket(bucket);
      const body = await readBody(ctx.req);
      const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(body);
      const objects = [...body.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map((m) => {
        const inner = m[1]!;
        const k = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
        const v = /<VersionId>([\s\S]*?)<\/VersionId>/.exec(inner)?.[1];
        return { key: k === undefined ? undefined : xmlUnescape(k), versionId: v === undefined ? undefined : xmlUnescape(v) };
      });
      if (objects.length === 0 || objects.length > 1000 || objects.some((o) => o.key === undefined)) {
        throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
      }
      const results: string[] = [];
      for (const o of objects) {
        const k = o.key!;
        const versionXml = o.versionId === undefined ? '' : `<VersionId>${xmlEscape(o.versionId)}</VersionId>`;
        if (locked.has(`${bucket}/${k}`)) {
          results.push(
            `<Error><Key>${xmlEscape(k)}</Key>${versionXml}<Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error>`,
          );
          continue;
        }
        if (o.versionId === undefined || o.versionId === 'null') {
          if (await s3rver.store.existsObject(bucket, k)) await s3rver.store.deleteObject(bucket, k);
        }
        if (!quiet) results.push(`<Deleted><Key>${xmlEscape(k)}</Key>${versionXml}</Deleted>`);
      }
      sendXml(ctx, 200, `<DeleteResult xmlns="${S3_NS}">${results.join('')}</DeleteResult>`);
      return;
    }

    // Conditional create (PutObject with If-None-Match: *), used for storage-based locks
    if (ctx.method === 'PUT' && key !== undefined && query.uploadId === undefined && headerValue(ctx.headers['if-none-match']) === '*') {
      requireKnownKey(ctx);
      requireBucket(bucket);
      await exclusively(`${bucket}/${key}`, async () => {
        if (await s3rver.store.existsObject(bucket, key)) {
          throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
            Condition: 'If-None-Match',
          });
        }
        await next();
      });
      return;
    }

    // Conditional overwrite (PutObject with If-Match: <etag>), used for the scheduler's leader
    // lease. As documented for S3 (PutObject API reference, "If-Match"; User Guide "How to prevent
    // object overwrites with conditional writes",
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html): the write
    // succeeds only when the current object's ETag equals the given one, else 412
    // PreconditionFailed; no object under the key is 404 NoSuchKey; a conditional write racing
    // another one on the same key is 409 ConditionalRequestConflict.
    const ifMatch = headerValue(ctx.headers['if-match']);
    if (ctx.method === 'PUT' && key !== undefined && query.uploadId === undefined && ifMatch !== undefined) {
      requireKnownKey(ctx);
      requireBucket(bucket);
      await exclusively(`${bucket}/${key}`, async () => {
        if (!(await s3rver.store.existsObject(bucket, key))) {
          throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
        }
        const current = String((await s3rver.store.getMetadata(bucket, key)).etag ?? '').replace(/^W\//, '').replace(/"/g, '');
        const wanted = ifMatch.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/"/g, ''));
        if (!wanted.includes('*') && !wanted.includes(current)) {
          throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
        }
        await next();
      });
      return;
    }

    return next();
  };
}

async function listObjectsV2(bucketDir: string, bucket: string, query: KoaContext['query']): Promise<string> {
  const prefix = queryValue(query.prefix) ?? '';
  const delimiter = queryValue(query.delimiter) ?? '';
  const rawMax = queryValue(query['max-keys']);
  const maxKeys = rawMax === undefined ? 1000 : Number(rawMax);
  if (!Number.isInteger(maxKeys) || maxKeys < 0) {
    throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', { ArgumentName: 'max-keys' });
  }
  const limit = Math.min(1000, maxKeys);
  const token = queryValue(query['continuation-token']);
  let after = queryValue(query['start-after']) ?? '';
  if (token !== undefined) {
    const decoded = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
    if (!decoded.startsWith('v1:')) {
      throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
    }
    after = decoded.slice(3);
  }
  const urlEncode = queryValue(query['encoding-type']) === 'url';
  const enc = (v: string) => xmlEscape(urlEncode ? encodeURIComponent(v).replace(/%2F/g, '/') : v);
  const afterBytes = Buffer.from(after);
  const objects = (await listObjectFiles(bucketDir, prefix)).sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  const contents: string[] = [];
  const commonPrefixes: string[] = [];
  let last = '';
  let truncated = false;
  for (const o of objects) {
    const rest = o.key.slice(prefix.length);
    const cut = delimiter ? rest.indexOf(delimiter) : -1;
    const commonPrefix = cut === -1 ? undefined : o.key.slice(0, prefix.length + cut + delimiter.length);
    const item = commonPrefix ?? o.key;
    if (Buffer.compare(Buffer.from(item), afterBytes) <= 0) continue;
    if (commonPrefix !== undefined && commonPrefix === last) continue;
    if (contents.length + commonPrefixes.length >= limit) {
      truncated = true;
      break;
    }
    last = item;
    if (commonPrefix !== undefined) {
      commonPrefixes.push(`<CommonPrefixes><Prefix>${enc(commonPrefix)}</Prefix></CommonPrefixes>`);
    } else {
      contents.push(
        `<Contents><Key>${enc(o.key)}</Key><LastModified>${o.modifiedAt.toISOString()}</LastModified>${o.etag ? `<ETag>&quot;${o.etag}&quot;</ETag>` : ''}<Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
  }
  const next = truncated ? `<NextContinuationToken>${Buffer.from(`v1:${last}`).toString('base64url')}</NextContinuationToken>` : '';
  return (
    `<ListBucketResult xmlns="${S3_NS}"><Name>${xmlEscape(bucket)}</Name><Prefix>${enc(prefix)}</Prefix>` +
    `${token === undefined ? '' : `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`}` +
    `${delimiter ? `<Delimiter>${enc(delimiter)}</Delimiter>` : ''}${urlEncode ? '<EncodingType>url</EncodingType>' : ''}` +
    `<KeyCount>${contents.length + commonPrefixes.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${next}` +
    `${contents.join('')}${commonPrefixes.join('')}</ListBucketResult>`
  );
}

interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
  etag?: string;
}

async function listObjectFiles(bucketDir: string, prefix: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  const walk = async (dir: string, rel: string) => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (entry.isDirectory()) {
        if (entry.name === UPLOADS_DIR && rel === '') continue;
        await walk(join(dir, entry.name), `${rel}${entry.name}/`);
      } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
        const key = `${rel}${entry.name.slice(0, -OBJECT_SUFFIX.length)}`;
        if (!key.startsWith(prefix)) continue;
        const file = join(dir, entry.name);
        const s = await stat(file).catch(() => undefined);
        if (!s) continue; // deleted while listing
        const etag = await readFile(`${file}.md5`, 'utf8').catch(() => undefined);
        out.push({ key, size: s.size, modifiedAt: s.mtime, etag: etag?.trim() });
      }
    }
  };
  if (existsSync(bucketDir)) await walk(bucketDir, '');
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
