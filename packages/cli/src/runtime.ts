import { isAbsolute, resolve } from 'node:path';
import {
  BackupError,
  ConfigError,
  DEFAULT_SCHEDULES,
  ENGINE_DEFAULTS,
  createAdaptersFromEnv,
  createBackupEngine,
  createRedactor,
  drillEnvGroup,
  envGroupsOf,
  leaderEnvGroup,
  type LeaderElector,
  loadEnv,
  validateCron,
  type AnyAdapterDescriptor,
  type EnvVariables,
  type BackupEngine,
  type BackupEngineOptions,
  type BackupSource,
  type Codec,
  type LoadedAdapter,
  type LoadedEnv,
  type Notifier,
  type Redactor,
  type ScholariaBackupConfig,
  type Storage,
} from '@scholaria/backup-core';
import type { CliIo } from './cli-io.js';
import { engineOptionsFromEnv } from './env-runtime.js';
import { envDescriptorsOf, SHIPPED_ADAPTERS } from './adapters.js';
import { cliEnvGroup, DEFAULT_LOG_DIR } from './cli-env.js';
import { pitrSourcesFromEnv } from './wal/pitr-sources.js';
import { findConfigFile, importConfigFile } from './load-config.js';
import { LogHub } from './log-hub.js';
import { drillSettingsFromEnv, drillSettingsFromFile, type DrillSettings } from './drill-config.js';


export { DEFAULT_LOG_DIR };

/** Everything a command needs, built from a config file or the environment. */
export interface CliRuntime {
  engine: BackupEngine;
  /** The config file path, or 'environment'. */
  origin: string;
  storages: Storage[];
  sources: BackupSource[];
  schedules: Record<string, string>;
  timeZone: string;
  logDir: string;
  metricsPort?: number;
  /** Restore drill schedule, targets and joins (docs/drills.md). */
  drill: DrillSettings;
  /** Leader election among `scheduler run` replicas (BACKUP_LEADER_ELECTION, docs/scaling.md). */
  leaderElector?: LeaderElector;
  redact: Redactor;
  /** Valid but probably unintended settings, printed as `warning:` lines. */
  warnings: string[];
  /** The engine's logger; commands attach the log file and the console to it. */
  hub: LogHub;
  /** The environment the configuration was read from (directories made absolute). */
  env: Record<string, string | undefined>;
  /**
   * The codecs (in order: compression, then encryption) and decode-only codecs. A lean runtime
   * creates the `.env` codec adapters here, on first use, and only those `want` accepts
   * (`name`: the adapter's codec name such as "age"; `decodeOnly`: an identity without recipients).
   */
  codecs(want?: (codec: { name: string; decodeOnly: boolean }) => boolean): Promise<{ codecs: Codec[]; decoders: Codec[] }>;
  /** The configured notifiers; a lean runtime creates them here, on first use (wal-push, on failure). */
  notifiers(): Promise<Notifier[]>;
  close(): Promise<void>;
}

export interface CreateRuntimeOptions {
  configPath?: string;
  adapters?: readonly AnyAdapterDescriptor[];
  /**
   * wal-push/wal-fetch (once per WAL segment): from `.env`, create only the storages up front;
   * codecs and notifiers when `codecs()` / `notifiers()` ask for them, sources never (no pg
   * client, no BACKUP_PITR base backup source). The whole environment is still validated.
   * A config file is evaluated as it is (it is the user's code).
   */
  lean?: boolean;
}

/** Creates some of the adapters `loadEnv` chose (the rest of `loaded` unchanged). */
async function createSome(loaded: LoadedEnv, keep: (adapter: LoadedAdapter) => boolean) {
  return await createAdaptersFromEnv({ ...loaded, adapters: loaded.adapters.filter(keep) });
}

/** The environment with every `path` variable of the descriptors made absolute against `cwd`. */
function withAbsoluteDirs(env: Record<string, string | undefined>, cwd: string, adapters: readonly AnyAdapterDescriptor[]): Record<string, string | undefined> {
  const out = { ...env };
  const paths = envGroupsOf(envDescriptorsOf(adapters)).flatMap((g) => Object.entries(g.env as EnvVariables).filter(([, v]) => v.path).map(([name]) => name));
  for (const name of paths) {
    const value = out[name]?.trim();
    if (value && !isAbsolute(value)) out[name] = resolve(cwd, value);
  }
  return out;
}

