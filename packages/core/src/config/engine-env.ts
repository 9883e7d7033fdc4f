import { z } from 'zod';
import type { RetentionConfig } from '../engine/types.js';
import { DEFAULT_CONCURRENCY_DOC, ENGINE_DEFAULTS, ENGINE_TIERS, type EngineTier } from '../engine/defaults.js';
import { DEFAULT_NOTIFY_ON, NOTIFY_OUTCOMES } from '../notify/dispatch-notification.js';
import type { NotifyOutcome } from '../interfaces/events.js';
import { retentionFromDays } from '../retention/tier-retention.js';
import { cronProblem } from '../scheduler/create-scheduler.js';
import type { EnvGroup, EnvVariable, EnvVariables } from './env-descriptor.js';
import { envByteSize, envEnumList, envInteger, envIssue } from './env-values.js';
import { isUtc } from '../util/time-zone.js';

/** The engine's own settings from the environment: no adapter is named here. */
export interface EngineEnvSettings {
  setPrefix: string;
  timeZone: string;
  retentionDays: Record<EngineTier, number>;
  /** `retentionFromDays(retentionDays)`: `{ tiers: { daily: { within: '7d' }, ... } }`. */
  retention: RetentionConfig;
  schedules: Record<EngineTier, string>;
  /** `BACKUP_CONCURRENCY`; undefined: the engine's default (one per component, at most the cores). */
  concurrency?: number;
  minFreeDiskBytes: number;
  /** Outcomes the notifiers announce (`BACKUP_NOTIFY_ON`). */
  notifyOn: NotifyOutcome[];
  /** Names of the sources to back up: `BACKUP_COMPONENTS`, else every configured source. */
  components: string[];
}

const retentionDays = envInteger(1, 100_000, 'a whole number of days >= 1 (e.g. 7)');

const cronValue = z.string().transform((s, ctx) => {
  const problem = cronProblem(s);
  return problem === undefined ? s : envIssue(ctx, problem);
});

const timeZoneValue = z.string().transform((s, ctx) => {
  // The usual value, without loading ICU's zone data; Intl names Etc/UTC "UTC" as well.
  if (isUtc(s)) return 'UTC';
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: s }).resolvedOptions().timeZone;
  } catch {
    return envIssue(ctx, 'expected an IANA time zone name such as "UTC" or "Asia/Seoul"');
  }
});

const setPrefix = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, {
  message: 'expected letters, digits, "_" and "-", starting with a letter or digit',
});

const upper = (tier: string) => tier.toUpperCase();
const SCHEDULE_NOTES: Record<EngineTier, string> = { daily: '', weekly: ' (Sunday 03:00)', monthly: ' (the 1st, 04:00)' };

/** `BACKUP_<TIER>_RETENTION` and `BACKUP_<TIER>_SCHEDULE` for each of the three tiers. */
function tierVariables(): EnvVariables {
  const out: EnvVariables = {};
  for (const tier of ENGINE_TIERS) {
    out[`BACKUP_${upper(tier)}_RETENTION`] = {
      schema: retentionDays,
      default: `\`${ENGINE_DEFAULTS.retentionDays[tier]}\``,
      doc:
        tier === 'daily'
          ? 'days the daily tier is kept (whole number >= 1): sets within that many days of the tier\'s newest set'
          : `days the ${tier} tier is kept`,
    };
  }
  for (const tier of ENGINE_TIERS) {
    out[`BACKUP_${upper(tier)}_SCHEDULE`] = {
      schema: cronValue,
      default: `\`${ENGINE_DEFAULTS.schedules[tier]}\``,
      doc: `cron of the ${tier} tier${tier === 'daily' ? ' (5 fields, or 6 with seconds first: `0 0 2 * * *`)' : SCHEDULE_NOTES[tier]}`,
    };
  }
  return out;
}

/**
 * The engine's variables. `sources` are the names `BACKUP_COMPONENTS` accepts (the source
 * descriptors given to `loadEnv`).
 */
export function engineEnvGroup(sources: readonly string[]): EnvGroup<EnvVariables, Omit<EngineEnvSettings, 'components'>> {
  const components: EnvVariable<string[]> = {
    schema: envEnumList(sources),
    default: 'those whose URL is set',
    doc: `comma list of ${sources.map((s) => `\`${s}\``).join(', ')}; each needs its URL`,
  };
  return {
    name: 'engine',
    title: 'Engine (`@scholaria/backup-core`)',
    env: {
      ...tierVariables(),
      BACKUP_TIMEZONE: { schema: timeZoneValue, default: `\`${ENGINE_DEFAULTS.timeZone}\` (\`Asia/Seoul\` in \`examples/scholaria\`)`, doc: 'IANA zone of the schedules, set ids and timestamps' },
      BACKUP_SET_PREFIX: { schema: setPrefix, default: `\`${ENGINE_DEFAULTS.setPrefix}\``, doc: 'set id prefix, `[A-Za-z0-9][A-Za-z0-9_-]*`' },
      BACKUP_COMPONENTS: components,
      BACKUP_CONCURRENCY: { schema: envInteger(1, 16, 'a whole number from 1 to 16'), default: DEFAULT_CONCURRENCY_DOC, doc: 'components backed up at once, 1-16' },
      BACKUP_MIN_FREE_DISK: {
        schema: envByteSize,
        default: '`1GiB`',
        doc: 'health-check warns below this free space on a storage and fails below a quarter of it: bytes, or a number with `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000), `KiB`/`MiB`/`GiB`/`TiB` or `K`/`M`/`G`/`T` (powers of 1024)',
      },
      BACKUP_NOTIFY_ON: {
        schema: envEnumList(NOTIFY_OUTCOMES, { all: NOTIFY_OUTCOMES }),
        default: `\`${DEFAULT_NOTIFY_ON.join(',')}\``,
        doc: 'comma list of `start`, `success`, `partial`, `failure`, or `all`',
      },
    },
    configure({ values }) {
      const v = values as Record<string, unknown>;
      const days = Object.fromEntries(ENGINE_TIERS.map((t) => [t, (v[`BACKUP_${upper(t)}_RETENTION`] as number | undefined) ?? ENGINE_DEFAULTS.retentionDays[t]])) as Record<EngineTier, number>;
      const schedules = Object.fromEntries(ENGINE_TIERS.map((t) => [t, (v[`BACKUP_${upper(t)}_SCHEDULE`] as string | undefined) ?? ENGINE_DEFAULTS.schedules[t]])) as Record<EngineTier, string>;
      return {
        setPrefix: (v.BACKUP_SET_PREFIX as string | undefined) ?? ENGINE_DEFAULTS.setPrefix,
        timeZone: (v.BACKUP_TIMEZONE as string | undefined) ?? ENGINE_DEFAULTS.timeZone,
        retentionDays: days,
        retention: retentionFromDays(days),
        schedules,
        ...(v.BACKUP_CONCURRENCY !== undefined ? { concurrency: v.BACKUP_CONCURRENCY as number } : {}),
        minFreeDiskBytes: (v.BACKUP_MIN_FREE_DISK as number | undefined) ?? ENGINE_DEFAULTS.minFreeBytes,
        notifyOn: (v.BACKUP_NOTIFY_ON as NotifyOutcome[] | undefined) ?? [...DEFAULT_NOTIFY_ON],
      };
    },
  };
}
