import { DEFAULT_DRILL_SCHEDULE, validateCron, type CrossStoreJoin, type DrillTarget, type LoadedEnv } from '@scholaria/backup-core';
import { drillEnvGroup } from '@scholaria/backup-core';

/** The drill settings of a run: from the config file's `drill` key or the BACKUP_DRILL_* variables. */
export interface DrillSettings {
  /** Cron of the scheduled drill; undefined when drills are off. */
  schedule: string | undefined;
  targets: DrillTarget[];
  joins: CrossStoreJoin[];
  maxMismatches: number;
  /** Twice the longest gap between two scheduled drills: older than this, health-check warns. */
  maxAgeMs: number | undefined;
}

/** What a config file may put under `drill`. */
export interface DrillFileConfig {
  /** Cron expression, or 'off'. Default weekly (Sunday 05:00). */
  schedule?: string;
  targets?: DrillTarget[];
  joins?: CrossStoreJoin[];
  maxMismatches?: number;
}

/** Twice the longest gap between the next few runs of `cron` (a monthly drill has uneven gaps). */
export function drillMaxAge(cron: string, timeZone: string): number {
  const c = validateCron(cron, 'BACKUP_DRILL_SCHEDULE', timeZone);
  const runs = c.nextRuns(6);
  c.stop();
  let gap = 0;
  for (let i = 1; i < runs.length; i++) gap = Math.max(gap, runs[i]!.getTime() - runs[i - 1]!.getTime());
  return 2 * gap;
}

function scheduleFrom(value: string | undefined, label: string, timeZone: string, issues: string[]): string | undefined {
  const text = value?.trim();
  if (text === undefined || text === '') return DEFAULT_DRILL_SCHEDULE;
  if (text.toLowerCase() === 'off') return undefined;
  try {
    validateCron(text, label, timeZone).stop();
    return text;
  } catch (error) {
    issues.push(`${(error as Error).message} (or "off" to turn scheduled drills off)`);
    return undefined;
  }
}

/** Drill settings from the environment: one target per configured component, on the live servers or the drill servers given. */
export async function drillSettingsFromEnv(loaded: LoadedEnv, issues: string[]): Promise<DrillSettings> {
  const d = loaded.configOf(drillEnvGroup) ?? { schedule: DEFAULT_DRILL_SCHEDULE, amcheck: true, joins: [], maxMismatches: 10 };
  const targets: DrillTarget[] = [];
  const collectTarget = (label: string, make: () => DrillTarget) => {
    try {
      targets.push(make());
    } catch (error) {
      const list = (error as { issues?: string[] }).issues?.length ? (error as { issues: string[] }).issues : [(error as Error).message];
      for (const issue of list) issues.push(`${label}: ${issue}`);
    }
  };
  const configOf = <C>(name: string) => loaded.adapters.find((a) => a.descriptor.kind === 'source' && a.descriptor.name === name)?.config as C | undefined;
  const pg = configOf<{ url: string; pgBinDir?: string }>('postgres');
  if (pg) {
    const { createPostgresDrillTarget } = await import('@scholaria/backup-postgres');
    collectTarget(d.postgresUrl ? 'BACKUP_DRILL_POSTGRES_URL' : 'BACKUP_DRILL_DATABASE_PREFIX', () =>
      createPostgresDrillTarget(
        { url: pg.url, ...(pg.pgBinDir ? { binDir: pg.pgBinDir } : {}) },
        { amcheck: d.amcheck, ...(d.databasePrefix ? { databasePrefix: d.databasePrefix } : {}), ...(d.postgresUrl ? { url: d.postgresUrl } : {}) },
      ),
    );
  }
  const redis = configOf<{ url: string }>('redis');
  if (redis) {
    const { createRedisDrillTarget } = await import('@scholaria/backup-redis');
    collectTarget('BACKUP_DRILL_REDIS_*', () =>
      createRedisDrillTarget(
        { url: redis.url },
        { ...(d.redisUrl ? { url: d.redisUrl } : {}), ...(d.redisDatabases ? { databases: d.redisDatabases } : {}), ...(d.celeryQueues ? { queues: d.celeryQueues } : {}) },
      ),
    );
  }
  const q = configOf<{ url: string; apiKey?: string }>('qdrant');
  if (q) {
    const { createQdrantDrillTarget } = await import('@scholaria/backup-qdrant');
    collectTarget('QDRANT_URL', () => createQdrantDrillTarget({ url: q.url, ...(q.apiKey ? { apiKey: q.apiKey } : {}) }));
  }
  const schedule = d.schedule;
  return { schedule, targets, joins: d.joins, maxMismatches: d.maxMismatches, maxAgeMs: schedule ? drillMaxAge(schedule, loaded.engine.timeZone) : undefined };
}

/** Drill settings from a config file's `drill` key (targets built by the file itself). */
export function drillSettingsFromFile(drill: DrillFileConfig | undefined, timeZone: string, issues: string[]): DrillSettings {
  if (drill !== undefined && (typeof drill !== 'object' || drill === null)) {
    issues.push('drill: expected { schedule?, targets, joins?, maxMismatches? }');
    return { schedule: undefined, targets: [], joins: [], maxMismatches: 10, maxAgeMs: undefined };
  }
  const targets = drill?.targets ?? [];
  if (!Array.isArray(targets)) issues.push('drill.targets: expected an array of drill targets (createPostgresDrillTarget(...), ...)');
  // Without targets a file configures no drill: the schedule stays off rather than failing weekly.
  const schedule = targets.length ? scheduleFrom(drill?.schedule, 'drill.schedule', timeZone, issues) : undefined;
  const maxMismatches = drill?.maxMismatches ?? 10;
  if (!Number.isInteger(maxMismatches) || maxMismatches < 1) issues.push('drill.maxMismatches: expected a whole number >= 1');
  return {
    schedule,
    targets: Array.isArray(targets) ? targets : [],
    joins: drill?.joins ?? [],
    maxMismatches,
    maxAgeMs: schedule ? drillMaxAge(schedule, timeZone) : undefined,
  };
}
