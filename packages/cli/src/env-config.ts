import { envGroupsOf, loadEnv, type AnyAdapterDescriptor, type LoadedEnv, type NotifyOutcome, type RetentionConfig } from '@scholaria/backup-core';
import { ageCodecEnv } from '@scholaria/backup-age/env';
import { defaultEmailFrom, emailNotifierEnv, type SmtpEnvConfig } from '@scholaria/backup-email/env';
import { fsStorageEnv } from '@scholaria/backup-fs/env';
import { postgresSourceEnv } from '@scholaria/backup-postgres/env';
import { qdrantSourceEnv } from '@scholaria/backup-qdrant/env';
import { redisSourceEnv } from '@scholaria/backup-redis/env';
import { s3StorageEnv, type S3EnvConfig } from '@scholaria/backup-s3/env';
import { webhookNotifierEnv } from '@scholaria/backup-webhook/env';
import { envDescriptorsOf, SHIPPED_ADAPTERS } from './adapters.js';
import { cliEnvGroup } from './cli-env.js';

export type { SmtpEnvConfig } from '@scholaria/backup-email/env';
export type { EnvIssue } from '@scholaria/backup-core';

export type EnvComponent = string;
export type NotifyOn = NotifyOutcome;
export type WebhookKind = 'slack' | 'discord' | 'generic';
export type S3Provider = S3EnvConfig['provider'];

/**
 * The whole `.env` configuration of the shipped adapters as one plain object: what
 * `loadEnvConfig` in `@scholaria/backup-core` returned before the settings moved into the
 * adapters' descriptors (see docs/migration.md). New code reads `loadEnv(descriptors, env)`.
 */
export interface EnvConfig {
  backupDir: string;
  logDir: string;
  setPrefix: string;
  timeZone: string;
  retentionDays: { daily: number; weekly: number; monthly: number };
  retention: RetentionConfig;
  schedules: { daily: string; weekly: string; monthly: string };
  components: EnvComponent[];
  /** `BACKUP_CONCURRENCY`; unset: the engine's default (one per component, at most the cores). */
  concurrency?: number;
  minFreeDiskBytes: number;
  metricsPort?: number;
  notify: { email: string[]; from: string; webhook?: { url: string; kind: WebhookKind }; on: NotifyOn[] };
  smtp?: SmtpEnvConfig;
  encryption?: { recipients: string[]; identityFile?: string; identity?: string; passphrase?: string };
  postgres?: { url: string; pgDumpPath?: string; pgBinDir?: string };
  redis?: { url: string };
  qdrant?: { url: string; apiKey?: string };
  s3?: S3EnvConfig;
  warnings: string[];
}

/** Every variable the command reads with the shipped adapters. */
export const ENV_VARIABLES: readonly string[] = Object.freeze(envGroupsOf(envDescriptorsOf()).flatMap((g) => Object.keys(g.env)));

const loadedOf = new WeakMap<EnvConfig, LoadedEnv>();

/** The `loadEnv` result behind an `EnvConfig` from `loadEnvConfig` (undefined for one built by hand). */
export function loadedEnvOf(config: EnvConfig): LoadedEnv | undefined {
  return loadedOf.get(config);
}

/** `EnvConfig` from a `loadEnv` result over the shipped adapters. */
export function envConfigFrom(loaded: LoadedEnv): EnvConfig {
  const cli = loaded.configOf(cliEnvGroup)!;
  const email = loaded.configOf(emailNotifierEnv);
  const webhook = loaded.configOf(webhookNotifierEnv);
  const smtp = email?.smtp;
  const e = loaded.engine;
  const encryption = loaded.configOf(ageCodecEnv);
  const postgres = loaded.configOf(postgresSourceEnv);
  const redis = loaded.configOf(redisSourceEnv);
  const qdrant = loaded.configOf(qdrantSourceEnv);
  const s3 = loaded.configOf(s3StorageEnv);
  const config: EnvConfig = {
    backupDir: loaded.configOf(fsStorageEnv)!.root,
    logDir: cli.logDir,
    setPrefix: e.setPrefix,
    timeZone: e.timeZone,
    retentionDays: e.retentionDays,
    retention: e.retention,
    schedules: e.schedules,
    components: e.components,
    ...(e.concurrency !== undefined ? { concurrency: e.concurrency } : {}),
    minFreeDiskBytes: e.minFreeDiskBytes,
    ...(cli.metricsPort !== undefined ? { metricsPort: cli.metricsPort } : {}),
    notify: {
      email: email?.to ?? [],
      from: email?.from ?? defaultEmailFrom(),
      ...(webhook ? { webhook: { url: webhook.url, kind: webhook.kind === 'slack' || webhook.kind === 'discord' ? webhook.kind : 'generic' } } : {}),
      on: e.notifyOn,
    },
    ...(smtp ? { smtp } : {}),
    ...(encryption ? { encryption } : {}),
    ...(postgres ? { postgres } : {}),
    ...(redis ? { redis } : {}),
    ...(qdrant ? { qdrant } : {}),
    ...(s3 ? { s3 } : {}),
    warnings: loaded.warnings,
  };
  loadedOf.set(config, loaded);
  return config;
}

/**
 * Reads and checks the environment with the shipped adapters (`loadEnv(envDescriptorsOf(), env)`).
 * Throws one ConfigError listing every invalid variable; returns a plain object otherwise.
 */
export function loadEnvConfig(env: Record<string, string | undefined> = process.env, adapters: readonly AnyAdapterDescriptor[] = SHIPPED_ADAPTERS): EnvConfig {
  return envConfigFrom(loadEnv(envDescriptorsOf(adapters), env));
}

/**
 * Every secret value in the configuration, for redaction: passwords (also inside URLs, raw and
 * percent-decoded), the Qdrant API key, the age identity and passphrase, and the webhook URL
 * (its path is the token).
 */
export function secretsFromEnvConfig(config: EnvConfig): string[] {
  const loaded = loadedOf.get(config);
  if (!loaded) throw new TypeError('secretsFromEnvConfig: pass the object loadEnvConfig returned');
  return loaded.secrets;
}
