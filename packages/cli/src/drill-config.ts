import {
  DEFAULT_DRILL_SCHEDULE,
  validateCron,
  type CrossStoreJoin,
  type DrillTarget,
  type EnvConfig,
} from '@scholaria/backup-core';

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

export const DRILL_ENV_VARIABLES = [
  'BACKUP_DRILL_SCHEDULE',
  'BACKUP_DRILL_DATABASE_PREFIX',
  'BACKUP_DRILL_AMCHECK',
  'BACKUP_DRILL_REDIS_DB',
  'BACKUP_DRILL_REDIS_URL',
  'BACKUP_DRILL_CELERY_QUEUES',
  'BACKUP_DRILL_JOIN',
  'BACKUP_DRILL_MAX_MISMATCHES',
  'BACKUP_ANOMALY_DROP',
] as const;

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

/**
 * `TABLE.COLUMN=COLLECTION` (ids are Qdrant point ids) or `TABLE.COLUMN=COLLECTION:FIELD` (ids are
 * the payload field FIELD); TABLE may be schema-qualified; several joins separated by commas.
 */
export function parseJoinSpec(spec: string, label = 'BACKUP_DRILL_JOIN'): { joins: CrossStoreJoin[]; problems: string[] } {
  const joins: CrossStoreJoin[] = [];
  const problems: string[] = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\.([A-Za-z_][\w$]*)=([^:=\s]+)(?::([^:=\s]+))?$/.exec(part);
    if (!m) {
      problems.push(`${label}: "${part}" is not TABLE.COLUMN=COLLECTION or TABLE.COLUMN=COLLECTION:PAYLOAD_FIELD (e.g. chunks.id=chunks or public.chunks.id=chunks:chunk_id)`);
      continue;
    }
    joins.push({
      left: { component: 'postgres', table: m[1]!, column: m[2]! },
      right: { component: 'qdrant', collection: m[3]!, ...(m[4] ? { payloadField: m[4] } : {}) },
    });
  }
  return { joins, problems };
}

/** `0.5`, `50%` or `off` -> fraction or false. */
export function parseAnomalyDrop(value: string | undefined, issues: string[]): number | false | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (text.toLowerCase() === 'off') return false;
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text);
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(n > 0 && n <= 1)) {
    issues.push(`BACKUP_ANOMALY_DROP: "${text}" must be a fraction above 0 and at most 1 (0.5), a percentage (50%) or "off"`);
    return undefined;
  }
  return n;
}

function intList(value: string, label: string, issues: string[]): number[] | undefined {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0 || parts.some((p) => !/^\d{1,7}$/.test(p))) {
    issues.push(`${label}: "${value}" must be database numbers separated by commas (e.g. 15 or 13,14,15)`);
    return undefined;
  }
  return parts.map(Number);
}

function onOff(value: string | undefined, label: string, dflt: boolean, issues: string[]): boolean {
  const t = value?.trim().toLowerCase();
  if (!t) return dflt;
  if (['on', 'true', '1', 'yes'].includes(t)) return true;
  if (['off', 'false', '0', 'no'].includes(t)) return false;
  issues.push(`${label}: "${value}" must be on or off`);
  return dflt;
}

/** Drill settings from the environment: one target per configured component, on the same servers. */
export async function drillSettingsFromEnv(env: Record<string, string | undefined>, config: EnvConfig, issues: string[]): Promise<DrillSettings> {
  const schedule = scheduleFrom(env.BACKUP_DRILL_SCHEDULE, 'BACKUP_DRILL_SCHEDULE', config.timeZone, issues);
  const targets: DrillTarget[] = [];
  const collectTarget = (label: string, make: () => DrillTarget) => {
    try {
      targets.push(make());
    } catch (error) {
      const list = (error as { issues?: string[] }).issues?.length ? (error as { issues: string[] }).issues : [(error as Error).message];
      for (const issue of list) issues.push(`${label}: ${issue}`);
    }
  };
  const components = new Set(config.components);
  if (components.has('postgres') && config.postgres) {
    const pg = config.postgres;
    const { createPostgresDrillTarget } = await import('@scholaria/backup-postgres');
    const prefix = env.BACKUP_DRILL_DATABASE_PREFIX?.trim();
    const amcheck = onOff(env.BACKUP_DRILL_AMCHECK, 'BACKUP_DRILL_AMCHECK', true, issues);
    collectTarget('BACKUP_DRILL_DATABASE_PREFIX', () =>
      createPostgresDrillTarget({ url: pg.url, ...(pg.pgBinDir ? { binDir: pg.pgBinDir } : {}) }, { amcheck, ...(prefix ? { databasePrefix: prefix } : {}) }),
    );
  }
  if (components.has('redis') && config.redis) {
    const url = config.redis.url;
    const { createRedisDrillTarget } = await import('@scholaria/backup-redis');
    const drillUrl = env.BACKUP_DRILL_REDIS_URL?.trim();
    const dbs = env.BACKUP_DRILL_REDIS_DB?.trim() ? intList(env.BACKUP_DRILL_REDIS_DB, 'BACKUP_DRILL_REDIS_DB', issues) : undefined;
    const queues = env.BACKUP_DRILL_CELERY_QUEUES?.split(',').map((s) => s.trim()).filter(Boolean);
    collectTarget('BACKUP_DRILL_REDIS_*', () =>
      createRedisDrillTarget({ url }, { ...(drillUrl ? { url: drillUrl } : {}), ...(dbs ? { databases: dbs } : {}), ...(queues?.length ? { queues } : {}) }),
    );
  }
  if (components.has('qdrant') && config.qdrant) {
    const q = config.qdrant;
    const { createQdrantDrillTarget } = await import('@scholaria/backup-qdrant');
    collectTarget('QDRANT_URL', () => createQdrantDrillTarget({ url: q.url, ...(q.apiKey ? { apiKey: q.apiKey } : {}) }));
  }
  let joins: CrossStoreJoin[] = [];
  if (env.BACKUP_DRILL_JOIN?.trim()) {
    const parsed = parseJoinSpec(env.BACKUP_DRILL_JOIN);
    issues.push(...parsed.problems);
    joins = parsed.joins;
  }
  let maxMismatches = 10;
  const mm = env.BACKUP_DRILL_MAX_MISMATCHES?.trim();
  if (mm) {
    if (/^\d{1,4}$/.test(mm) && Number(mm) >= 1) maxMismatches = Number(mm);
    else issues.push(`BACKUP_DRILL_MAX_MISMATCHES: "${mm}" must be a whole number from 1 to 9999`);
  }
  return { schedule, targets, joins, maxMismatches, maxAgeMs: schedule ? drillMaxAge(schedule, config.timeZone) : undefined };
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
