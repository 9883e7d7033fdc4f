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
    /**
     * Restore into this Redis instead of the configured one (beside the live data). Credentials
     * go in the URL (`redis://:PASSWORD@host:port`); a database in its path acts as `targetDb`.
     */
    targetUrl: z
      .string()
      .refine((u) => /^rediss?:\/\//i.test(u), { message: 'must start with redis:// or rediss://' })
      .optional(),
    /** Restore the (single) selected database of the dump into this database index. */
    targetDb: databaseSchema.optional(),
    /** Restore dump database N into database dbMap[N] (`{ "0": 5 }`); only the databases named are restored. */
    dbMap: z.record(z.string().regex(/^\d{1,7}$/, 'keys must be database numbers'), databaseSchema).optional(),
    /**
     * true (default): the keys are restored into an empty scratch database first and swapped in
     * (SWAPDB) only when every key was accepted, so a failure leaves the live data as it was.
     * false: the old way, straight into the live database (a failure leaves it half-filled).
     */
    allOrNothing: z.boolean().optional(),
    /** Empty databases the all-or-nothing restore may stage into (default: the highest empty ones). */
    scratchDbs: z.array(databaseSchema).min(1).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.targetDb !== undefined && o.dbMap !== undefined) ctx.addIssue({ code: 'custom', path: ['targetDb'], message: 'set either targetDb or dbMap, not both' });
    if (o.dbMap) {
      const targets = Object.values(o.dbMap);
      if (new Set(targets).size !== targets.length) ctx.addIssue({ code: 'custom', path: ['dbMap'], message: 'maps two databases of the dump to the same target database' });
    }
  });

export type RedisRestoreOptions = z.input<typeof redisRestoreOptionsSchema>;

/** Parses with `schema` or throws a ConfigError listing each issue as `<root>.<field>: <problem>`. */
function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, message: string, root: string, hint: string): z.output<S> {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => `${[root, ...issue.path.map(String)].join('.')}: ${issue.message}`);
  throw new ConfigError(message, issues, { component: 'redis', hint });
}

/** The database a `redis://host/N` URL names, or undefined for none (`redis://host` or `/`). */
export function urlDatabase(url: string): number | undefined {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const m = /^\/(\d{1,7})\/?$/.exec(path);
  return m ? Number(m[1]) : undefined;
}

export function parseSourceOptions(input: unknown): ResolvedRedisSourceOptions {
  const options = parseOrThrow(redisSourceOptionsSchema, input, 'Invalid options for createRedisSource', 'redis', 'Fix the named option(s); see the @scholaria/backup-redis README for every option.');
  // A URL that names a database (`redis://host:6379/0`) means that database only, for backup
  // and restore alike; without one (or with `databases` set) every database is meant.
  const db = options.url ? urlDatabase(options.url) : undefined;
  if (db !== undefined) {
    if (options.databases && !(options.databases.length === 1 && options.databases[0] === db)) {
      throw new ConfigError('Invalid options for createRedisSource', [`redis.url: names database ${db} but redis.databases is [${options.databases.join(', ')}]`], {
        component: 'redis',
        hint: 'Drop the database from the URL (redis://host:port) and keep databases, or drop databases.',
      });
    }
    return { ...options, databases: [db] };
  }
  return options;
}

export function parseRestoreOptions(input: unknown): z.output<typeof redisRestoreOptionsSchema> {
  return parseOrThrow(
    redisRestoreOptionsSchema,
    input,
    'Invalid restore options for the redis component',
    'componentOptions.redis',
    'Use { mode: "flush" | "merge", databases?: number[], targetUrl?: "redis://...", targetDb?: number, dbMap?: { "0": 5 }, allOrNothing?: boolean, scratchDbs?: number[], targetRdbVersion?: number, batchSize?: number }.',
  );
}
