export { createPostgresSource, type PostgresSource } from './postgres-source.js';
export type { KeptDatabase } from './kept-databases.js';
export {
  postgresOptionsSchema,
  restoreOverridesSchema,
  parsePostgresOptions,
  SSL_MODES,
  RESTORE_MODES,
  COMPRESSION_MODES,
  type PostgresSourceOptions,
  type ResolvedPostgresOptions,
  type PostgresRestoreOptions,
  type RestoreMode,
  type CompressionMode,
  type SslMode,
} from './postgres-options.js';
export {
  buildPgDumpArgs,
  buildPgRestoreArgs,
  buildPgDumpallArgs,
  conninfoForDatabase,
  conninfoValue,
  type PgDumpArgsOptions,
  type PgRestoreArgsOptions,
  type PgDumpallArgsOptions,
  type ConnectionArgs,
} from './pg-dump-args.js';
export {
  postgresBackupMetadataSchema,
  artifactBaseName,
  type PostgresBackupMetadata,
  type DatabaseMetadata,
} from './backup-metadata.js';
export { compressionPlan, CUSTOM_DUMP_CONTENT_TYPE, DIRECTORY_DUMP_CONTENT_TYPE, GLOBALS_CONTENT_TYPE, GLOBALS_ARTIFACT } from './postgres-backup.js';
export { parsePgVersion } from './pg-tools.js';
export { createPostgresDrillTarget, type PostgresDrillOptions } from './drill-target.js';
export { createPostgresBaseBackupSource, BASE_BACKUP_ARTIFACT, PITR_COMPONENT, type BaseBackupSourceOptions } from './wal/base-backup-source.js';
export { WalArchive, WAL_PREFIX, walRecordSchema, type WalRecord, type WalArchiveOptions, type PushResult, type ArchivedWalFile } from './wal/wal-archive.js';
export { planWal, latestTimeline, type WalPlan, type RecoveryTarget, type BaseBackupPoint } from './wal/wal-plan.js';
export { recoverySettings, basePointOf, DEFAULT_RESTORE_COMMAND, type PitrRestoreOptions } from './wal/pitr-restore.js';
export { buildPgBasebackupArgs, parseBasebackupPoints } from './wal/pg-basebackup.js';
export * from './wal/wal-names.js';
export { checkWalContinuity, walToKeep, type WalContinuity } from './wal/wal-continuity.js';
export { receiveWal, buildPgReceivewalArgs, type ReceiveWalOptions } from './wal/wal-receive.js';
export { postgresSourceEnv, type PostgresEnvConfig } from './env.js';
export { postgresPitrEnvGroup, type PitrEnvSettings } from './wal/pitr-env-group.js';
export { createPostgresLeaderElector, advisoryLockKey, LEADER_APPLICATION_NAME, type PostgresLeaderElectorOptions } from './leader-lock.js';