function checkSchedules(schedules: Record<string, string>, timeZone: string, label: (tier: string) => string, issues: string[]): void {
  for (const [tier, cron] of Object.entries(schedules)) {
    if (typeof cron !== 'string') {
      issues.push(`${label(tier)}: expected a cron expression string`);
      continue;
    }
    try {
      validateCron(cron, label(tier), timeZone).stop();
    } catch (error) {
      issues.push((error as Error).message);
    }
  }
}

/**
 * Which adapter provides the lease for BACKUP_LEADER_ELECTION: the named one, or with `auto`
 * the first configured source offering one (the database being backed up), else the first
 * configured storage offering one. Core knows none of them by name.
 */
function leaderPlanFromEnv(loaded: ReturnType<typeof loadEnv>, adapters: readonly AnyAdapterDescriptor[], issues: string[]) {
  const settings = loaded.configOf(leaderEnvGroup);
  if (!settings || settings.mode === 'off') return undefined;
  const offering = adapters.filter((a) => typeof a.leaderElector === 'function');
  const configured = (a: AnyAdapterDescriptor) => loaded.configOf(a) !== undefined;
  let descriptor: AnyAdapterDescriptor | undefined;
  if (settings.mode === 'auto') {
    descriptor = offering.find((a) => a.kind === 'source' && configured(a)) ?? offering.find((a) => a.kind === 'storage' && configured(a));
    if (!descriptor) {
      issues.push(`BACKUP_LEADER_ELECTION: auto found nothing to elect a leader on: set ${offering.map((a) => a.enabledBy ?? a.label ?? a.name).join(' or ')} (or BACKUP_LEADER_ELECTION=off)`);
      return undefined;
    }
  } else {
    descriptor = offering.find((a) => a.name === settings.mode);
    if (!descriptor) {
      issues.push(`BACKUP_LEADER_ELECTION: "${settings.mode}" is not one of off, auto${offering.map((a) => `, ${a.name}`).join('')}`);
      return undefined;
    }
    if (!configured(descriptor)) {
      issues.push(`BACKUP_LEADER_ELECTION: ${descriptor.name} needs ${descriptor.enabledBy ?? descriptor.label ?? `the ${descriptor.name} settings`} to be set`);
      return undefined;
    }
  }
  return { descriptor, config: loaded.configOf(descriptor), ...(settings.name ? { name: settings.name } : {}), ttlMs: settings.ttlMs };
}

function portProblem(value: unknown): string | undefined {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65_535 ? undefined : 'expected a port number from 1 to 65535';
}

/**
 * Loads the configuration (config file, else environment) and builds the engine. Does no I/O
 * beyond reading the config file: invalid configuration throws one ConfigError listing every
 * problem before anything is written.
 */
