import type { z } from 'zod';
import type { BackupSource } from '../interfaces/source.js';
import type { Storage } from '../interfaces/storage.js';
import type { Notifier } from '../interfaces/notifier.js';
import type { Codec } from '../interfaces/codec.js';
import type { EngineEnvSettings } from './engine-env.js';
import type { LeaderElector } from '../scheduler/leader-elector.js';

/**
 * One environment variable: how to parse it and how to document it. The loader trims the value
 * (unless `untrimmed`), treats empty or blank as unset, and runs `schema` on the rest.
 */
export interface EnvVariable<T = unknown> {
  /** Parses the (trimmed) string; its issue messages say what is expected. */
  schema: z.ZodType<T, string>;
  /** The "meaning" column of the generated table in docs/configuration.md. */
  doc: string;
  /** The "default" column (documentation only: `configure` applies the default). Default `none`. */
  default?: string;
  /** Never shown in errors; its value is masked in logs and notifications. */
  secret?: boolean;
  /** A URL: shown with its password as `***`, and the password is masked. */
  url?: boolean;
  /** Not trimmed (passphrases may start or end with spaces). */
  untrimmed?: boolean;
  /** A path: the CLI resolves a relative value against its working directory. */
  path?: boolean;
}

export type EnvVariables = Record<string, EnvVariable<any>>;

/** The parsed value of each variable that is set and valid. */
export type EnvValues<V extends EnvVariables> = { [K in keyof V]?: V[K] extends EnvVariable<infer T> ? T : never };

/** What `configure` sees: the parsed values and ways to report problems across variables. */
export interface EnvScope<V extends EnvVariables> {
  values: EnvValues<V>;
  /** Set (non-blank), whether or not it was valid. */
  isSet(name: keyof V & string): boolean;
  /** An error about `name` (several for one variable are joined with "; also"). */
  problem(name: keyof V & string, message: string): void;
  /** A valid but probably unintended setting, printed as a warning. */
  warn(message: string): void;
}

/** A group of variables that yields one settings object (the engine's, the CLI's). */
export interface EnvGroup<V extends EnvVariables = EnvVariables, C = unknown> {
  /** Unique among the descriptors given to `loadEnv`: `postgres`, `s3`, `engine`. */
  name: string;
  /** Heading of the group in the generated docs table, e.g. "PostgreSQL source (`@scholaria/backup-postgres`)". */
  title: string;
  env: V;
  /** Unknown variables starting with this (`SMTP_`) that look like a typo of a known one get a did-you-mean warning (`BACKUP_` always does). */
  prefix?: string;
  /**
   * The settings from the parsed values, after cross-variable checks; `undefined` when the group
   * is not configured (no URL, no bucket). Called even when some variables were invalid: report
   * what is wrong and return what you can.
   */
  configure(scope: EnvScope<V>): C | undefined;
  /** Extra secrets in the settings (beyond `secret` variables and URL passwords), e.g. a token in a path. */
  secrets?(config: C): string[];
}

export type AdapterKind = 'source' | 'storage' | 'notifier' | 'codec';

export interface AdapterInstances {
  source: BackupSource;
  storage: Storage;
  notifier: Notifier;
  codec: Codec;
}

/**
 * What an adapter package exports so that it can be configured from `.env` (`defineAdapter`):
 * its kind, its variables (zod schemas, docs, secrets) and `create(config)`. Core's `loadEnv`
 * reads the variables of every descriptor it is given; it knows no adapter by name.
 */
export interface AdapterDescriptor<V extends EnvVariables = EnvVariables, C = any, K extends AdapterKind = AdapterKind> extends EnvGroup<V, C> {
  kind: K;
  /**
   * Sources: the variable whose presence turns the source on (`DATABASE_URL`); its name is also
   * what `BACKUP_COMPONENTS` lists (`name`). Other variables of the source set without it give a
   * warning. Notifiers: the variable named when `BACKUP_NOTIFY_ON` is set without any notifier.
   */
  enabledBy?: keyof V & string;
  /** Whether a configured adapter is created (default yes): e.g. email needs addresses and a server. */
  active?(config: C): boolean;
  /** Codecs: true when this configuration only decodes older sets (an identity without recipients). */
  decodeOnly?(config: C): boolean;
  /** Prefix of the problems `create` reports, e.g. `DATABASE_URL`; default the variable names. */
  label?: string;
  /**
   * Optional: a LeaderElector on the same server or bucket, for `BACKUP_LEADER_ELECTION=<name>`
   * (docs/scaling.md). `settings.name` is the lease's name, `settings.ttlMs` its lifetime.
   */
  leaderElector?(config: C, settings: LeaderElectorSettings): LeaderElector | Promise<LeaderElector>;
  /** Builds the adapter; may load its implementation on demand. Throws ConfigError for bad options. */
  create(config: C, context: AdapterContext): AdapterInstances[K] | Promise<AdapterInstances[K]>;
}

/** What `leaderElector` gets: the lease's name (stable across replicas) and lifetime. */
export interface LeaderElectorSettings {
  name: string;
  ttlMs: number;
}

/** What `create` gets besides its own settings: the engine's settings from the same environment. */
export interface AdapterContext {
  engine: EngineEnvSettings;
}

export type AnyEnvGroup = EnvGroup<any, any>;
export type AnyAdapterDescriptor = AdapterDescriptor<any, any, AdapterKind>;

/** Type-checks an adapter descriptor (identity function, like `defineConfig`). */
export function defineAdapter<V extends EnvVariables, C, K extends AdapterKind>(descriptor: AdapterDescriptor<V, C, K>): AdapterDescriptor<V, C, K> {
  return descriptor;
}

/** Type-checks a group of settings variables (identity function). */
export function defineEnvGroup<V extends EnvVariables, C>(group: EnvGroup<V, C>): EnvGroup<V, C> {
  return group;
}

/** Type-checks one variable (identity function; infers the parsed type from the schema). */
export function envVariable<T>(variable: EnvVariable<T>): EnvVariable<T> {
  return variable;
}

export function isAdapterDescriptor(group: AnyEnvGroup): group is AnyAdapterDescriptor {
  return typeof (group as AnyAdapterDescriptor).kind === 'string' && typeof (group as AnyAdapterDescriptor).create === 'function';
}
