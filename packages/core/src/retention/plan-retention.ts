import { BackupError } from '../errors/backup-error.js';
import { assertTimeZone, zonedParts } from '../util/time-zone.js';
import {
  formatResticDuration,
  isZeroResticDuration,
  resticDurationProblem,
  parseResticDuration,
  type ResticDuration,
} from './duration.js';
import {
  RETENTION_COUNT_FIELDS,
  RETENTION_WITHIN_FIELDS,
  type PlanRetentionOptions,
  type RetentionCandidate,
  type RetentionCounters,
  type RetentionCountField,
  type RetentionKeep,
  type RetentionPlan,
  type RetentionPolicy,
  type RetentionWithinField,
} from './types.js';

/** A policy after validation: counts with 0 for "off", durations parsed, tags as given. */
export interface ValidatedRetentionPolicy {
  counts: Record<RetentionCountField, number>;
  within: Partial<Record<RetentionWithinField, ResticDuration>>;
  tags: string[][];
  empty: boolean;
}

const KNOWN_FIELDS = new Set<string>([...RETENTION_COUNT_FIELDS, ...RETENTION_WITHIN_FIELDS, 'tags']);

const POLICY_HINT =
  'Counts (last, hourly, daily, weekly, monthly, yearly) are whole numbers, -1 for unlimited; ' +
  'within* are durations like "7d" or "1y2m" (m = months); tags is a list of tag lists, e.g. [["keep"]].';

/**
 * Checks a policy and returns it parsed. Throws BackupError RETENTION_INVALID listing every bad
 * field (and refusing an empty policy unless `allowEmpty`); `where` names the policy in messages,
 * e.g. `retention.tiers.daily`.
 */
