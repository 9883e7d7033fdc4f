import {
  ConfigError,
  createAdaptersFromEnv,
  createZstdCodec,
  type BackupEngineOptions,
  type Codec,
  type LoadedEnv,
} from '@scholaria/backup-core';
import { loadedEnvOf, type EnvConfig } from './env-config.js';

export interface EnvEngineParts {
  options: BackupEngineOptions;
  secrets: string[];
}

/**
 * Engine options from the environment (`loadEnv` over the CLI's descriptors, or the object
 * `loadEnvConfig` returned): every adapter `loadEnv` chose, created (they load on demand: the
 * AWS SDK alone takes longer to load than most commands run), plus zstd for artifacts whose
 * source does not pick its own compression. Every adapter problem is gathered into one ConfigError.
 */
export async function engineOptionsFromEnv(env: LoadedEnv | EnvConfig): Promise<EnvEngineParts> {
  const loaded = 'adapters' in env ? env : loadedEnvOf(env);
  if (!loaded) throw new TypeError('engineOptionsFromEnv: pass the object loadEnv or loadEnvConfig returned');
  const issues: string[] = [];
  // Compression first, then whatever the adapters add (encryption): postgres compresses with
  // zstd itself, Qdrant snapshots are stored as they are, Redis' logical stream uses this one.
  const codecs: Codec[] = [];
  try {
    codecs.push(createZstdCodec());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...(error.issues.length ? error.issues : [error.message]).map((i) => `compression: ${i}`));
  }
  let created: Awaited<ReturnType<typeof createAdaptersFromEnv>> | undefined;
  try {
    created = await createAdaptersFromEnv(loaded);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...error.issues);
  }
  if (issues.length > 0 || !created) {
    throw new ConfigError(`Invalid environment configuration: ${issues.length} problem${issues.length > 1 ? 's' : ''} to fix`, issues, {
      hint: 'Fix the variables listed above in .env or the container environment; see docs/configuration.md for what each accepts.',
    });
  }
  const e = loaded.engine;
  return {
    options: {
      sources: created.sources,
      storage: created.storages,
      notifiers: created.notifiers,
      retention: e.retention,
      codecs: [...codecs, ...created.codecs],
      decoders: created.decoders,
      setPrefix: e.setPrefix,
      timeZone: e.timeZone,
      ...(e.concurrency !== undefined ? { concurrency: e.concurrency } : {}),
      minFreeBytes: e.minFreeDiskBytes,
      secrets: loaded.secrets,
    },
    secrets: loaded.secrets,
  };
}
