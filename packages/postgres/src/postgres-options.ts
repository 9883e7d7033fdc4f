import { ConfigError } from '@scholaria/backup-core';
import { z } from 'zod';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const RESTORE_MODES = ['swap', 'in-place', 'new-database'] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

export const COMPRESSION_MODES = ['zstd', 'gzip', 'pg', 'none'] as const;
export type CompressionMode = (typeof COMPRESSION_MODES)[number];

/** A connected or connectable `pg` Pool or Client; only duck-typed so two `pg` copies both fit. */
export interface PgQueryable {
  query(...args: never[]): unknown;
}

const identifierList = z.array(z.string().min(1, 'must not be empty').refine((s) => !s.includes('\0'), 'must not contain NUL')).default([]);

const pathString = z
  .string()
  .min(1, 'must be a non-empty path')
  .refine((p) => !p.includes('\0'), 'must not contain a NUL byte');

export const postgresOptionsSchema = z
  .object({
    /** Component name in manifests and paths. */
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, 'must start with a lowercase letter and use only a-z, 0-9 and "-"')
      .default('postgres'),
    /** postgres://user:password@host:port/database?sslmode=...; its database is the one backed up. */
    url: z
      .string()
      .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must start with postgres:// or postgresql://')
      .refine((u) => URL.canParse(u), 'is not a valid URL (percent-encode special characters in the password; for a unix socket use postgresql://user@localhost/db?host=/run/postgresql)')
      .optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    /** Read at call time; a function lets a secret store rotate it. */
    password: z.union([z.string(), z.custom<() => string | Promise<string>>((v) => typeof v === 'function')]).optional(),
    database: z.string().min(1).optional(),
    /** More than one database, or 'all' (every database that accepts connections except templates). */
    databases: z.union([z.literal('all'), z.array(z.string().min(1)).min(1, 'must name at least one database')]).optional(),
    /** A ready `pg` Pool or Client; its connection settings are reused for pg_dump and pg_restore. */
    client: z
      .custom<PgQueryable>(
        (v) => typeof v === 'object' && v !== null && typeof (v as { query?: unknown }).query === 'function',
        'must be a pg Pool or Client',
      )
      .optional(),
    /** Database used for CREATE/ALTER DATABASE during restore and for globals. */
    maintenanceDatabase: z.string().min(1).default('postgres'),
    sslmode: z.enum(SSL_MODES).optional(),
    sslrootcert: pathString.optional(),
    sslcert: pathString.optional(),
    sslkey: pathString.optional(),
    /** Folder holding pg_dump, pg_restore and pg_dumpall; default: newest /usr/lib/postgresql/<v>/bin, then PATH. */
    binDir: pathString.optional(),
    pgDumpPath: pathString.optional(),
    pgRestorePath: pathString.optional(),
    pgDumpallPath: pathString.optional(),
    schemas: identifierList,
    excludeSchemas: identifierList,
    tables: identifierList,
    excludeTables: identifierList,
    excludeTableData: identifierList,
    noOwner: z.boolean().default(false),
    noAcl: z.boolean().default(false),
    /** Compression of the dump: zstd outside pg_dump (default), gzip outside, pg_dump's own, or none. */
    compression: z.enum(COMPRESSION_MODES).default('zstd'),
    /** Level for the chosen compression; defaults: zstd 3, gzip 1, pg 6 (zlib). */
    compressionLevel: z.number().int().min(0).max(22).optional(),
    /** Backup jobs: above 1 dumps in directory format with pg_dump -j and stores it as a tar. */
    jobs: z.number().int().min(1).max(64).default(1),
    /** Roles and tablespaces with pg_dumpall --globals-only: 'auto' falls back with a warning, 'required' fails. */
    globals: z.enum(['auto', 'required', 'off']).default('auto'),
    /** Per-table row counts in the manifest: exact (inside the dump's snapshot), planner estimates, or none. */
    rowCounts: z.enum(['exact', 'estimate', 'off']).default('exact'),
    /** With rowCounts 'exact', tables the planner estimates above this many rows are estimated instead. */
    exactCountMaxRows: z.number().int().min(0).optional(),
    /** Where parallel dumps and `pg_restore -j` spool; default the OS temp dir. */
    tempDir: pathString.optional(),
    /** Restore defaults, overridable per restore through the engine's component options. */
    restore: z
      .object({
        mode: z.enum(RESTORE_MODES).default('swap'),
        /** pg_restore -j; used where the mode allows (not in-place). */
        jobs: z.number().int().min(1).max(64).default(1),
        /** new-database (or any mode): restore under this name. */
        targetDatabase: z.string().min(1).optional(),
        /** swap: keep the replaced database under a dated name (default) or drop it. */
        keepPrevious: z.boolean().default(true),
        /** Restore globals (roles, tablespaces) missing on the target first. */
        globals: z.boolean().default(true),
        /** Compare per-table row counts with the manifest after restore. */
        verifyRowCounts: z.boolean().default(true),
        noOwner: z.boolean().default(false),
        noAcl: z.boolean().default(false),
      })
      .strict()
      .default({ mode: 'swap', jobs: 1, keepPrevious: true, globals: true, verifyRowCounts: true, noOwner: false, noAcl: false }),
    /** Seconds to wait for a connection. */
    connectTimeoutSeconds: z.number().int().min(1).max(600).default(10),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (!o.url && !o.client && !o.host && !o.database && !o.databases) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'give url, client, or host/user/database fields' });
    }
    if (o.url && o.client) {
      ctx.addIssue({ code: 'custom', path: ['client'], message: 'give either url or client, not both' });
    }
    if (o.url && (o.host || o.port || o.user)) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'host, port and user come from url when url is given' });
    }
    if (o.database && o.databases) {
      ctx.addIssue({ code: 'custom', path: ['databases'], message: 'give database or databases, not both' });
    }
    if (o.compression === 'none' && o.compressionLevel !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['compressionLevel'], message: 'has no meaning with compression "none"' });
    }
    if (o.compressionLevel !== undefined) {
      const max = o.compression === 'zstd' ? 19 : 9;
      const min = o.compression === 'pg' ? 0 : 1;
      if (o.compressionLevel < min || o.compressionLevel > max) {
        ctx.addIssue({
          code: 'custom',
          path: ['compressionLevel'],
          message: `must be ${min}..${max} for compression "${o.compression}"`,
        });
      }
    }
    if (o.pgDumpPath && o.binDir) {
      ctx.addIssue({ code: 'custom', path: ['pgDumpPath'], message: 'give binDir or the individual tool paths, not both' });
    }
  });

