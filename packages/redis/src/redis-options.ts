import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ConfigError } from '@scholaria/backup-core';

export type SecretValue = string | (() => string | Promise<string>);

const secretSchema = z.union([
  z.string(),
  z.custom<() => string | Promise<string>>((v) => typeof v === 'function', { message: 'must be a string or a function returning one' }),
]);

const tlsSchema = z.union([
  z.boolean(),
  z.custom<TlsConnectionOptions>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
    message: 'must be true or node:tls connection options',
  }),
]);

function isRedisClient(value: unknown): value is Redis {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.duplicate === 'function' && typeof v.pipeline === 'function' && v.isCluster !== true;
}

const databaseSchema = z.number().int().min(0).max(1_000_000);

export const redisRestoreModeSchema = z.enum(['flush', 'merge']);

export const redisSourceOptionsSchema = z
  .object({
    /** Component name in manifests and paths; set it when backing up more than one Redis. */
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, 'must be lower case letters, digits and dashes, starting with a letter')
      .default('redis'),
    url: z
      .string()
      .refine((u) => /^rediss?:\/\//i.test(u), { message: 'must start with redis:// or rediss://' })
      .optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** Unix socket path. */
    path: z.string().min(1).optional(),
    username: z.string().min(1).optional(),
    password: secretSchema.optional(),
    tls: tlsSchema.optional(),
    sentinels: z
      .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }))
      .min(1)
      .optional(),
    /** Sentinel master group name (ioredis `name`). */
    sentinelName: z.string().min(1).optional(),
    sentinelUsername: z.string().min(1).optional(),
    sentinelPassword: secretSchema.optional(),
    sentinelTls: tlsSchema.optional(),
    client: z
      .custom<Redis>(isRedisClient, { message: 'must be an ioredis Redis instance (Cluster clients are not supported)' })
      .optional(),
    mode: z.enum(['logical', 'rdb', 'auto']).default('logical'),
    databases: z.array(databaseSchema).min(1).optional(),
    scanCount: z.number().int().min(1).max(1_000_000).default(2000),
    batchSize: z.number().int().min(1).max(100_000).default(500),
    /** Round trips kept queued on the connection during a logical backup. */
    pipelineDepth: z.number().int().min(1).max(64).default(4),
    maxBatchBytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(64 * 1024 * 1024),
    connectTimeoutMs: z.number().int().min(100).default(10_000),
    /** Fail when the server sends nothing for this long while an answer is awaited (RDB keep-alives count). */
    idleTimeoutMs: z.number().int().min(1000).default(60_000),
    restoreMode: redisRestoreModeSchema.default('flush'),
  })
  .strict()
  .superRefine((o, ctx) => {
    const ways = (['url', 'host', 'path', 'sentinels', 'client'] as const).filter((k) => o[k] !== undefined);
    if (ways.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'set one of url, host, path, sentinels or client' });
    } else if (ways.length > 1) {
      ctx.addIssue({ code: 'custom', path: [ways[1]!], message: `set only one of url, host, path, sentinels or client (got ${ways.join(', ')})` });
    }
    if (o.sentinels && !o.sentinelName) {
      ctx.addIssue({ code: 'custom', path: ['sentinelName'], message: 'is required with sentinels (the master group name)' });
    }
    if (o.client && (o.username !== undefined || o.password !== undefined || o.tls !== undefined || o.port !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['client'], message: 'carries its own connection settings; do not combine it with username, password, tls or port' });
    }
    if (o.databases && new Set(o.databases).size !== o.databases.length) {
      ctx.addIssue({ code: 'custom', path: ['databases'], message: 'lists a database twice' });
    }
  });

export type RedisSourceOptions = z.input<typeof redisSourceOptionsSchema>;
export type ResolvedRedisSourceOptions = z.output<typeof redisSourceOptionsSchema>;

/** Options accepted by `engine.restore({ componentOptions: { redis: {...} } })`. */
export const redisRestoreOptionsSchema = z
  .object({
    /** 'flush' empties each database of the dump before restoring it; 'merge' keeps keys not in the dump. */
    mode: redisRestoreModeSchema.optional(),
    /** Restore only these databases of the dump. */
    databases: z.array(databaseSchema).min(1).optional(),
    /** The highest RDB version the target reads, when its reported version misleads (forks) or to test. */
    targetRdbVersion: z.number().int().min(1).max(65535).optional(),
    batchSize: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();

export type RedisRestoreOptions = z.input<typeof redisRestoreOptionsSchema>;

/** Parses with `schema` or throws a ConfigError listing each issue as `<root>.<field>: <problem>`. */
function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, message: string, root: string, hint: string): z.output<S> {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => `${[root, ...issue.path.map(String)].join('.')}: ${issue.message}`);
  throw new ConfigError(message, issues, { component: 'redis', hint });
}

export function parseSourceOptions(input: unknown): ResolvedRedisSourceOptions {
  return parseOrThrow(redisSourceOptionsSchema, input, 'Invalid options for createRedisSource', 'redis', 'Fix the named option(s); see the @scholaria/backup-redis README for every option.');
}

export function parseRestoreOptions(input: unknown): z.output<typeof redisRestoreOptionsSchema> {
  return parseOrThrow(
    redisRestoreOptionsSchema,
    input,
    'Invalid restore options for the redis component',
    'componentOptions.redis',
    'Use { mode: "flush" | "merge", databases?: number[], targetRdbVersion?: number, batchSize?: number }.',
  );
}
