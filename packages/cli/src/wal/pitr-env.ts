import { ConfigError, parseDurationMs } from '@scholaria/backup-core';

/**
 * Point-in-time recovery settings as the wal-* commands, health-check and prune read them
 * (also with a config file). The variables are declared (docs, did-you-mean, loadEnv
 * validation) by `postgresPitrEnvGroup` in @scholaria/backup-postgres; this reader adds the
 * DATABASE_URL fallback and the spool default.
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

export function readPitrEnv(env: Record<string, string | undefined>): PitrEnv {
  const issues: string[] = [];
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const flag = get('BACKUP_PITR')?.toLowerCase();
  let enabled = false;
  if (flag !== undefined) {
    if (['on', 'true', '1', 'yes'].includes(flag)) enabled = true;
    else if (!['off', 'false', '0', 'no'].includes(flag)) issues.push(`BACKUP_PITR: expected on or off, got "${flag}"`);
  }
  let maxLagMs = 15 * 60_000;
  const lag = get('BACKUP_WAL_MAX_LAG');
  if (lag !== undefined) {
    try {
      maxLagMs = parseDurationMs(lag, "BACKUP_WAL_MAX_LAG");
    } catch {
      issues.push(`BACKUP_WAL_MAX_LAG: expected a duration such as 15m, 1h or 90s, got "${lag}"`);
    }
  }
  const slot = get('BACKUP_WAL_SLOT') ?? 'scholaria_backup';
  if (!/^[a-z0-9_]{1,63}$/.test(slot)) issues.push(`BACKUP_WAL_SLOT: a replication slot name is lower-case letters, digits and _ (at most 63), got "${slot}"`);
  if (issues.length > 0) {
    throw new ConfigError(`Invalid point-in-time recovery configuration: ${issues.length} problem${issues.length === 1 ? '' : 's'} to fix`, issues, {
      hint: 'See docs/point-in-time-recovery.md for the BACKUP_PITR and BACKUP_WAL_* variables.',
    });
  }
  const url = get('BACKUP_PITR_URL') ?? get('DATABASE_URL');
  const binDir = get('PG_BIN_DIR');
  return {
    enabled,
    ...(url ? { url } : {}),
    maxLagMs,
    slot,
    spoolDir: get('BACKUP_WAL_SPOOL_DIR') ?? '/var/lib/scholaria-backup/wal-spool',
    ...(binDir ? { binDir } : {}),
  };
}
