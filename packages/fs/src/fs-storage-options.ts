import { ConfigError } from '@scholaria/backup-core';
import { z } from 'zod';

const mode = (owner: number, label: string) =>
  z
    .number()
    .int()
    .min(0)
    .max(0o7777)
    .refine((m) => (m & owner) === owner, {
      message: `must keep the owner's ${label} bits (at least 0o${owner.toString(8)}), or the storage cannot read back what it wrote`,
    });

export const fsStorageOptionsSchema = z
  .object({
    /** Directory that holds the backup sets; created (0700) on first write. */
    root: z
      .string()
      .min(1, 'must be a non-empty directory path')
      .refine((r) => !r.includes('\0'), 'must not contain a NUL byte'),
    fileMode: mode(0o600, 'read/write').default(0o600),
    dirMode: mode(0o700, 'read/write/search').default(0o700),
    fsync: z.boolean().default(true),
    staleTempAfterMs: z.number().int().min(0).default(3_600_000),
  })
  .strict();

export type FsStorageOptions = z.input<typeof fsStorageOptionsSchema>;
export type ResolvedFsStorageOptions = z.output<typeof fsStorageOptionsSchema>;

export function parseFsStorageOptions(options: unknown): ResolvedFsStorageOptions {
  const result = fsStorageOptionsSchema.safeParse(options);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.join('.') : '(options)';
    return `${field}: ${issue.message}`;
  });
  throw new ConfigError('createFsStorage: invalid options', issues, {
    hint: 'pass at least { root: "/backup" }; see the @scholaria/backup-fs README for every option',
  });
}
