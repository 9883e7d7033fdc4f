import type { z } from 'zod';
import { BackupError, ConfigError } from '../errors/backup-error.js';
import type { BackupSource } from '../interfaces/source.js';
import type { Storage } from '../interfaces/storage.js';
import type { Notifier } from '../interfaces/notifier.js';
import type { Codec } from '../interfaces/codec.js';
import { isAdapterDescriptor, type AnyAdapterDescriptor, type AnyEnvGroup, type EnvGroup, type EnvScope, type EnvVariable, type EnvVariables } from './env-descriptor.js';
import { engineEnvGroup, type EngineEnvSettings } from './engine-env.js';
import { hideUrlPassword, urlPasswords } from './env-values.js';

/** One invalid variable. `value` is absent for secrets. */
export interface EnvIssue {
  variable: string;
  value?: string;
  message: string;
}

export interface LoadedAdapter {
  descriptor: AnyAdapterDescriptor;
  config: unknown;
}

/** What `loadEnv` read: the engine's settings, each group's settings, the adapters to create. */
export interface LoadedEnv {
  engine: EngineEnvSettings;
  /** The settings of a group given to `loadEnv`, or undefined when it is not configured. */
  configOf<C>(group: EnvGroup<any, C>): C | undefined;
  /** Adapters to create, in order: sources in `engine.components` order, the rest as given. */
  adapters: LoadedAdapter[];
  /** Valid but probably unintended settings, for the caller to print. */
  warnings: string[];
  /** Every secret value (secret variables, URL passwords, group extras), for redaction. */
  secrets: string[];
  /** Every variable the groups read (engine first), for checks and docs. */
  variables: string[];
}

