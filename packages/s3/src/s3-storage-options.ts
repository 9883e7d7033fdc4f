import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { ConfigError } from '@scholaria/backup-core';
import { z } from 'zod';

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;
export const TIB = 1024 * GIB;
/** S3's limits for multipart uploads. */
export const MIN_PART_SIZE = 5 * MIB;
export const MAX_PART_SIZE = 5 * GIB;
export const MAX_PARTS = 10_000;
export const MAX_OBJECT_SIZE = 5 * TIB;
/**
 * Part size and parts in flight per put (issue 22). A put fills a pool of at most
 * (queueSize + 1) part buffers, reused for every part (multipart-upload.ts): 8 MiB x 4 (the AWS
 * CLI's multipart chunk size) holds 42 MB. A whole backup process uploading 0.5 GiB to s3rver
 * peaked at 156-169 MB RSS with it (bare lib-storage at the same settings: 173-183 MB; 16 MiB
 * x 4: 206 MB), at the same speed: the rest is the process itself (about 80 MB with the SDK
 * loaded, V8 heap included) and the input's chunks awaiting collection (30-40 MB), not the
 * uploader. Smaller settings lower only the pool (5 MiB x 3: 147-149 MB). An object of unknown
 * size can reach 8 MiB x 10,000 = 78.1 GiB, so larger streamed dumps need a larger
 * `partSizeBytes`.
 */
export const DEFAULT_PART_SIZE = 8 * MIB;
export const DEFAULT_QUEUE_SIZE = 4;

export const S3_PROVIDERS = ['aws', 'minio', 'r2', 'b2'] as const;
export type S3Provider = (typeof S3_PROVIDERS)[number];

export const S3_STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
  'REDUCED_REDUNDANCY',
] as const;

// Loose: credentials resolved by SDK providers carry extra fields (expiration, $source, ...).
const credentialsObject = z.looseObject({
  accessKeyId: z.string().min(1, 'must be a non-empty access key id'),
  secretAccessKey: z.string().min(1, 'must be a non-empty secret access key'),
  sessionToken: z.string().min(1).optional(),
});

/** Static keys or a provider function, as the SDK accepts them. */
export type S3Credentials = NonNullable<S3ClientConfig['credentials']>;
type CredentialsProvider = Extract<S3Credentials, (...args: never[]) => unknown>;

const credentialsProvider = z.custom<CredentialsProvider>((v) => typeof v === 'function', {
  message: 'must be { accessKeyId, secretAccessKey, sessionToken? } or an AWS SDK credentials provider function',
});

const s3ClientLike = z.custom<S3Client>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { send?: unknown }).send === 'function' &&
    typeof (v as { config?: unknown }).config === 'object',
  { message: 'must be an S3Client from @aws-sdk/client-s3' },
);

/** Options that configure the SDK client; meaningless (and refused) next to a ready `client`. */
const CLIENT_FIELDS = [
  'region',
  'endpoint',
  'forcePathStyle',
  'credentials',
  'checksumMode',
  'maxAttempts',
  'connectionTimeoutMs',
  'socketTimeoutMs',
] as const;

export const s3StorageOptionsSchema = z
  .object({
    /** Bucket that holds the backup sets; it must exist (the storage never creates buckets). */
    bucket: z
      .string({ error: (issue) => (issue.input === undefined ? 'is required: the name of an existing bucket' : 'must be a string') })
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/, {
        message: 'must be a bucket name (3-255 letters, digits, dots, hyphens or underscores, no slashes)',
      }),
    /** Key prefix inside the bucket, e.g. 'scholaria/prod'; leading and trailing '/' are ignored. */
    prefix: z
      .string()
      .default('')
      .transform((p) => p.replace(/^\/+|\/+$/g, ''))
      .refine((p) => p === '' || p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), {
        message: "must be '/'-separated segments without empty, '.' or '..' segments",
      })
      .refine((p) => !p.includes('\\') && !p.includes('\0'), { message: 'must not contain backslashes or NUL bytes' }),
    /** Preset for a service's quirks; explicit options override it. */
    provider: z.enum(S3_PROVIDERS).optional(),
    region: z.string().min(1).optional(),
    endpoint: z
      .string()
      .url({ message: 'must be a URL such as https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:9000' })
      .refine((u) => /^https?:\/\//i.test(u), { message: 'must be an http:// or https:// URL' })
      .refine((u) => !/^https?:\/\/[^/]*@/i.test(u), { message: 'must not contain credentials; use the credentials option' })
      .optional(),
    forcePathStyle: z.boolean().optional(),
    /** Static keys or an SDK credentials provider; omitted: the SDK default chain (env, profile, IMDS, ...). */
    credentials: z
      .union([credentialsObject, credentialsProvider], {
        error: 'must be { accessKeyId, secretAccessKey, sessionToken? } with non-empty strings, or an AWS SDK credentials provider function',
      })
      .optional(),
    /** A ready client; then region/endpoint/credentials/... belong to that client. */
    client: s3ClientLike.optional(),
    serverSideEncryption: z.enum(['AES256', 'aws:kms']).optional(),
    kmsKeyId: z.string().min(1).optional(),
    storageClass: z.enum(S3_STORAGE_CLASSES).optional(),
    /** When the SDK adds flexible checksums: always where supported, or only where the API requires one. */
    checksumMode: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
    /** Force a flexible checksum algorithm on every upload (computed by the SDK, checked by the service). */
    checksumAlgorithm: z.enum(['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME']).optional(),
    partSizeBytes: z.number().int().min(MIN_PART_SIZE).max(MAX_PART_SIZE).default(DEFAULT_PART_SIZE),
    queueSize: z.number().int().min(1).max(64).default(DEFAULT_QUEUE_SIZE),
    objectLock: z
      .object({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']) })
      .strict()
      .optional(),
    /** Delete every version of a key (and report versions the service refuses to delete). */
    deleteAllVersions: z.boolean().optional(),
    /** Use `If-None-Match: *` for createExclusive (storage-based locks). */
    conditionalWrites: z.boolean().optional(),
    /** Attempts per request (SDK standard retry mode: exponential backoff with jitter). Default 5. */
    maxAttempts: z.number().int().min(1).max(20).optional(),
    /** TCP connect timeout. Default 10 s. */
    connectionTimeoutMs: z.number().int().min(1).optional(),
    /** Socket inactivity timeout: a request fails when no byte moves for this long. Default 120 s. */
    socketTimeoutMs: z.number().int().min(1).optional(),
    listPageSize: z.number().int().min(1).max(1000).default(1000),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.kmsKeyId !== undefined && o.serverSideEncryption !== 'aws:kms') {
      ctx.addIssue({ code: 'custom', path: ['kmsKeyId'], message: "only applies with serverSideEncryption: 'aws:kms'" });
    }
    if (o.client !== undefined) {
      for (const field of CLIENT_FIELDS) {
        if (o[field] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'cannot be combined with client: configure the S3Client you pass instead',
          });
        }
      }
    }
    if (o.client === undefined && o.endpoint === undefined && (o.provider === 'minio' || o.provider === 'r2' || o.provider === 'b2')) {
      const example = {
        minio: 'http://127.0.0.1:9000',
        r2: 'https://<ACCOUNT_ID>.r2.cloudflarestorage.com',
        b2: 'https://s3.<region>.backblazeb2.com',
      }[o.provider];
      ctx.addIssue({ code: 'custom', path: ['endpoint'], message: `is required for provider '${o.provider}', e.g. ${example}` });
    }
    if (o.provider === 'b2' && o.region === undefined && o.endpoint !== undefined && b2RegionOf(o.endpoint) === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: "is required for provider 'b2' when the endpoint is not https://s3.<region>.backblazeb2.com",
      });
    }
  });

