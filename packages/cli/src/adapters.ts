import { ageCodecEnv } from '@scholaria/backup-age/env';
import { emailNotifierEnv } from '@scholaria/backup-email/env';
import { fsStorageEnv } from '@scholaria/backup-fs/env';
import { postgresPitrEnvGroup, postgresSourceEnv } from '@scholaria/backup-postgres/env';
import { qdrantSourceEnv } from '@scholaria/backup-qdrant/env';
import { redisSourceEnv } from '@scholaria/backup-redis/env';
import { s3StorageEnv } from '@scholaria/backup-s3/env';
import { webhookNotifierEnv } from '@scholaria/backup-webhook/env';
import { drillEnvGroup, leaderEnvGroup, type AnyAdapterDescriptor } from '@scholaria/backup-core';
import { cliEnvGroup } from './cli-env.js';

/**
 * The adapters `scholaria-backup` configures from `.env`, in the order they are created
 * (storages, then sources in `BACKUP_COMPONENTS` order, then codecs and notifiers). Each is the
 * adapter package's `./env` descriptor, which loads the implementation only when it is used.
 * A third-party adapter is one more entry: `runCli(argv, io, { adapters: [...SHIPPED_ADAPTERS, mine] })`.
 */
export const SHIPPED_ADAPTERS: readonly AnyAdapterDescriptor[] = Object.freeze([
  fsStorageEnv,
  s3StorageEnv,
  postgresSourceEnv,
  redisSourceEnv,
  qdrantSourceEnv,
  ageCodecEnv,
  emailNotifierEnv,
  webhookNotifierEnv,
] as AnyAdapterDescriptor[]);

/** Everything the CLI reads from the environment: its own settings, then the adapters. */
export const envDescriptorsOf = (adapters: readonly AnyAdapterDescriptor[] = SHIPPED_ADAPTERS) => [cliEnvGroup, drillEnvGroup, leaderEnvGroup, postgresPitrEnvGroup, ...adapters];
