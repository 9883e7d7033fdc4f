import { ConfigError, loadEnv } from '@scholaria/backup-core';
import { postgresPitrEnvGroup } from '@scholaria/backup-postgres/env';

/**
 * Point-in-time recovery settings as the wal-* commands, health-check and prune read them
 * (also with a config file). The variables and their checks are `postgresPitrEnvGroup` in
 * @scholaria/backup-postgres (the one place: docs, did-you-mean, validation); this reader only
 * adds the DATABASE_URL fallback, the spool default and PG_BIN_DIR.
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `BACKUP_PITR` | `off` | `on`: every backup also takes a pg_basebackup (component `postgres-pitr`) |
 * | `BACKUP_PITR_URL` | `DATABASE_URL` | connection of a role with REPLICATION for pg_basebackup / pg_receivewal |
 * | `BACKUP_WAL_MAX_LAG` | `15m` | health fails when the newest archived WAL file is older than this |
 * | `BACKUP_WAL_SLOT` | `scholaria_backup` | replication slot of `wal-receive` |
 * | `BACKUP_WAL_SPOOL_DIR` | `/var/lib/scholaria-backup/wal-spool` | local folder `wal-receive` streams into |
 */
export interface PitrEnv {
  enabled: boolean;
  url?: string;
  maxLagMs: number;
  slot: string;
  spoolDir: string;
  binDir?: string;
}

export const DEFAULT_WAL_SPOOL_DIR = '/var/lib/scholaria-backup/wal-spool';

export function readPitrEnv(env: Record<string, string | undefined>): PitrEnv {
  let settings;
  try {
    settings = loadEnv([postgresPitrEnvGroup], env, { withoutEngine: true }).configOf(postgresPitrEnvGroup)!;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(`Invalid point-in-time recovery configuration: ${error.issues.length} problem${error.issues.length === 1 ? '' : 's'} to fix`, error.issues, {
      hint: 'See docs/point-in-time-recovery.md for the BACKUP_PITR and BACKUP_WAL_* variables.',
    });
  }
  const url = settings.url ?? (env.DATABASE_URL?.trim() || undefined);
  const binDir = env.PG_BIN_DIR?.trim() || undefined;
  return {
    enabled: settings.enabled,
    ...(url ? { url } : {}),
    maxLagMs: settings.maxLagMs,
    slot: settings.slot,
    spoolDir: settings.spoolDir ?? DEFAULT_WAL_SPOOL_DIR,
    ...(binDir ? { binDir } : {}),
  };
}