/** What callers pass to createS3Storage. */
export type S3StorageOptions = z.input<typeof s3StorageOptionsSchema>;
type ParsedS3StorageOptions = z.output<typeof s3StorageOptionsSchema>;

/** Parsed options with every provider default applied. */
export interface ResolvedS3StorageOptions
  extends Omit<
    ParsedS3StorageOptions,
    'forcePathStyle' | 'checksumMode' | 'deleteAllVersions' | 'conditionalWrites' | 'maxAttempts' | 'connectionTimeoutMs' | 'socketTimeoutMs'
  > {
  forcePathStyle: boolean;
  checksumMode: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
  deleteAllVersions: boolean;
  conditionalWrites: boolean;
  maxAttempts: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
}

function b2RegionOf(endpoint: string): string | undefined {
  return /^https?:\/\/s3\.([a-z0-9-]+)\.backblazeb2\.com/i.exec(endpoint)?.[1];
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    '',
  );
}

/**
 * Validates options and applies the provider presets:
 * - aws: virtual-hosted addressing, flexible checksums where supported, region from the SDK chain if unset;
 * - minio: path-style addressing, region 'us-east-1';
 * - r2: region 'auto', checksums only when required (R2 rejects some of the SDK's default checksum headers);
 * - b2: region from the endpoint, checksums only when required, deletes remove every version
 *   (a plain B2 delete only hides the file and keeps billing for it).
 * Without a provider but with an endpoint the settings most S3-compatible servers accept are used:
 * path style, region 'us-east-1', checksums only when required.
 */
export function parseS3StorageOptions(options: unknown): ResolvedS3StorageOptions {
  const parsed = s3StorageOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    // zod's messages never include the input value, so a secret key cannot leak into the error.
    const issues = parsed.error.issues.map((i) => `${issuePath(i.path) || '(options)'}: ${i.message}`);
    throw new ConfigError('createS3Storage: invalid options', issues, {
      component: 's3',
      hint: "pass at least { bucket, region } for AWS or { bucket, endpoint, provider: 'minio' | 'r2' | 'b2' }; see the @scholaria/backup-s3 README for every option",
    });
  }
  const o = parsed.data;
  const provider = o.provider;
  const compatible = provider === undefined && o.endpoint !== undefined;
  let region = o.region;
  if (region === undefined && o.client === undefined) {
    if (provider === 'r2') region = 'auto';
    else if (provider === 'b2') region = b2RegionOf(o.endpoint ?? '');
    else if (provider === 'minio' || compatible) region = 'us-east-1';
  }
  return {
    ...o,
    region,
    forcePathStyle: o.forcePathStyle ?? (provider === 'minio' || compatible),
    checksumMode: o.checksumMode ?? (provider === 'r2' || provider === 'b2' || compatible ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'),
    deleteAllVersions: o.deleteAllVersions ?? (o.objectLock !== undefined || provider === 'b2'),
    conditionalWrites: o.conditionalWrites ?? provider !== 'b2',
    maxAttempts: o.maxAttempts ?? 5,
    connectionTimeoutMs: o.connectionTimeoutMs ?? 10_000,
    socketTimeoutMs: o.socketTimeoutMs ?? 120_000,
  };
}
