import { z } from 'zod';
import { defineAdapter, envBoolean, envByteSize, envEnum, envInteger, envIssue, envUrl } from '@scholaria/backup-core';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, MAX_PART_SIZE, MIN_PART_SIZE, MIB } from './s3-storage-options.js';

const PROVIDERS = ['aws', 'minio', 'r2', 'b2'] as const;
export type S3EnvProvider = (typeof PROVIDERS)[number];

export interface S3EnvConfig {
  bucket: string;
  prefix?: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  provider: S3EnvProvider;
  /** `BACKUP_S3_PART_SIZE`; unset: the adapter's default. */
  partSizeBytes?: number;
  /** `BACKUP_S3_QUEUE_SIZE`; unset: the adapter's default. */
  queueSize?: number;
}

const bucket = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'expected an S3 bucket name: 3-63 lowercase letters, digits, "." and "-"' });

const prefix = z.string().transform((s, ctx) => {
  const p = s.replace(/^\/+|\/+$/g, '');
  if (p.includes('\0') || p.includes('\\') || p.split('/').some((seg) => seg === '..' || seg === '.' || seg === '')) {
    return envIssue(ctx, 'expected a "/"-separated key prefix without "..", ".", empty segments or backslashes');
  }
  return p;
});

const S3_VARIABLES = ['BACKUP_S3_BUCKET', 'BACKUP_S3_PREFIX', 'BACKUP_S3_REGION', 'BACKUP_S3_ENDPOINT', 'BACKUP_S3_FORCE_PATH_STYLE', 'BACKUP_S3_PROVIDER', 'BACKUP_S3_PART_SIZE', 'BACKUP_S3_QUEUE_SIZE'] as const;

/**
 * The S3 storage's `.env` descriptor: on when `BACKUP_S3_BUCKET` is set. Credentials are not
 * read here (the AWS SDK reads `AWS_ACCESS_KEY_ID` and friends itself). The SDK is loaded only
 * when `create` is called.
 */
export const s3StorageEnv = defineAdapter({
  kind: 'storage',
  name: 's3',
  title: 'S3 storage (`@scholaria/backup-s3`)',
  label: 'BACKUP_S3_*',
  env: {
    BACKUP_S3_BUCKET: { schema: bucket, doc: 'also store every set in this bucket; setting any `BACKUP_S3_*` needs it' },
    BACKUP_S3_PREFIX: { schema: prefix, doc: 'key prefix inside the bucket, without `..`' },
    BACKUP_S3_REGION: {
      schema: z.string().regex(/^[a-z0-9-]+$/, { message: 'expected a region name like us-east-1 (or auto for R2)' }),
      default: 'SDK default',
      doc: 'e.g. `ap-northeast-2`, `auto` (R2)',
    },
    BACKUP_S3_ENDPOINT: {
      schema: envUrl(['http:', 'https:'], 'https://<account>.r2.cloudflarestorage.com or http://minio:9000'),
      url: true,
      default: 'AWS',
      doc: 'http(s) URL; required for `minio`, `r2`, `b2`',
    },
    BACKUP_S3_FORCE_PATH_STYLE: { schema: envBoolean, default: '`true` for minio, else `false`', doc: '`true`/`false`/`1`/`0`' },
    BACKUP_S3_PROVIDER: { schema: envEnum(PROVIDERS), default: '`aws`', doc: '`aws`, `minio`, `r2` or `b2`' },
    BACKUP_S3_PART_SIZE: {
      schema: envByteSize,
      default: `\`${DEFAULT_PART_SIZE / MIB}MiB\``,
      doc: 'multipart part size, 5MiB-5GiB (`16MiB`, bytes, ...); memory per upload is about (queue + 1) parts, and an artifact of unknown size can be at most 10,000 parts (78 GiB at 8 MiB)',
    },
    BACKUP_S3_QUEUE_SIZE: { schema: envInteger(1, 64, 'a whole number from 1 to 64'), default: `\`${DEFAULT_QUEUE_SIZE}\``, doc: 'parts uploaded at once per artifact, 1-64' },
  },
  configure({ values, isSet, problem }): S3EnvConfig | undefined {
    const set = S3_VARIABLES.filter(isSet);
    if (set.length === 0) return undefined;
    const provider = values.BACKUP_S3_PROVIDER ?? 'aws';
    if (!isSet('BACKUP_S3_BUCKET')) problem('BACKUP_S3_BUCKET', `is required when ${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} set`);
    if (provider !== 'aws' && !isSet('BACKUP_S3_ENDPOINT')) {
      problem('BACKUP_S3_ENDPOINT', `is required for BACKUP_S3_PROVIDER=${provider} (e.g. https://<account>.r2.cloudflarestorage.com, http://minio:9000)`);
    }
    const part = values.BACKUP_S3_PART_SIZE;
    if (part !== undefined && (part < MIN_PART_SIZE || part > MAX_PART_SIZE)) {
      problem('BACKUP_S3_PART_SIZE', `must be from 5MiB to 5GiB (S3's multipart limits), got ${part} bytes`);
    }
    if (!values.BACKUP_S3_BUCKET) return undefined;
    return {
      bucket: values.BACKUP_S3_BUCKET,
      ...(values.BACKUP_S3_PREFIX ? { prefix: values.BACKUP_S3_PREFIX } : {}),
      ...(values.BACKUP_S3_REGION !== undefined ? { region: values.BACKUP_S3_REGION } : {}),
      ...(values.BACKUP_S3_ENDPOINT !== undefined ? { endpoint: values.BACKUP_S3_ENDPOINT } : {}),
      forcePathStyle: values.BACKUP_S3_FORCE_PATH_STYLE ?? provider === 'minio',
      provider,
      ...(part !== undefined ? { partSizeBytes: part } : {}),
      ...(values.BACKUP_S3_QUEUE_SIZE !== undefined ? { queueSize: values.BACKUP_S3_QUEUE_SIZE } : {}),
    };
  },
  // BACKUP_LEADER_ELECTION=s3: a lease object in the bucket, written with conditional writes.
  async leaderElector(config, settings) {
    const { createS3LeaderElector } = await import('./s3-leader-lease.js');
    return createS3LeaderElector({ storage: config, name: settings.name, ttlMs: settings.ttlMs });
  },
  async create(config) {
    const { createS3Storage } = await import('./s3-storage.js');
    return createS3Storage(config);
  },
});
