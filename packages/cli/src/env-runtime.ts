import {
  BackupError,
  ConfigError,
  createZstdCodec,
  secretsFromEnvConfig,
  type BackupEngineOptions,
  type BackupSource,
  type Codec,
  type EnvConfig,
  type Notifier,
  type Storage,
} from '@scholaria/backup-core';

export interface EnvEngineParts {
  options: BackupEngineOptions;
  secrets: string[];
}

/** Problems of one factory, each prefixed by what it configures (e.g. "DATABASE_URL: ..."). */
function collect<T>(issues: string[], label: string, make: () => T): T | undefined {
  try {
    return make();
  } catch (error) {
    if (error instanceof ConfigError || (BackupError.isInstance(error) && error.code === 'CONFIG_INVALID')) {
      const list = (error as ConfigError).issues?.length ? (error as ConfigError).issues : [error.message];
      for (const issue of list) issues.push(`${label}: ${issue}`);
      return undefined;
    }
    throw error;
  }
}

/**
 * Engine options from the environment (see loadEnvConfig's table): fs storage at BACKUP_DIR
 * plus S3 when BACKUP_S3_BUCKET is set, one source per component, tier retention, an age codec
 * for recipients/passphrase (identities only decrypt), email and webhook notifiers. Every
 * adapter problem is gathered into one ConfigError.
 */
export async function engineOptionsFromEnv(env: EnvConfig): Promise<EnvEngineParts> {
  // Adapters load on demand: the AWS SDK alone takes longer to load than most commands run.
  const { createFsStorage } = await import('@scholaria/backup-fs');
  const { createS3Storage } = env.s3 ? await import('@scholaria/backup-s3') : ({} as typeof import('@scholaria/backup-s3'));
  const { createPostgresSource } = env.postgres ? await import('@scholaria/backup-postgres') : ({} as typeof import('@scholaria/backup-postgres'));
  const { createRedisSource } = env.redis ? await import('@scholaria/backup-redis') : ({} as typeof import('@scholaria/backup-redis'));
  const { createQdrantSource } = env.qdrant ? await import('@scholaria/backup-qdrant') : ({} as typeof import('@scholaria/backup-qdrant'));
  const { createAgeCodec } = env.encryption ? await import('@scholaria/backup-age') : ({} as typeof import('@scholaria/backup-age'));
  const { createEmailNotifier } =
    env.notify.email.length > 0 && env.smtp ? await import('@scholaria/backup-email') : ({} as typeof import('@scholaria/backup-email'));
  const { notifierFromWebhookUrl } = env.notify.webhook ? await import('@scholaria/backup-webhook') : ({} as typeof import('@scholaria/backup-webhook'));
  const issues: string[] = [];
  const storages: Storage[] = [];
  const fs = collect(issues, 'BACKUP_DIR', () => createFsStorage({ root: env.backupDir }));
  if (fs) storages.push(fs);
  if (env.s3) {
    const s3 = env.s3;
    const storage = collect(issues, 'BACKUP_S3_*', () =>
      createS3Storage({
        bucket: s3.bucket,
        ...(s3.prefix ? { prefix: s3.prefix } : {}),
        ...(s3.region ? { region: s3.region } : {}),
        ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
        forcePathStyle: s3.forcePathStyle,
        provider: s3.provider,
      }),
    );
    if (storage) storages.push(storage);
  }

  const sources: BackupSource[] = [];
  for (const component of env.components) {
    let source: BackupSource | undefined;
    if (component === 'postgres' && env.postgres) {
      const pgConf = env.postgres;
      source = collect(issues, 'DATABASE_URL', () =>
        createPostgresSource({
          url: pgConf.url,
          ...(pgConf.pgDumpPath ? { pgDumpPath: pgConf.pgDumpPath } : {}),
          ...(pgConf.pgBinDir ? { binDir: pgConf.pgBinDir } : {}),
        }),
      );
    } else if (component === 'redis' && env.redis) {
      const url = env.redis.url;
      source = collect(issues, 'REDIS_URL', () => createRedisSource({ url }));
    } else if (component === 'qdrant' && env.qdrant) {
      const q = env.qdrant;
      source = collect(issues, 'QDRANT_URL', () => createQdrantSource({ url: q.url, ...(q.apiKey ? { apiKey: q.apiKey } : {}) }));
    }
    if (source) sources.push(source);
  }

  // Compression for artifacts whose source does not pick its own (Redis' logical stream);
  // postgres compresses with zstd itself, Qdrant snapshots are stored as they are.
  const codecs: Codec[] = [];
  const zstd = collect(issues, 'compression', () => createZstdCodec());
  if (zstd) codecs.push(zstd);
  const decoders: Codec[] = [];
  const enc = env.encryption;
  if (enc) {
    const encrypts = enc.recipients.length > 0 || enc.passphrase !== undefined;
    const age = collect(issues, 'BACKUP_ENCRYPTION_*', () =>
      createAgeCodec({
        ...(enc.recipients.length > 0 ? { recipients: enc.recipients } : {}),
        ...(enc.identity ? { identities: [enc.identity] } : {}),
        ...(enc.identityFile ? { identityFile: enc.identityFile } : {}),
        ...(enc.passphrase !== undefined ? { passphrase: enc.passphrase } : {}),
      }),
    );
    // A codec that only holds identities cannot encrypt: it decodes older sets.
    if (age) (encrypts ? codecs : decoders).push(age);
  }

  const notifiers: Notifier[] = [];
  const secrets = secretsFromEnvConfig(env);
  if (env.notify.email.length > 0 && env.smtp) {
    const smtp = env.smtp;
    const email = collect(issues, 'BACKUP_NOTIFY_EMAIL/SMTP_*', () =>
      createEmailNotifier({
        ...(smtp.url
          ? { url: smtp.url }
          : {
              host: smtp.host,
              port: smtp.port,
              secure: smtp.secure,
              ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
            }),
        from: env.notify.from,
        to: env.notify.email,
        on: env.notify.on,
      }),
    );
    if (email) notifiers.push(email);
    if (smtp.url) secrets.push(smtp.url);
  }
  if (env.notify.webhook) {
    const url = env.notify.webhook.url;
    const hook = collect(issues, 'BACKUP_NOTIFY_WEBHOOK', () => notifierFromWebhookUrl(url, { on: env.notify.on }));
    if (hook) notifiers.push(hook);
    secrets.push(url);
  }

  if (issues.length > 0) {
    throw new ConfigError(`Invalid environment configuration: ${issues.length} problem${issues.length > 1 ? 's' : ''} to fix`, issues, {
      hint: 'Fix the variables listed above in .env or the container environment; see docs/cli.md for what each accepts.',
    });
  }

  return {
    options: {
      sources,
      storage: storages,
      notifiers,
      retention: env.retention,
      codecs,
      decoders,
      setPrefix: env.setPrefix,
      timeZone: env.timeZone,
      concurrency: env.concurrency,
      minFreeBytes: env.minFreeDiskBytes,
      secrets: [...new Set(secrets)],
    },
    secrets: [...new Set(secrets)],
  };
}
