import { hostname, userInfo } from 'node:os';
import type { BackupEngineOptions } from './types.js';
import type { BackupSource } from '../interfaces/source.js';
import type { Storage } from '../interfaces/storage.js';
import type { Codec } from '../interfaces/codec.js';
import type { Notifier } from '../interfaces/notifier.js';
import type { Logger } from '../interfaces/logger.js';
import { silentLogger } from '../interfaces/logger.js';
import type { BackupEvent } from '../interfaces/events.js';
import { ConfigError } from '../errors/backup-error.js';
import { assertTimeZone } from '../util/time-zone.js';
import { createRedactor } from '../notify/redact.js';
import { ENGINE_DEFAULTS } from './defaults.js';
import { dispatchNotification } from '../notify/dispatch-notification.js';

/** Everything the engine's operations share, resolved and validated once. */
export interface EngineContext {
  options: BackupEngineOptions;
  sources: BackupSource[];
  storages: Storage[];
  codecs: Codec[];
  decoders: Codec[];
  notifiers: Notifier[];
  logger: Logger;
  setPrefix: string;
  timeZone: string;
  /** Set by the caller; undefined: `defaultConcurrency` of the components of each run. */
  concurrency: number | undefined;
  clock: () => Date;
  lockTtlMs: number;
  actor: string;
  host: string;
  redact: (text: string) => string;
  notify(event: Omit<BackupEvent, 'time' | 'host'>): Promise<void>;
}

function checkSpec(kind: string, items: { specVersion?: unknown; name?: unknown }[], issues: string[]): void {
  items.forEach((item, i) => {
    if (!item || typeof item !== 'object') {
      issues.push(`${kind}[${i}] is not an object`);
      return;
    }
    if (item.specVersion !== 'v1') {
      issues.push(
        `${kind}[${i}] (${String(item.name ?? 'unnamed')}) has specVersion ${JSON.stringify(item.specVersion)}; this engine supports 'v1' — upgrade the adapter or the core so they match`,
      );
    }
    if (typeof item.name !== 'string' || item.name === '') issues.push(`${kind}[${i}] has no name`);
  });
}

function defaultActor(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? 'unknown';
  }
  return `${user}@${hostname()}`;
}

export function createEngineContext(options: BackupEngineOptions): EngineContext {
  const issues: string[] = [];
  const sources = options.sources ?? [];
  const storages = Array.isArray(options.storage) ? options.storage : options.storage ? [options.storage] : [];
  if (!Array.isArray(sources)) issues.push('sources must be an array of BackupSource');
  if (storages.length === 0) issues.push('storage: at least one Storage is required (e.g. createFsStorage({ root: "/backup" }))');
  checkSpec('sources', sources, issues);
  checkSpec('storage', storages, issues);
  checkSpec('codecs', options.codecs ?? [], issues);
  checkSpec('decoders', options.decoders ?? [], issues);
  checkSpec('notifiers', options.notifiers ?? [], issues);
  const names = new Set<string>();
  for (const s of sources) {
    if (typeof s?.name === 'string' && !/^[a-z][a-z0-9-]*$/.test(s.name)) {
      issues.push(`sources: component name "${s.name}" must be lower-case letters, digits and dashes`);
    }
    if (names.has(s?.name)) issues.push(`sources: two sources are named "${s.name}"; give each a distinct name`);
    names.add(s?.name);
  }
  const setPrefix = options.setPrefix ?? ENGINE_DEFAULTS.setPrefix;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(setPrefix)) {
    issues.push(`setPrefix "${setPrefix}" may contain only letters, digits, "_" and "-" and must start with a letter or digit`);
  }
  const timeZone = options.timeZone ?? ENGINE_DEFAULTS.timeZone;
  try {
    assertTimeZone(timeZone);
  } catch {
    issues.push(`timeZone "${timeZone}" is not a valid IANA time zone (e.g. "UTC", "Asia/Seoul")`);
  }
  const concurrency = options.concurrency;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)) {
    issues.push(`concurrency must be an integer from 1 to 64 (got ${String(concurrency)})`);
  }
  const lockTtlMs = options.lockTtlMs ?? 10 * 60_000;
  if (!Number.isFinite(lockTtlMs) || lockTtlMs < 1000) issues.push('lockTtlMs must be at least 1000');
  if (issues.length > 0) throw new ConfigError('Invalid backup engine options:', issues);

  const logger = options.logger ?? silentLogger;
  const redact = createRedactor(options.secrets ?? []);
  const host = options.host ?? hostname();
  const notifiers = options.notifiers ?? [];
  const ctx: EngineContext = {
    options,
    sources,
    storages,
    codecs: options.codecs ?? [],
    decoders: options.decoders ?? [],
    notifiers,
    logger,
    setPrefix,
    timeZone,
    concurrency,
    clock: options.clock ?? (() => new Date()),
    lockTtlMs,
    actor: options.actor ?? defaultActor(),
    host,
    redact,
    async notify(partial) {
      const event: BackupEvent = { ...partial, time: new Date().toISOString(), host };
      try {
        options.onEvent?.(event);
      } catch (error) {
        logger.warn(`onEvent handler failed: ${redact((error as Error).message)}`);
      }
      if (notifiers.length === 0) return;
      await dispatchNotification(notifiers, event, { logger, redact, ...(options.notify ?? {}) });
    },
  };
  return ctx;
}
