/**
 * The engine's defaults, each defined once: the engine, the scheduler, the health check and the
 * `.env` loader (and so the generated docs table) read them from here.
 */
export const ENGINE_DEFAULTS = Object.freeze({
  setPrefix: 'scholaria_backup',
  timeZone: 'UTC',
  concurrency: 2,
  /** 1 GiB. */
  minFreeBytes: 1024 ** 3,
  /** The strategy document's tiers: days kept (`within`). */
  retentionDays: Object.freeze({ daily: 7, weekly: 30, monthly: 365 }) as Readonly<Record<'daily' | 'weekly' | 'monthly', number>>,
  /** The strategy document's schedule: daily 02:00, weekly Sunday 03:00, monthly on the 1st 04:00. */
  schedules: Object.freeze({ daily: '0 2 * * *', weekly: '0 3 * * 0', monthly: '0 4 1 * *' }) as Readonly<Record<'daily' | 'weekly' | 'monthly', string>>,
});

/** The strategy document's three tiers, in order. */
export const ENGINE_TIERS = ['daily', 'weekly', 'monthly'] as const;
export type EngineTier = (typeof ENGINE_TIERS)[number];

