/**
 * Scholaria's backup configuration, built from the `.env` of the strategy document
 * (docs/ko/backup-strategy.md). `scholaria-backup` loads this file (the scripts/ wrappers pass
 * it with --config); every setting comes from environment variables so the same file serves
 * the host, the `backup` container and the tests.
 *
 *   DATABASE_URL               postgresql://user:pw@postgres:5432/scholaria; without it the URL is
 *                              built from POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and
 *                              POSTGRES_HOST/POSTGRES_PORT (the postgres image's own variables)
 *   REDIS_URL                  redis://redis:6379 (every logical database is backed up)
 *   QDRANT_URL, QDRANT_API_KEY http://qdrant:6333
 *   BACKUP_DIR                 /backup
 *   BACKUP_TIMEZONE            Asia/Seoul here (the library's default is UTC)
 *   BACKUP_DAILY/WEEKLY/MONTHLY_RETENTION   7 / 30 / 365 days
 *   BACKUP_DAILY/WEEKLY/MONTHLY_SCHEDULE    0 2 * * * / 0 3 * * 0 / 0 4 1 * *
 *   BACKUP_NOTIFY_EMAIL + SMTP_URL (or SMTP_HOST...)   email on success and failure
 *   BACKUP_NOTIFY_WEBHOOK      a Slack or Discord webhook URL (the kind is read from the host)
 *   BACKUP_S3_BUCKET, BACKUP_S3_*                      optional off-site copy
 *   BACKUP_ENCRYPTION_RECIPIENTS (age1...)             optional encryption at rest
 *
 * Every variable, with its default, is listed in docs/configuration.md.
 */
import {
  createZstdCodec,
  defineConfig,
  type BackupSource,
  type Codec,
  type Notifier,
  type ScholariaBackupConfig,
  type Storage,
} from '@scholaria/backup-core';
import { createAgeCodec } from '@scholaria/backup-age';
import { loadEnvConfig, secretsFromEnvConfig, type EnvConfig } from '@scholaria/backup-cli';
import { createEmailNotifier } from '@scholaria/backup-email';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createQdrantSource } from '@scholaria/backup-qdrant';
import { createRedisSource } from '@scholaria/backup-redis';
import { createS3Storage } from '@scholaria/backup-s3';
import { notifierFromWebhookUrl } from '@scholaria/backup-webhook';

type Env = Record<string, string | undefined>;

const blank = (v: string | undefined) => v === undefined || v.trim() === '';

/** Scholaria's defaults on top of the library's: Seoul time, and DATABASE_URL from POSTGRES_*. */
export function scholariaEnv(env: Env): Env {
  const out: Env = { ...env };
  if (blank(out.BACKUP_TIMEZONE)) out.BACKUP_TIMEZONE = 'Asia/Seoul';
  if (blank(out.DATABASE_URL) && !blank(out.POSTGRES_PASSWORD)) {
    const user = encodeURIComponent(out.POSTGRES_USER?.trim() || 'postgres');
    const password = encodeURIComponent(out.POSTGRES_PASSWORD!);
    const host = out.POSTGRES_HOST?.trim() || 'postgres';
    const port = out.POSTGRES_PORT?.trim() || '5432';
    const db = encodeURIComponent(out.POSTGRES_DB?.trim() || 'scholaria');
    out.DATABASE_URL = `postgresql://${user}:${password}@${host}:${port}/${db}`;
  }
  return out;
}

function storagesFrom(e: EnvConfig): Storage[] {
  const storages: Storage[] = [createFsStorage({ root: e.backupDir })];
  if (e.s3) {
    storages.push(
      createS3Storage({
        bucket: e.s3.bucket,
        provider: e.s3.provider,
        forcePathStyle: e.s3.forcePathStyle,
        ...(e.s3.prefix ? { prefix: e.s3.prefix } : {}),
        ...(e.s3.region ? { region: e.s3.region } : {}),
        ...(e.s3.endpoint ? { endpoint: e.s3.endpoint } : {}),
        // Credentials: the AWS SDK reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY itself.
      }),
    );
  }
  return storages;
}

