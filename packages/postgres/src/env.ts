import { defineAdapter, envPath, envUrl } from '@scholaria/backup-core';

export interface PostgresEnvConfig {
  url: string;
  pgDumpPath?: string;
  pgBinDir?: string;
}

/** The PostgreSQL source's `.env` descriptor: on when `DATABASE_URL` is set. */
export const postgresSourceEnv = defineAdapter({
  kind: 'source',
  name: 'postgres',
  title: 'PostgreSQL source (`@scholaria/backup-postgres`)',
  enabledBy: 'DATABASE_URL',
  env: {
    DATABASE_URL: {
      schema: envUrl(['postgres:', 'postgresql:'], 'postgresql://user:password@host:5432/scholaria'),
      url: true,
      doc: '`postgres://` or `postgresql://` URL; its database is backed up (the password is a secret)',
    },
    PG_DUMP_PATH: { schema: envPath, default: '`pg_dump` found in `PG_BIN_DIR` or the search', doc: 'path of `pg_dump`' },
    PG_BIN_DIR: { schema: envPath, default: 'newest `/usr/lib/postgresql/<v>/bin`, then `PATH`', doc: 'folder holding `pg_dump`, `pg_restore`, `pg_dumpall`' },
  },
  configure({ values }): PostgresEnvConfig | undefined {
    if (!values.DATABASE_URL) return undefined;
    return {
      url: values.DATABASE_URL,
      ...(values.PG_DUMP_PATH !== undefined ? { pgDumpPath: values.PG_DUMP_PATH } : {}),
      ...(values.PG_BIN_DIR !== undefined ? { pgBinDir: values.PG_BIN_DIR } : {}),
    };
  },
  // BACKUP_LEADER_ELECTION=postgres: a session advisory lock on the database being backed up.
  async leaderElector(config, settings) {
    const { createPostgresLeaderElector } = await import('./leader-lock.js');
    return createPostgresLeaderElector({ connection: { url: config.url }, name: settings.name, ttlMs: settings.ttlMs });
  },
  async create(config) {
    const { createPostgresSource } = await import('./postgres-source.js');
    return createPostgresSource({
      url: config.url,
      ...(config.pgDumpPath ? { pgDumpPath: config.pgDumpPath } : {}),
      ...(config.pgBinDir ? { binDir: config.pgBinDir } : {}),
    });
  },
});
export { postgresPitrEnvGroup, type PitrEnvSettings } from './wal/pitr-env-group.js';