export interface LoadEnvOptions {
  /** Leave out the engine's own variables (for loading one adapter's settings alone). Default false. */
  withoutEngine?: boolean;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function orList(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and/or ${names[names.length - 1]}`;
}

/** The groups `loadEnv` reads for `descriptors`: the engine's first, then each as given. */
export function envGroupsOf(descriptors: readonly AnyEnvGroup[], options: LoadEnvOptions = {}): AnyEnvGroup[] {
  const sources = descriptors.filter(isAdapterDescriptor).filter((d) => d.kind === 'source');
  const groups = options.withoutEngine ? [...descriptors] : [engineEnvGroup(sources.map((s) => s.name)) as AnyEnvGroup, ...descriptors];
  const names = new Set<string>();
  const owner = new Map<string, string>();
  for (const group of groups) {
    if (names.has(group.name)) throw new TypeError(`two environment descriptors are named "${group.name}"; give each a distinct name`);
    names.add(group.name);
    for (const variable of Object.keys(group.env)) {
      const other = owner.get(variable);
      if (other) throw new TypeError(`environment variable ${variable} is declared by both "${other}" and "${group.name}"`);
      owner.set(variable, group.name);
    }
  }
  return groups;
}

/**
 * Reads the variables of every descriptor (and the engine's own) from `env`. Empty or blank
 * values count as unset; values are trimmed unless `untrimmed`. Every invalid variable is
 * reported at once: one ConfigError with one line per variable (its value, unless it is a
 * secret; URLs with the password as `***`) and what is expected (`details.issues`: `EnvIssue[]`).
 * Unknown variables that look like a typo of a known one (under a group's `prefix`) give a
 * did-you-mean warning.
 */
export function loadEnv(descriptors: readonly AnyEnvGroup[], env: Record<string, string | undefined> = process.env, options: LoadEnvOptions = {}): LoadedEnv {
  const groups = envGroupsOf(descriptors, options);
  const issues: EnvIssue[] = [];
  const warnings: string[] = [];
  const secrets: string[] = [];
  const raw = new Map<string, string>();
  const parsed = new Map<string, unknown>();
  const variables = groups.flatMap((g) => Object.keys(g.env));
  const spec = new Map<string, EnvVariable>(groups.flatMap((g) => Object.entries(g.env as EnvVariables)));

  const shown = (variable: string, text: string): string | undefined => {
    const v = spec.get(variable);
    if (v?.secret) return undefined;
    const value = v?.url ? hideUrlPassword(text) : text;
    return JSON.stringify(value.length > 200 ? `${value.slice(0, 197)}...` : value);
  };
  const problem = (variable: string, message: string) => {
    // One entry per variable: a second problem with the same variable extends the first.
    const existing = issues.find((i) => i.variable === variable);
    if (existing) {
      existing.message += `; also ${message}`;
      return;
    }
    const text = raw.get(variable);
    const value = text === undefined ? undefined : shown(variable, text);
    issues.push({ variable, ...(value !== undefined ? { value } : {}), message });
  };

  for (const [name, variable] of spec) {
    const value = env[name];
    if (value === undefined || value.trim() === '') continue;
    const text = variable.untrimmed ? value : value.trim();
    raw.set(name, text);
    const result = (variable.schema as z.ZodType<unknown, string>).safeParse(text);
    if (result.success) {
      parsed.set(name, result.data);
      if (variable.secret) secrets.push(text);
      if (variable.url) secrets.push(...urlPasswords(text));
    } else {
      problem(name, result.error.issues.map((i) => i.message).join('; '));
    }
  }

  const configs = new Map<string, unknown>();
  const scopeOf = (group: AnyEnvGroup): EnvScope<any> => {
    const own = Object.keys(group.env);
    const values = Object.fromEntries(own.filter((n) => parsed.has(n)).map((n) => [n, parsed.get(n)]));
    return {
      values,
      isSet: (name: string) => raw.has(name),
      problem,
      warn: (message: string) => warnings.push(message),
    };
  };
  for (const group of groups) {
    const config = group.configure(scopeOf(group));
    if (config === undefined) continue;
    configs.set(group.name, config);
    if (group.secrets) secrets.push(...group.secrets(config));
  }

  // Sources: BACKUP_COMPONENTS lists them, else every source whose variable is set.
  const adapters = groups.filter(isAdapterDescriptor);
  const sources = adapters.filter((d) => d.kind === 'source');
  const switchOf = (d: AnyAdapterDescriptor) => (d.enabledBy !== undefined ? raw.has(d.enabledBy) : configs.has(d.name));
  let components: string[] = [];
  if (!options.withoutEngine) {
    const listed = parsed.get('BACKUP_COMPONENTS') as string[] | undefined;
    if (listed) {
      components = listed;
      for (const name of listed) {
        const source = sources.find((s) => s.name === name)!;
        if (!switchOf(source)) problem('BACKUP_COMPONENTS', `includes ${name}, but ${source.enabledBy !== undefined ? `${source.enabledBy} is` : `the ${name} settings are`} not set`);
      }
    } else {
      components = sources.filter(switchOf).map((s) => s.name);
      if (!raw.has('BACKUP_COMPONENTS') && components.length === 0 && sources.length > 0) {
        warnings.unshift(`No component to back up: set ${orList(sources.map((s) => s.enabledBy ?? s.name))}.`);
      }
    }
  }
  for (const source of sources) {
    if (source.enabledBy === undefined || raw.has(source.enabledBy)) continue;
    for (const name of Object.keys(source.env)) {
      if (raw.has(name)) warnings.push(`${name} is set but ${source.enabledBy} is not; it is ignored.`);
    }
  }
  const notifiers = adapters.filter((d) => d.kind === 'notifier');
  if (raw.has('BACKUP_NOTIFY_ON') && notifiers.length > 0 && !notifiers.some(switchOf)) {
    warnings.push(`BACKUP_NOTIFY_ON is set but no notifier is configured (${notifiers.map((n) => n.enabledBy ?? n.name).join(', ')}).`);
  }
  const known = new Set(variables);
  const prefixes = [...new Set([...(options.withoutEngine ? [] : ['BACKUP_']), ...groups.map((g) => (g as { prefix?: string }).prefix).filter((p): p is string => !!p)])];
  for (const name of Object.keys(env)) {
    if (known.has(name) || !prefixes.some((p) => name.startsWith(p))) continue;
    const guess = variables.find((k) => levenshtein(k, name) <= 2);
    if (guess) warnings.push(`Unknown variable ${name}; did you mean ${guess}?`);
  }

  if (issues.length > 0) {
    const formatIssue = (i: EnvIssue) => {
      const value = i.value !== undefined ? `=${i.value}` : spec.get(i.variable)?.secret ? ' (value hidden)' : '';
      return `${i.variable}${value}: ${i.message}`;
    };
    throw new ConfigError(
      `Invalid environment configuration: ${issues.length} variable${issues.length > 1 ? 's' : ''} to fix`,
      issues.map(formatIssue),
      {
        hint: 'Fix the variables listed above in .env or the container environment (empty values count as unset); see docs/configuration.md for what each accepts.',
        details: { issues },
      },
    );
  }

  const engineConfig = configs.get('engine') as Omit<EngineEnvSettings, 'components'> | undefined;
  const engine = { ...(engineConfig as EngineEnvSettings), components };
  const active: LoadedAdapter[] = [];
  for (const d of adapters) {
    if (d.kind === 'source') continue;
    const config = configs.get(d.name);
    if (config !== undefined && (d.active?.(config) ?? true)) active.push({ descriptor: d, config });
  }
  const chosen = components.flatMap((name) => {
    const d = sources.find((s) => s.name === name)!;
    const config = configs.get(name);
    return config !== undefined && (d.active?.(config) ?? true) ? [{ descriptor: d, config }] : [];
  });
  return {
    engine,
    configOf: <C>(group: EnvGroup<any, C>) => configs.get(group.name) as C | undefined,
    adapters: [...active.filter((a) => a.descriptor.kind === 'storage'), ...chosen, ...active.filter((a) => a.descriptor.kind !== 'storage')],
    warnings,
    secrets: [...new Set(secrets.filter((s) => s !== ''))],
    variables,
  };
}

/** The adapters `loadEnv` chose, created; codecs split into encoding ones and decode-only ones. */
export interface CreatedAdapters {
  sources: BackupSource[];
  storages: Storage[];
  notifiers: Notifier[];
  codecs: Codec[];
  decoders: Codec[];
}

/**
 * Creates every adapter `loadEnv` chose. Configuration problems of all of them are gathered into
 * one ConfigError, each prefixed with the descriptor's `label` (e.g. "DATABASE_URL: ...").
 */
export async function createAdaptersFromEnv(loaded: LoadedEnv): Promise<CreatedAdapters> {
  const out: CreatedAdapters = { sources: [], storages: [], notifiers: [], codecs: [], decoders: [] };
  const issues: string[] = [];
  for (const { descriptor, config } of loaded.adapters) {
    const label = descriptor.label ?? descriptor.enabledBy ?? Object.keys(descriptor.env).join('/');
    let instance: unknown;
    try {
      instance = await descriptor.create(config, { engine: loaded.engine });
    } catch (error) {
      if (error instanceof ConfigError || (BackupError.isInstance(error) && error.code === 'CONFIG_INVALID')) {
        const list = (error as ConfigError).issues?.length ? (error as ConfigError).issues : [error.message];
        for (const issue of list) issues.push(`${label}: ${issue}`);
        continue;
      }
      throw error;
    }
    if (descriptor.kind === 'source') out.sources.push(instance as BackupSource);
    else if (descriptor.kind === 'storage') out.storages.push(instance as Storage);
    else if (descriptor.kind === 'notifier') out.notifiers.push(instance as Notifier);
    else if (descriptor.decodeOnly?.(config)) out.decoders.push(instance as Codec);
    else out.codecs.push(instance as Codec);
  }
  if (issues.length > 0) {
    throw new ConfigError(`Invalid environment configuration: ${issues.length} problem${issues.length > 1 ? 's' : ''} to fix`, issues, {
      hint: 'Fix the variables listed above in .env or the container environment; see docs/configuration.md for what each accepts.',
    });
  }
  return out;
}