export type PostgresSourceOptions = z.input<typeof postgresOptionsSchema>;
export type ResolvedPostgresOptions = z.output<typeof postgresOptionsSchema>;

export const restoreOverridesSchema = z
  .object({
    mode: z.enum(RESTORE_MODES).optional(),
    jobs: z.number().int().min(1).max(64).optional(),
    targetDatabase: z.string().min(1).optional(),
    keepPrevious: z.boolean().optional(),
    globals: z.boolean().optional(),
    verifyRowCounts: z.boolean().optional(),
    noOwner: z.boolean().optional(),
    noAcl: z.boolean().optional(),
  })
  .strict();

export type PostgresRestoreOptions = z.input<typeof restoreOverridesSchema>;

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(options)'}: ${issue.message}`);
}

export function parsePostgresOptions(options: unknown): ResolvedPostgresOptions {
  const result = postgresOptionsSchema.safeParse(options);
  if (result.success) return result.data;
  throw new ConfigError('createPostgresSource: invalid options', issuesOf(result.error), {
    hint: 'pass at least { url: "postgresql://user@host:5432/db" }; see the @scholaria/backup-postgres README for every option',
    component: 'postgres',
  });
}

export function parseRestoreOverrides(options: unknown, component: string): PostgresRestoreOptions {
  const result = restoreOverridesSchema.safeParse(options ?? {});
  if (result.success) return result.data;
  throw new ConfigError(`${component}: invalid restore options`, issuesOf(result.error), {
    hint: 'restore options are { mode?: "swap" | "in-place" | "new-database", targetDatabase?, jobs?, keepPrevious?, globals?, verifyRowCounts?, noOwner?, noAcl? }',
    component,
  });
}
