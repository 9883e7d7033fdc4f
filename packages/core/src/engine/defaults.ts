import { availableParallelism, cpus } from 'node:os';

/**
 * The engine's defaults, each defined once: the engine, the scheduler, the health check and the
 * `.env` loader (and so the generated docs table) read them from here.
 */
export const ENGINE_DEFAULTS = Object.freeze({
  setPrefix: 'scholaria_backup',
  timeZone: 'UTC',
  /** 1 GiB. */
  minFreeBytes: 1024 ** 3,
  /** The strategy document's tiers: days kept (`within`). */
  retentionDays: Object.freeze({ daily: 7, weekly: 30, monthly: 365 }) as Readonly<Record<'daily' | 'weekly' | 'monthly', number>>,
  /** The strategy document's schedule: daily 02:00, weekly Sunday 03:00, monthly on the 1st 04:00. */
  schedules: Object.freeze({ daily: '0 2 * * *', weekly: '0 3 * * 0', monthly: '0 4 1 * *' }) as Readonly<Record<'daily' | 'weekly' | 'monthly', string>>,
});

/** How the default concurrency is described in docs (`defaultConcurrency`). */
export const DEFAULT_CONCURRENCY_DOC = 'one per component, at most the CPU cores (`os.availableParallelism()`)';

/**
 * Components backed up at once when `concurrency` is not set: all of them, but no more than
 * there are cores, since each component's tools (pg_dump, zstd, the Redis fork, Node) want a core.
 */
export function defaultConcurrency(components: number, cores: number = coreCount()): number {
  return Math.max(1, Math.min(components, cores, 16));
}

function coreCount(): number {
  // availableParallelism is Node >= 18.14; cpus() can be empty in some containers.
  const os = { availableParallelism, cpus };
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : Math.max(1, os.cpus().length);
}

/** The strategy document's three tiers, in order. */
export const ENGINE_TIERS = ['daily', 'weekly', 'monthly'] as const;
export type EngineTier = (typeof ENGINE_TIERS)[number];

