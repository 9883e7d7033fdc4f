import { defineEnvGroup, envDirectory, envIssue, envUrl, parseDurationMs } from '@scholaria/backup-core';
import { z } from 'zod';

export interface PitrEnvSettings {
  enabled: boolean;
  url?: string;
  maxLagMs: number;
  slot: string;
  spoolDir?: string;
}

const onOff = z.string().transform((s, ctx) => {
  const v = s.toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(v)) return true;
  if (['off', 'false', '0', 'no'].includes(v)) return false;
  return envIssue(ctx, 'expected on or off');
});

const duration = z.string().transform((s, ctx) => {
  try {
    return parseDurationMs(s, 'BACKUP_WAL_MAX_LAG');
  } catch {
    return envIssue(ctx, 'expected a duration such as 15m, 1h or 90s');
  }
});

const slotName = z.string().transform((s, ctx) => (/^[a-z0-9_]{1,63}$/.test(s) ? s : envIssue(ctx, 'a replication slot name is lower-case letters, digits and _ (at most 63)')));

/**
 * Point-in-time recovery's `.env` variables (the base backup source and the WAL archive). The
 * CLI adds the postgres-pitr source when BACKUP_PITR is on; see docs/point-in-time-recovery.md.
 */
export const postgresPitrEnvGroup = defineEnvGroup({
  name: 'postgres-pitr',
  title: 'PostgreSQL point-in-time recovery (`@scholaria/backup-postgres`, `wal-*` commands)',
  env: {
    BACKUP_PITR: { schema: onOff, default: '`off`', doc: '`on`: every backup also takes a `pg_basebackup` (component `postgres-pitr`) for point-in-time recovery' },
    BACKUP_PITR_URL: {
      schema: envUrl(['postgres:', 'postgresql:'], 'postgresql://replicator:password@host:5432/postgres'),
      url: true,
      default: '`DATABASE_URL`',
      doc: 'connection of a role with `REPLICATION` for `pg_basebackup` and `wal-receive`',
    },
    BACKUP_WAL_MAX_LAG: { schema: duration, default: '`15m`', doc: 'health-check fails when the newest archived WAL file is older than this' },
    BACKUP_WAL_SLOT: { schema: slotName, default: '`scholaria_backup`', doc: 'replication slot `wal-receive` creates and streams from' },
    BACKUP_WAL_SPOOL_DIR: { schema: envDirectory, path: true, default: '`/var/lib/scholaria-backup/wal-spool`', doc: 'local folder `wal-receive` streams into before pushing' },
  },
  configure: ({ values }): PitrEnvSettings => ({
    enabled: values.BACKUP_PITR ?? false,
    ...(values.BACKUP_PITR_URL ? { url: values.BACKUP_PITR_URL } : {}),
    maxLagMs: values.BACKUP_WAL_MAX_LAG ?? 15 * 60_000,
    slot: values.BACKUP_WAL_SLOT ?? 'scholaria_backup',
    ...(values.BACKUP_WAL_SPOOL_DIR ? { spoolDir: values.BACKUP_WAL_SPOOL_DIR } : {}),
  }),
});
