import { ConfigError, type BackupSource } from '@scholaria/backup-core';
import { readPitrEnv } from './pitr-env.js';

/** With BACKUP_PITR=on: the pg_basebackup source beside the pg_dump one. */
export async function pitrSourcesFromEnv(env: Record<string, string | undefined>): Promise<BackupSource[]> {
  const pitr = readPitrEnv(env);
  if (!pitr.enabled) return [];
  if (!pitr.url) {
    throw new ConfigError('Invalid point-in-time recovery configuration: 1 problem to fix', ['BACKUP_PITR: on needs BACKUP_PITR_URL or DATABASE_URL (a role with REPLICATION)'], {
      hint: 'See docs/point-in-time-recovery.md.',
    });
  }
  const { createPostgresBaseBackupSource } = await import('@scholaria/backup-postgres');
  return [createPostgresBaseBackupSource({ url: pitr.url, ...(pitr.binDir ? { binDir: pitr.binDir } : {}) })];
}
