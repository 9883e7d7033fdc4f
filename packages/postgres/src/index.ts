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
export { postgresSourceEnv, type PostgresEnvConfig } from './env.js';