function sourcesFrom(e: EnvConfig): BackupSource[] {
  const sources: BackupSource[] = [];
  for (const component of e.components) {
    if (component === 'postgres' && e.postgres) {
      sources.push(
        createPostgresSource({
          url: e.postgres.url,
          ...(e.postgres.pgBinDir ? { binDir: e.postgres.pgBinDir } : {}),
          ...(e.postgres.pgDumpPath ? { pgDumpPath: e.postgres.pgDumpPath } : {}),
        }),
      );
    }
    if (component === 'redis' && e.redis) sources.push(createRedisSource({ url: e.redis.url }));
    if (component === 'qdrant' && e.qdrant) {
      sources.push(createQdrantSource({ url: e.qdrant.url, ...(e.qdrant.apiKey ? { apiKey: e.qdrant.apiKey } : {}) }));
    }
  }
  return sources;
}

function notifiersFrom(e: EnvConfig): Notifier[] {
  const notifiers: Notifier[] = [];
  if (e.notify.email.length > 0 && e.smtp) {
    const smtp = e.smtp;
    notifiers.push(
      createEmailNotifier({
        ...(smtp.url
          ? { url: smtp.url }
          : { host: smtp.host, port: smtp.port, secure: smtp.secure, ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}) }),
        from: e.notify.from,
        to: e.notify.email,
        on: e.notify.on,
      }),
    );
  }
  // hooks.slack.com -> Slack, discord.com/api/webhooks -> Discord, anything else -> signed JSON.
  if (e.notify.webhook) notifiers.push(notifierFromWebhookUrl(e.notify.webhook.url, { on: e.notify.on }));
  return notifiers;
}

/** zstd for artifacts whose source does not compress itself, then age when recipients are set. */
function codecsFrom(e: EnvConfig): { codecs: Codec[]; decoders: Codec[] } {
  const codecs: Codec[] = [createZstdCodec()];
  const decoders: Codec[] = [];
  const enc = e.encryption;
  if (enc) {
    const age = createAgeCodec({
      ...(enc.recipients.length > 0 ? { recipients: enc.recipients } : {}),
      ...(enc.identity ? { identities: [enc.identity] } : {}),
      ...(enc.identityFile ? { identityFile: enc.identityFile } : {}),
      ...(enc.passphrase !== undefined ? { passphrase: enc.passphrase } : {}),
    });
    // With only an identity the codec cannot encrypt; it still decrypts older encrypted sets.
    (enc.recipients.length > 0 || enc.passphrase !== undefined ? codecs : decoders).push(age);
  }
  return { codecs, decoders };
}

/** The whole configuration for an environment; throws one ConfigError listing every bad variable. */
export function scholariaConfig(env: Env = process.env): ScholariaBackupConfig {
  const e = loadEnvConfig(scholariaEnv(env));
  const { codecs, decoders } = codecsFrom(e);
  return defineConfig({
    sources: sourcesFrom(e),
    storage: storagesFrom(e),
    notifiers: notifiersFrom(e),
    codecs,
    decoders,
    // daily 7 days, weekly 30, monthly 365: each tier's sets kept within N days of its newest.
    retention: e.retention,
    schedules: e.schedules,
    timeZone: e.timeZone,
    setPrefix: e.setPrefix,
    concurrency: e.concurrency,
    minFreeBytes: e.minFreeDiskBytes,
    logDir: e.logDir,
    ...(e.metricsPort !== undefined ? { metricsPort: e.metricsPort } : {}),
    secrets: secretsFromEnvConfig(e),
  });
}

// scholaria-backup calls a default-exported function with the environment it runs in.
export default ({ env }: { env: Env }) => scholariaConfig(env);