export async function createRuntime(io: CliIo, options: CreateRuntimeOptions): Promise<CliRuntime> {
  const adapters = options.adapters ?? io.adapters ?? SHIPPED_ADAPTERS;
  const env = withAbsoluteDirs(io.env, io.cwd, adapters);
  const hub = new LogHub();
  const file = findConfigFile(io.cwd, options.configPath);
  const issues: string[] = [];
  let engineOptions: BackupEngineOptions | undefined;
  let schedules: Record<string, string>;
  let timeZone: string;
  let logDir: string;
  let metricsPort: number | undefined;
  let secrets: string[] = [];
  const warnings: string[] = [];
  /** Lean `.env` runtime: the adapters left for `codecs()` and `notifiers()`. */
  let deferred: LoadedEnv | undefined;
  let leaderElector: LeaderElector | undefined;
  let leaderPlan: { descriptor: AnyAdapterDescriptor; config: unknown; name?: string; ttlMs: number } | undefined;
  let drill: DrillSettings = { schedule: undefined, targets: [], joins: [], maxMismatches: 10, maxAgeMs: undefined };

  if (file) {
    const config: ScholariaBackupConfig = await importConfigFile(file, io.env);
    const { schedules: fileSchedules, logDir: fileLogDir, metricsPort: filePort, logger: fileLogger, drill: fileDrill, leaderElection: fileLeader, ...rest } = config;
    if (fileLeader !== undefined) {
      const e = fileLeader as Partial<LeaderElector> | null;
      if (!e || e.specVersion !== 'v1' || typeof e.acquire !== 'function' || typeof e.holder !== 'function' || !(Number(e.ttlMs) > 0)) {
        issues.push('leaderElection: expected a leader elector (createPostgresLeaderElector or createS3LeaderElector)');
      } else leaderElector = fileLeader;
    }
    timeZone = rest.timeZone ?? ENGINE_DEFAULTS.timeZone;
    drill = drillSettingsFromFile(fileDrill, timeZone, issues);
    // Given schedules replace the defaults, so a deployment can run fewer (or other) tiers.
    schedules = fileSchedules ? ({ ...fileSchedules } as Record<string, string>) : { ...DEFAULT_SCHEDULES };
    if (Object.keys(schedules).length === 0) issues.push('schedules: give at least one tier, e.g. { daily: "0 2 * * *" }');
    checkSchedules(schedules, timeZone, (tier) => `schedules.${tier}`, issues);
    if (fileLogDir !== undefined && (typeof fileLogDir !== 'string' || fileLogDir === '')) issues.push('logDir: expected a folder path');
    const envLogDir = env.BACKUP_LOG_DIR?.trim();
    logDir = typeof fileLogDir === 'string' && fileLogDir !== '' ? resolve(io.cwd, fileLogDir) : envLogDir || DEFAULT_LOG_DIR;
    const envPort = env.BACKUP_METRICS_PORT?.trim();
    const port = filePort ?? (envPort ? Number(envPort) : undefined);
    if (port !== undefined) {
      const problem = portProblem(port);
      if (problem) issues.push(`${filePort !== undefined ? 'metricsPort' : 'BACKUP_METRICS_PORT'}: ${problem}`);
      else metricsPort = port;
    }
    if (fileLogger) hub.attach(fileLogger);
    engineOptions = { ...rest, logger: hub, ...(drill.maxAgeMs !== undefined && rest.drillMaxAgeMs === undefined ? { drillMaxAgeMs: drill.maxAgeMs } : {}) };
    // Connection strings the file read from the environment are masked as well.
    try {
      const loadedEnv = loadEnv(envDescriptorsOf(adapters), env);
      secrets = loadedEnv.secrets;
      // BACKUP_LEADER_ELECTION applies to config files too, unless the file names an elector.
      if (!leaderElector) leaderPlan = leaderPlanFromEnv(loadedEnv, adapters, issues);
    } catch (error) {
      // the environment is not this run's configuration; its problems are not ours to report,
      // unless it asks for leader election, which then cannot be set up
      const asked = env.BACKUP_LEADER_ELECTION?.trim().toLowerCase();
      if (!leaderElector && asked && asked !== 'off') {
        issues.push(`BACKUP_LEADER_ELECTION=${asked}: the environment it reads its settings from has problems: ${(error as Error).message}${error instanceof ConfigError && error.issues.length ? ` (${error.issues.join('; ')})` : ''}`);
      }
    }
    secrets.push(...(rest.secrets ?? []));
  } else {
    const loaded = loadEnv(envDescriptorsOf(adapters), env);
    const cli = loaded.configOf(cliEnvGroup)!;
    warnings.push(...loaded.warnings);
    timeZone = loaded.engine.timeZone;
    schedules = { ...loaded.engine.schedules };
    checkSchedules(schedules, timeZone, (tier) => `BACKUP_${tier.toUpperCase()}_SCHEDULE`, issues);
    logDir = cli.logDir;
    metricsPort = cli.metricsPort;
    try {
      const lean = options.lean === true;
      if (lean) deferred = loaded;
      const parts = await engineOptionsFromEnv(lean ? { ...loaded, adapters: loaded.adapters.filter((a) => a.descriptor.kind === 'storage') } : loaded);
      const pitr = lean ? [] : await pitrSourcesFromEnv(env);
      const drillEnv = loaded.configOf(drillEnvGroup);
      // Drill targets and the leader elector load each source's client (pg, redis): not for a lean runtime.
      if (!lean) {
        drill = await drillSettingsFromEnv(loaded, issues);
        leaderPlan = leaderPlanFromEnv(loaded, adapters, issues);
      }
      engineOptions = {
        ...parts.options,
        sources: [...parts.options.sources, ...pitr],
        logger: hub,
        ...(drillEnv?.anomalyDrop !== undefined ? { anomalyDrop: drillEnv.anomalyDrop } : {}),
        ...(drill.maxAgeMs !== undefined ? { drillMaxAgeMs: drill.maxAgeMs } : {}),
      };
      secrets = parts.secrets;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.unshift(...error.issues);
    }
  }

  let engine: BackupEngine | undefined;
  try {
    if (engineOptions) engine = createBackupEngine(engineOptions);
  } catch (error) {
    if (error instanceof ConfigError || (BackupError.isInstance(error) && error.code === 'CONFIG_INVALID')) {
      const more = (error as ConfigError).issues?.length ? (error as ConfigError).issues : [error.message];
      issues.unshift(...more);
    } else throw error;
  }
  if (issues.length > 0 || !engine || !engineOptions) {
    throw new ConfigError(`Invalid configuration (${file ?? 'environment'}): ${issues.length} problem${issues.length === 1 ? '' : 's'} to fix`, issues, {
      hint: file ? `Fix ${file}; see docs/cli.md for the options.` : 'Fix the variables listed above in .env or the container environment; see docs/cli.md.',
    });
  }
  const storages = Array.isArray(engineOptions.storage) ? engineOptions.storage : [engineOptions.storage];
  if (leaderPlan) {
    try {
      leaderElector = await leaderPlan.descriptor.leaderElector!(leaderPlan.config, { name: leaderPlan.name ?? storages[0]!.name, ttlMs: leaderPlan.ttlMs });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(`Invalid configuration (${file ?? 'environment'}): BACKUP_LEADER_ELECTION=${leaderPlan.descriptor.name}`, error.issues.length ? error.issues : [error.message], {
        hint: 'Fix the variables listed above; see docs/scaling.md.',
      });
    }
  }
  const built = engine;
  const notifiers = [...(engineOptions.notifiers ?? [])];
  const baseCodecs = [...(engineOptions.codecs ?? [])];
  const baseDecoders = [...(engineOptions.decoders ?? [])];
  const made = new Map<LoadedAdapter, Codec>();
  let notifiersMade = false;
  return {
    engine: built,
    origin: file ?? 'environment',
    storages,
    sources: engineOptions.sources,
    schedules,
    timeZone,
    logDir,
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    drill,
    ...(leaderElector ? { leaderElector } : {}),
    redact: createRedactor([...new Set(secrets)]),
    warnings,
    hub,
    env,
    async codecs(want) {
      if (!deferred) return { codecs: baseCodecs, decoders: baseDecoders };
      const loaded = deferred;
      const chosen = loaded.adapters.filter(
        (a) => a.descriptor.kind === 'codec' && !made.has(a) && (want?.({ name: a.descriptor.name, decodeOnly: a.descriptor.decodeOnly?.(a.config) ?? false }) ?? true),
      );
      for (const adapter of chosen) {
        const created = await createSome(loaded, (a) => a === adapter);
        made.set(adapter, [...created.codecs, ...created.decoders][0]!);
      }
      const codecs = [...baseCodecs];
      const decoders = [...baseDecoders];
      for (const adapter of loaded.adapters) {
        const codec = made.get(adapter);
        if (!codec || !(want?.({ name: adapter.descriptor.name, decodeOnly: adapter.descriptor.decodeOnly?.(adapter.config) ?? false }) ?? true)) continue;
        (adapter.descriptor.decodeOnly?.(adapter.config) ? decoders : codecs).push(codec);
      }
      return { codecs, decoders };
    },
    async notifiers() {
      if (deferred && !notifiersMade) {
        notifiersMade = true;
        notifiers.push(...(await createSome(deferred, (a) => a.descriptor.kind === 'notifier')).notifiers);
      }
      return notifiers;
    },
    async close() {
      await built.close();
      await leaderElector?.close?.().catch(() => undefined);
      for (const notifier of notifiers) {
        try {
          (notifier as { close?: () => unknown }).close?.();
        } catch {
          // closing is best effort
        }
      }
    },
  };
}
