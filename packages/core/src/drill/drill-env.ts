import { z } from 'zod';
import { DEFAULT_DRILL_SCHEDULE, cronProblem } from '../scheduler/create-scheduler.js';
import { defineEnvGroup } from '../config/env-descriptor.js';
import { commaList, envBoolean, envInteger, envIssue, envUrl } from '../config/env-values.js';
import type { CrossStoreJoin } from './drill-types.js';

/** The drill settings the environment gives (targets are built from the sources' own settings). */
export interface DrillEnvSettings {
  /** Cron of the scheduled drill, undefined when `off`. */
  schedule: string | undefined;
  databasePrefix?: string;
  /** A separate PostgreSQL server for drills. */
  postgresUrl?: string;
  amcheck: boolean;
  redisDatabases?: number[];
  redisUrl?: string;
  celeryQueues?: string[];
  joins: CrossStoreJoin[];
  maxMismatches: number;
  anomalyDrop?: number | false;
}

/**
 * `TABLE.COLUMN=COLLECTION` (ids are Qdrant point ids) or `TABLE.COLUMN=COLLECTION:FIELD` (ids are
 * the payload field FIELD); TABLE may be schema-qualified; several joins separated by commas.
 */
export function parseJoinSpec(spec: string): { joins: CrossStoreJoin[]; problems: string[] } {
  const joins: CrossStoreJoin[] = [];
  const problems: string[] = [];
  for (const part of commaList(spec)) {
    const m = /^([A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\.([A-Za-z_][\w$]*)=([^:=\s]+)(?::([^:=\s]+))?$/.exec(part);
    if (!m) {
      problems.push(`"${part}" is not TABLE.COLUMN=COLLECTION or TABLE.COLUMN=COLLECTION:PAYLOAD_FIELD (e.g. chunks.id=chunks or public.chunks.id=chunks:chunk_id)`);
      continue;
    }
    joins.push({
      left: { component: 'postgres', table: m[1]!, column: m[2]! },
      right: { component: 'qdrant', collection: m[3]!, ...(m[4] ? { payloadField: m[4] } : {}) },
    });
  }
  return { joins, problems };
}

/** `0.5`, `50%` or `off`. */
export function parseAnomalyDrop(text: string): number | false | string {
  if (text.toLowerCase() === 'off') return false;
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text);
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  return n > 0 && n <= 1 ? n : 'expected a fraction above 0 and at most 1 (0.5), a percentage (50%) or "off"';
}

const scheduleValue = z.string().transform((s, ctx) => {
  if (s.toLowerCase() === 'off') return 'off';
  const problem = cronProblem(s);
  return problem === undefined ? s : envIssue(ctx, `${problem} (or "off")`);
});

const databaseList = z.string().transform((s, ctx) => {
  const parts = commaList(s);
  if (parts.length === 0 || parts.some((p) => !/^\d{1,7}$/.test(p))) return envIssue(ctx, 'expected database numbers separated by commas (e.g. 15 or 13,14,15)');
  return parts.map(Number);
});

const queueList = z.string().transform((s, ctx) => {
  const names = commaList(s);
  return names.some((n) => /\s/.test(n)) ? envIssue(ctx, 'expected queue names without spaces, separated by commas (e.g. celery,priority)') : names;
});

const prefixValue = z.string().regex(/^[a-z_][a-z0-9_]{0,30}$/, { message: 'expected 1-31 lower-case letters, digits and "_"' });

const joinValue = z.string().transform((s, ctx) => {
  const parsed = parseJoinSpec(s);
  return parsed.problems.length ? envIssue(ctx, parsed.problems.join('; ')) : parsed.joins;
});

const anomalyValue = z.string().transform((s, ctx) => {
  const v = parseAnomalyDrop(s);
  return typeof v === 'string' ? envIssue(ctx, v) : v;
});

/** BACKUP_DRILL_* and BACKUP_ANOMALY_DROP (docs/drills.md). */
export const drillEnvGroup = defineEnvGroup({
  name: 'drill',
  title: 'Restore drills and size anomalies (`scholaria-backup drill`, docs/drills.md)',
  env: {
    BACKUP_DRILL_SCHEDULE: { schema: scheduleValue, default: `\`${DEFAULT_DRILL_SCHEDULE}\` (Sunday 05:00)`, doc: 'cron of the scheduled restore drill, or `off`' },
    BACKUP_DRILL_DATABASE_PREFIX: { schema: prefixValue, default: '`scholaria_drill`', doc: 'PostgreSQL: the drill restores into `<prefix>_<drill id>` on the live server (or on `BACKUP_DRILL_POSTGRES_URL`)' },
    BACKUP_DRILL_POSTGRES_URL: {
      schema: envUrl(['postgres:', 'postgresql:'], 'postgresql://user:password@drill-host:5432/postgres'),
      url: true,
      doc: 'PostgreSQL: a separate server for drills (its database is the one connected to for CREATE/DROP DATABASE; the user needs CREATEDB) instead of drill databases beside the live ones',
    },
    BACKUP_DRILL_AMCHECK: { schema: envBoolean, default: '`true`', doc: "PostgreSQL: run amcheck's `bt_index_check` on the restored indexes where the extension is installed" },
    BACKUP_DRILL_REDIS_DB: { schema: databaseList, default: '`15`', doc: 'Redis: database numbers on the live server kept for drills (one per database in the dump), comma list' },
    BACKUP_DRILL_REDIS_URL: { schema: envUrl(['redis:', 'rediss:'], 'redis://:password@drill-host:6379'), url: true, doc: 'Redis: a separate Redis for drills instead of drill databases' },
    BACKUP_DRILL_CELERY_QUEUES: { schema: queueList, default: '`celery`', doc: 'Redis: Celery queues (lists) whose messages must be valid JSON, comma list' },
    BACKUP_DRILL_JOIN: { schema: joinValue, doc: 'cross-store check: `TABLE.COLUMN=COLLECTION` (point ids) or `TABLE.COLUMN=COLLECTION:PAYLOAD_FIELD`, comma list; e.g. `chunks.id=chunks`' },
    BACKUP_DRILL_MAX_MISMATCHES: { schema: envInteger(1, 9999, 'a whole number from 1 to 9999'), default: '`10`', doc: 'mismatches a drill check lists at most' },
    BACKUP_ANOMALY_DROP: { schema: anomalyValue, default: '`0.5`', doc: 'a component whose size or row/key/point count drops by more than this fraction (or `50%`) from the previous set of the tier is flagged; `off`' },
  },
  configure: ({ values, isSet, problem }): DrillEnvSettings => {
    if (isSet('BACKUP_DRILL_REDIS_URL') && isSet('BACKUP_DRILL_REDIS_DB')) problem('BACKUP_DRILL_REDIS_DB', 'set either BACKUP_DRILL_REDIS_DB (drill databases on the live Redis) or BACKUP_DRILL_REDIS_URL (a drill Redis), not both');
    const schedule = values.BACKUP_DRILL_SCHEDULE ?? DEFAULT_DRILL_SCHEDULE;
    return {
      schedule: schedule === 'off' ? undefined : schedule,
      ...(values.BACKUP_DRILL_DATABASE_PREFIX !== undefined ? { databasePrefix: values.BACKUP_DRILL_DATABASE_PREFIX } : {}),
      ...(values.BACKUP_DRILL_POSTGRES_URL !== undefined ? { postgresUrl: values.BACKUP_DRILL_POSTGRES_URL } : {}),
      amcheck: values.BACKUP_DRILL_AMCHECK ?? true,
      ...(values.BACKUP_DRILL_REDIS_DB !== undefined ? { redisDatabases: values.BACKUP_DRILL_REDIS_DB } : {}),
      ...(values.BACKUP_DRILL_REDIS_URL !== undefined ? { redisUrl: values.BACKUP_DRILL_REDIS_URL } : {}),
      ...(values.BACKUP_DRILL_CELERY_QUEUES?.length ? { celeryQueues: values.BACKUP_DRILL_CELERY_QUEUES } : {}),
      joins: values.BACKUP_DRILL_JOIN ?? [],
      maxMismatches: values.BACKUP_DRILL_MAX_MISMATCHES ?? 10,
      ...(values.BACKUP_ANOMALY_DROP !== undefined ? { anomalyDrop: values.BACKUP_ANOMALY_DROP } : {}),
    };
  },
});
