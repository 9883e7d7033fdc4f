import { BackupError } from '@scholaria/backup-core';
import { z } from 'zod';

const tableCount = z.object({ schema: z.string(), name: z.string(), rows: z.number().int().nonnegative(), exact: z.boolean() });

export const databaseMetadataSchema = z.object({
  name: z.string().min(1),
  artifact: z.string().min(1),
  /** custom: a pg_dump -Fc stream; directory-tar: pg_dump -Fd folder stored as a tar. */
  format: z.enum(['custom', 'directory-tar']),
  sizeBytes: z.number().nonnegative(),
  encoding: z.string(),
  collate: z.string(),
  ctype: z.string(),
  localeProvider: z.string().default('c'),
  icuLocale: z.string().nullable().default(null),
  owner: z.string(),
  acl: z.string().nullable(),
  settings: z.array(z.string()).default([]),
  comment: z.string().nullable().default(null),
  extensions: z.array(z.object({ name: z.string(), version: z.string(), schema: z.string() })).default([]),
  /** Row counts taken inside the dump's snapshot (exact) or estimated. */
  tables: z.array(tableCount).default([]),
  largeObjects: z.number().int().nonnegative().optional(),
  /** Whether the counts were taken inside the same snapshot as the dump. */
  snapshot: z.boolean(),
  archiveVersion: z.string().optional(),
});

export const postgresBackupMetadataSchema = z.object({
  serverVersion: z.string(),
  serverVersionNum: z.number().int(),
  pgDumpVersion: z.string(),
  pgDumpMajor: z.number(),
  compression: z.object({ mode: z.enum(['zstd', 'gzip', 'pg', 'none']), level: z.number().optional() }),
  /** Include filters make a partial dump: swap mode would replace the whole database with it. */
  partial: z.boolean().default(false),
  filters: z.record(z.string(), z.array(z.string())).default({}),
  noOwner: z.boolean().default(false),
  noAcl: z.boolean().default(false),
  globals: z
    .object({ artifact: z.string(), rolePasswords: z.boolean() })
    .nullable()
    .default(null),
  databases: z.array(databaseMetadataSchema).min(1),
});

export type DatabaseMetadata = z.output<typeof databaseMetadataSchema>;
export type PostgresBackupMetadata = z.output<typeof postgresBackupMetadataSchema>;

export function parseBackupMetadata(metadata: unknown, component: string): PostgresBackupMetadata {
  const result = postgresBackupMetadataSchema.safeParse(metadata);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(metadata)'}: ${i.message}`);
  throw new BackupError('MANIFEST_INVALID', `${component}: the manifest's postgres metadata is not readable: ${issues.join('; ')}`, {
    component,
    hint: 'this set was not written by @scholaria/backup-postgres (or the manifest was edited); restore its artifacts by hand with pg_restore',
  });
}

/**
 * A file name for a database's artifact: letters, digits, '.', '_' and '-' stay, anything else
 * (spaces, quotes, '/', non-ASCII) is percent-encoded, so every database name maps to one safe,
 * reversible path segment.
 */
export function artifactBaseName(database: string): string {
  const encoded = Array.from(new TextEncoder().encode(database))
    .map((b) => {
      const ch = String.fromCharCode(b);
      return /[A-Za-z0-9_-]/.test(ch) || (ch === '.' && b !== 0) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  // A leading dot would make a hidden file (and '.'/'..' are not valid path segments).
  return encoded.startsWith('.') ? `%2E${encoded.slice(1)}` : encoded;
}

/** Quotes a word for a POSIX shell (used only in the human-readable restore hints). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