export function validateRetentionPolicy(
  policy: RetentionPolicy,
  where = 'retention policy',
  { allowEmpty = false }: { allowEmpty?: boolean } = {},
): ValidatedRetentionPolicy {
  const problems: string[] = [];
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new BackupError('RETENTION_INVALID', `${where}: a retention policy must be an object, got ${describe(policy)}`, {
      hint: POLICY_HINT,
    });
  }
  for (const key of Object.keys(policy)) {
    if (!KNOWN_FIELDS.has(key)) {
      problems.push(`${where}.${key}: unknown field (known: ${[...KNOWN_FIELDS].join(', ')})`);
    }
  }
  const counts = {} as Record<RetentionCountField, number>;
  for (const field of RETENTION_COUNT_FIELDS) {
    const value = policy[field];
    counts[field] = 0;
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < -1) {
      problems.push(`${where}.${field}: must be a whole number >= 0, or -1 for unlimited; got ${describe(value)}`);
      continue;
    }
    counts[field] = value;
  }
  const within: ValidatedRetentionPolicy['within'] = {};
  for (const field of RETENTION_WITHIN_FIELDS) {
    const value = policy[field];
    if (value === undefined) continue;
    const problem = resticDurationProblem(value);
    if (problem) {
      problems.push(`${where}.${field}: ${problem}`);
      continue;
    }
    const parsed = parseResticDuration(value);
    if (isZeroResticDuration(parsed)) {
      problems.push(`${where}.${field}: must be longer than zero, got ${describe(value)} (leave the field out to switch the rule off)`);
      continue;
    }
    within[field] = parsed;
  }
  let tags: string[][] = [];
  if (policy.tags !== undefined) {
    const ok =
      Array.isArray(policy.tags) &&
      policy.tags.every((l) => Array.isArray(l) && l.length > 0 && l.every((t) => typeof t === 'string'));
    if (ok) tags = policy.tags.map((l) => [...l]);
    else {
      problems.push(
        `${where}.tags: must be a list of non-empty lists of tag strings, e.g. [["keep"], ["release", "prod"]]; got ${describe(policy.tags)}`,
      );
    }
  }
  if (problems.length > 0) {
    throw new BackupError('RETENTION_INVALID', `Invalid retention policy:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: POLICY_HINT,
      details: { issues: problems },
    });
  }
  const empty =
    RETENTION_COUNT_FIELDS.every((f) => counts[f] === 0) && Object.keys(within).length === 0 && tags.length === 0;
  if (empty && !allowEmpty) {
    throw new BackupError(
      'RETENTION_INVALID',
      `${where}: the retention policy is empty, which would remove every set; set at least one of ${[...KNOWN_FIELDS].join(', ')}`,
      { hint: `Give the policy at least one rule, e.g. { within: '7d' } or { daily: 7 }. ${POLICY_HINT}` },
    );
  }
  return { counts, within, tags, empty };
}

/** restic-style summary: `keep 7 daily, all monthly snapshots and all snapshots within 7d of the newest`. */
export function describeRetentionPolicy(policy: RetentionPolicy): string {
  const p = validateRetentionPolicy(policy, 'retention policy', { allowEmpty: true });
  const keeps: string[] = [];
  const names: Record<RetentionCountField, string> = {
    last: 'latest',
    hourly: 'hourly',
    daily: 'daily',
    weekly: 'weekly',
    monthly: 'monthly',
    yearly: 'yearly',
  };
  for (const f of RETENTION_COUNT_FIELDS) {
    if (p.counts[f] > 0) keeps.push(`${p.counts[f]} ${names[f]}`);
    else if (p.counts[f] === -1) keeps.push(`all ${names[f]}`);
  }
  const keepw: string[] = [];
  for (const [f, word] of [
    ['withinHourly', 'hourly'],
    ['withinDaily', 'daily'],
    ['withinWeekly', 'weekly'],
    ['withinMonthly', 'monthly'],
    ['withinYearly', 'yearly'],
  ] as const) {
    const d = p.within[f];
    if (d) keepw.push(`${word} snapshots within ${formatResticDuration(d)}`);
  }
  let s = keeps.length > 0 ? `${keeps.join(', ')} snapshots` : '';
  if (keepw.length > 0) s += (s ? ', ' : '') + keepw.join(', ');
  if (p.tags.length > 0) s += (s ? ' and ' : '') + `all snapshots with tags ${p.tags.map(tagListString).join(' or ')}`;
  if (p.within.within) s += (s ? ' and ' : '') + `all snapshots within ${formatResticDuration(p.within.within)} of the newest`;
  return s ? `keep ${s}` : 'remove';
}

/**
 * Decides which sets to keep under `policy` with restic's `forget` semantics (restic
 * `internal/data/snapshot_policy.go`, `ApplyPolicy`), including its reason strings. Sets are
 * processed newest first (stable for equal times); every rule is evaluated on every set.
 */
export function planRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  options: PlanRetentionOptions = {},
): RetentionPlan {
  const p = validateRetentionPolicy(policy, 'retention policy', { allowEmpty: options.allowEmptyPolicy === true });
  if (options.timeZone !== undefined) {
    try {
      assertTimeZone(options.timeZone);
    } catch (error) {
      throw new BackupError('RETENTION_INVALID', `planRetention: timeZone "${options.timeZone}" is not a valid IANA time zone`, {
        cause: error,
        hint: 'Use a name like "UTC" or "Asia/Seoul".',
      });
    }
  }
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new BackupError('RETENTION_INVALID', 'planRetention: options.now must be a valid Date', {
      hint: 'Pass a Date, or leave it out to use the current time.',
    });
  }
  const list = parseCandidates(candidates, options.timeZone);
  // Array.prototype.sort is stable, so equal times keep their input order like Go's sort.Stable.
  list.sort((a, b) => compareRetentionTime(b.time, a.time));

  const keep: RetentionKeep[] = [];
  const remove: { id: string }[] = [];
  if (list.length === 0) return { keep, remove };

  const nowTime: RetentionInstant = { ms: now.getTime(), subMs: 0, offsetMinutes: 0 };
  // The newest set that is not in the future anchors every `within` window.
  const latest = list.find((c) => compareRetentionTime(c.time, nowTime) < 0)?.time;
  const cutoffs = new Map<RetentionWithinField, RetentionInstant | undefined>();
  for (const field of RETENTION_WITHIN_FIELDS) {
    const d = p.within[field];
    if (d) cutoffs.set(field, latest ? subtractDuration(latest, d, options.timeZone) : undefined);
  }
  const isWithin = (field: RetentionWithinField, t: RetentionInstant): boolean => {
    const cutoff = cutoffs.get(field);
    // With every set in the future restic's anchor is Go's zero time, which every set is after.
    return cutoff === undefined || compareRetentionTime(t, cutoff) > 0;
  };

  const buckets = [
    { field: 'last', bucket: (_: Wall, nr: number) => nr, reason: 'last snapshot' },
    { field: 'hourly', bucket: ymdh, reason: 'hourly snapshot' },
    { field: 'daily', bucket: ymd, reason: 'daily snapshot' },
    { field: 'weekly', bucket: yw, reason: 'weekly snapshot' },
    { field: 'monthly', bucket: ym, reason: 'monthly snapshot' },
    { field: 'yearly', bucket: y, reason: 'yearly snapshot' },
  ].map((b) => ({ ...b, count: p.counts[b.field as RetentionCountField], last: -1 }));
  const bucketsWithin = (
    [
      ['withinHourly', ymdh, 'hourly within'],
      ['withinDaily', ymd, 'daily within'],
      ['withinWeekly', yw, 'weekly within'],
      ['withinMonthly', ym, 'monthly within'],
      ['withinYearly', y, 'yearly within'],
    ] as const
  ).map(([field, bucket, reason]) => ({ field, bucket, reason, duration: p.within[field], last: -1 }));

  list.forEach((cur, nr) => {
    const isOldest = nr === list.length - 1;
    const wall = wallClock(cur.time);
    const reasons: string[] = [];
    let keepIt = false;

    for (const tagList of p.tags) {
      if (hasTags(cur.tags, tagList)) {
        keepIt = true;
        reasons.push(`has tags ${tagListString(tagList)}`);
      }
    }

    if (p.within.within && isWithin('within', cur.time)) {
      keepIt = true;
      reasons.push(`within ${formatResticDuration(p.within.within)}`);
    }

    for (const b of buckets) {
      if (b.count > 0 || b.count === -1) {
        const val = b.bucket(wall, nr);
        // A rule with budget left when it reaches the oldest set keeps that one too, which
        // maximises the history kept.
        if (val !== b.last || isOldest) {
          keepIt = true;
          reasons.push(val === b.last && isOldest ? `oldest ${b.reason}` : b.reason);
          b.last = val;
          if (b.count > 0) b.count--;
        }
      }
    }

    for (const b of bucketsWithin) {
      if (!b.duration || !isWithin(b.field, cur.time)) continue;
      const val = b.bucket(wall);
      if (val !== b.last || isOldest) {
        keepIt = true;
        const reason = val === b.last && isOldest ? `oldest ${b.reason}` : b.reason;
        reasons.push(`${reason} ${formatResticDuration(b.duration)}`);
        b.last = val;
      }
    }

    if (keepIt) {
      const counters = Object.fromEntries(buckets.map((b) => [b.field, b.count])) as unknown as RetentionCounters;
      keep.push({ id: cur.id, reasons, counters });
    } else {
      remove.push({ id: cur.id });
    }
  });
  return { keep, remove };
}

/** A point in time with the UTC offset it was written in (restic buckets in that offset). */
export interface RetentionInstant {
  ms: number;
  /** Fraction of a millisecond in nanoseconds (0-999999), for stamps finer than ms. */
  subMs: number;
  offsetMinutes: number;
  /** When set, the calendar is this zone's, not the fixed offset's. */
  timeZone?: string;
}

interface ParsedCandidate {
  id: string;
  time: RetentionInstant;
  tags: string[];
}

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/**
 * Parses a Date or an ISO 8601 timestamp with offset into a point in time, or returns why it cannot.
 * Exported for the tier planner and the engine, which take the same time values.
 */
export function parseRetentionTime(value: Date | string, timeZone?: string): RetentionInstant | string {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) return 'is an invalid Date';
    return withZone({ ms, subMs: 0, offsetMinutes: 0 }, timeZone);
  }
  if (typeof value !== 'string') return `must be a Date or an ISO 8601 string with offset, got ${describe(value)}`;
  const m = ISO_RE.exec(value.trim());
  if (!m) return `"${value}" is not an ISO 8601 timestamp with a UTC offset (e.g. 2026-11-26T02:00:00+09:00)`;
  const [, ys, mos, ds, hs, mis, ss = '0', frac = '', z, sign, oh = '0', om = '0'] = m as unknown as string[];
  const [yr, mo, d, h, mi, s] = [ys, mos, ds, hs, mis, ss].map(Number) as [number, number, number, number, number, number];
  const fracDigits = (frac + '000000000').slice(0, 9);
  const msPart = Number(fracDigits.slice(0, 3));
  const subMs = Number(fracDigits.slice(3));
  const wall = new Date(0);
  wall.setUTCFullYear(yr, mo - 1, d);
  wall.setUTCHours(h, mi, s, msPart);
  if (
    wall.getUTCFullYear() !== yr ||
    wall.getUTCMonth() !== mo - 1 ||
    wall.getUTCDate() !== d ||
    wall.getUTCHours() !== h ||
    wall.getUTCMinutes() !== mi ||
    wall.getUTCSeconds() !== s
  ) {
    return `"${value}" is not a valid date and time`;
  }
  const offsetMinutes = z ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  return withZone({ ms: wall.getTime() - offsetMinutes * 60_000, subMs, offsetMinutes }, timeZone);
}

function withZone(t: RetentionInstant, timeZone: string | undefined): RetentionInstant {
  if (timeZone === undefined) return t;
  return { ...t, offsetMinutes: zonedParts(new Date(t.ms), timeZone).offsetMinutes, timeZone };
}

export function compareRetentionTime(a: RetentionInstant, b: RetentionInstant): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.subMs - b.subMs;
}

function parseCandidates(candidates: readonly RetentionCandidate[], timeZone: string | undefined): ParsedCandidate[] {
  if (!Array.isArray(candidates)) {
    throw new BackupError('RETENTION_INVALID', `planRetention: candidates must be an array, got ${describe(candidates)}`, {
      hint: 'Pass [{ id, time, tags? }, ...].',
    });
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  const out: ParsedCandidate[] = [];
  candidates.forEach((c, i) => {
    const label = `candidate #${i}${typeof c?.id === 'string' ? ` ("${c.id}")` : ''}`;
    if (typeof c !== 'object' || c === null) return void problems.push(`${label}: must be an object`);
    if (typeof c.id !== 'string' || c.id === '') return void problems.push(`${label}: id must be a non-empty string`);
    if (seen.has(c.id)) return void problems.push(`${label}: duplicate id "${c.id}"`);
    seen.add(c.id);
    const time = parseRetentionTime(c.time, timeZone);
    if (typeof time === 'string') return void problems.push(`${label}: time ${time}`);
    if (c.tags !== undefined && !(Array.isArray(c.tags) && c.tags.every((t: unknown) => typeof t === 'string'))) {
      return void problems.push(`${label}: tags must be a list of strings`);
    }
    out.push({ id: c.id, time, tags: c.tags ?? [] });
  });
  if (problems.length > 0) {
    throw new BackupError('RETENTION_INVALID', `planRetention: invalid candidates:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: 'Each candidate needs a unique id and a time (Date or ISO 8601 string with offset).',
      details: { issues: problems },
    });
  }
  return out;
}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  /** 0 = Sunday. */
  weekday: number;
}

function wallClock(t: RetentionInstant): Wall {
  const d = new Date(t.ms + t.offsetMinutes * 60_000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    weekday: d.getUTCDay(),
  };
}

const ymdh = (w: Wall): number => w.year * 1_000_000 + w.month * 10_000 + w.day * 100 + w.hour;
const ymd = (w: Wall): number => w.year * 10_000 + w.month * 100 + w.day;
const ym = (w: Wall): number => w.year * 100 + w.month;
const y = (w: Wall): number => w.year;
function yw(w: Wall): number {
  // ISO 8601 week: the week (Monday first) belongs to the year that holds its Thursday.
  const isoWeekday = w.weekday === 0 ? 7 : w.weekday;
  const thursday = new Date(0);
  thursday.setUTCFullYear(w.year, w.month - 1, w.day + 4 - isoWeekday);
  const isoYear = thursday.getUTCFullYear();
  const jan1 = new Date(0);
  jan1.setUTCFullYear(isoYear, 0, 1);
  const dayOfYear = Math.round((thursday.getTime() - jan1.getTime()) / 86_400_000);
  return isoYear * 100 + Math.floor(dayOfYear / 7) + 1;
}

/** Go's `t.AddDate(-y, -m, -d).Add(-h * time.Hour)` in t's own offset or zone. */
function subtractDuration(t: RetentionInstant, d: ResticDuration, timeZone: string | undefined): RetentionInstant {
  const local = new Date(t.ms + t.offsetMinutes * 60_000);
  const wall = new Date(0);
  // setUTCFullYear normalises overflowing months and days the way Go's time.Date does
  // (March 31 minus one month is March 2 or 3), and handles years < 100 literally.
  wall.setUTCFullYear(local.getUTCFullYear() - d.years, local.getUTCMonth() - d.months, local.getUTCDate() - d.days);
  wall.setUTCHours(local.getUTCHours(), local.getUTCMinutes(), local.getUTCSeconds(), local.getUTCMilliseconds());
  let ms = wall.getTime() - t.offsetMinutes * 60_000;
  if (timeZone !== undefined) {
    let offset = zonedParts(new Date(ms), timeZone).offsetMinutes;
    ms = wall.getTime() - offset * 60_000;
    offset = zonedParts(new Date(ms), timeZone).offsetMinutes;
    ms = wall.getTime() - offset * 60_000;
  }
  ms -= d.hours * 3_600_000;
  return { ms, subMs: t.subMs, offsetMinutes: t.offsetMinutes };
}

function hasTags(tags: string[], required: string[]): boolean {
  for (const tag of required) {
    if (tag === '' && tags.length === 0) return true;
    if (!tags.includes(tag)) return false;
  }
  return true;
}

function tagListString(l: string[]): string {
  return `[${l.join(', ')}]`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array ${JSON.stringify(value)}`.slice(0, 120);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
