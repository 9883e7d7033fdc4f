import { ConfigError } from '../errors/backup-error.js';

/**
 * Two duration syntaxes live in this library, on purpose kept apart because they disagree on
 * what `m` means:
 *
 * | parser | units | `m` means | used for |
 * | --- | --- | --- | --- |
 * | `parseResticDuration` | `y` years, `m` months, `d` days, `h` hours (whole numbers, each unit once, any order) | months | retention `within*` (restic `forget --keep-within`) |
 * | `parseDurationMs` | `ms`, `s`, `m` minutes, `h`, `d`, `w` weeks (decimals allowed, units may be combined: `1h30m`) | minutes | timeouts, grace periods, lock TTLs |
 *
 * Calendar units (years, months, days) in a restic duration are applied on the calendar
 * (`2024-03-31` minus `1m` is `2024-03-02`, like Go's `AddDate`), so they have no fixed length
 * in milliseconds and `parseDurationMs` refuses `y`.
 */

/** A restic `forget` duration: calendar years, months and days plus hours. */
export interface ResticDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const RESTIC_UNITS = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;

/** Returns why `spec` is not a restic duration, or undefined when it is one. */
export function resticDurationProblem(spec: unknown): string | undefined {
  try {
    parseResticDurationUnchecked(spec);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function parseResticDurationUnchecked(spec: unknown): ResticDuration {
  if (typeof spec !== 'string') throw new Error(`expected a string like "7d" or "1y2m", got ${typeof spec}`);
  const s = spec.trim();
  if (s === '') throw new Error('expected a duration like "7d" or "1y2m", got an empty string');
  const result: ResticDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  const re = /(\d+)([a-zA-Z]?)/y;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) {
      throw new Error(
        `"${s}" is not a duration: expected whole numbers followed by y (years), m (months), d (days) or h (hours), e.g. "7d", "1y2m", "36h"`,
      );
    }
    const [, digits, unit] = m as unknown as [string, string, string];
    if (unit === '') throw new Error(`"${s}" is not a duration: no unit after ${digits} (use y, m, d or h)`);
    if (!(unit in RESTIC_UNITS)) {
      throw new Error(
        `"${s}" is not a duration: unknown unit "${unit}" after ${digits} (use y = years, m = months, d = days, h = hours)`,
      );
    }
    if (seen.has(unit)) throw new Error(`"${s}" is not a duration: unit "${unit}" appears twice`);
    seen.add(unit);
    const n = Number(digits);
    if (!Number.isSafeInteger(n)) throw new Error(`"${s}" is not a duration: ${digits} is too large`);
    result[RESTIC_UNITS[unit as keyof typeof RESTIC_UNITS]] = n;
    pos = re.lastIndex;
  }
  return result;
}

/**
 * Parses a restic duration (`7d`, `1y2m`, `13d23h`, `1y2m3d3h`; m = months). Throws a
 * ConfigError naming `field` when `spec` is not one.
 */
export function parseResticDuration(spec: string, field = 'duration'): ResticDuration {
  try {
    return parseResticDurationUnchecked(spec);
  } catch (error) {
    throw new ConfigError(`${field}: ${(error as Error).message}`, [], {
      hint: 'Write a duration as whole numbers with units y (years), m (months), d (days), h (hours), e.g. "7d" or "1y6m".',
    });
  }
}

export function isZeroResticDuration(d: ResticDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** Canonical form, as restic prints it in reasons: years, months, days, hours, zero parts left out. */
export function formatResticDuration(d: ResticDuration): string {
  let s = '';
  if (d.years !== 0) s += `${d.years}y`;
  if (d.months !== 0) s += `${d.months}m`;
  if (d.days !== 0) s += `${d.days}d`;
  if (d.hours !== 0) s += `${d.hours}h`;
  return s;
}

const MS_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a fixed-length duration into milliseconds: a number with a unit, optionally several
 * (`30s`, `10m`, `1h30m`, `1.5h`, `7d`, `2w`, `250ms`). Units: ms, s, m (minutes), h, d (24 h),
 * w (7 d). A bare number is refused because its unit would be a guess. Throws a ConfigError
 * naming `field`.
 */
export function parseDurationMs(spec: string, field = 'duration'): number {
  const fail = (why: string): never => {
    throw new ConfigError(`${field}: ${why}`, [], {
      hint: 'Write a duration as a number with a unit: ms, s, m (minutes), h, d or w, e.g. "30s", "10m", "1h30m", "7d".',
    });
  };
  if (typeof spec !== 'string') return fail(`expected a string like "10m", got ${typeof spec}`);
  const s = spec.trim();
  if (s === '') return fail('expected a duration like "10m", got an empty string');
  const re = /(\d+(?:\.\d+)?)(ms|[a-zA-Z]*)/y;
  let pos = 0;
  let total = 0;
  const seen = new Set<string>();
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return fail(`"${s}" is not a duration: expected a number followed by ms, s, m, h, d or w`);
    const [, num, unit] = m as unknown as [string, string, string];
    if (unit === '') return fail(`"${s}" is not a duration: no unit after ${num} (use ms, s, m, h, d or w)`);
    const factor = MS_UNITS[unit];
    if (factor === undefined) {
      const extra = unit === 'y' || unit === 'M' ? ' (years and months have no fixed length; use days)' : '';
      return fail(`"${s}" is not a duration: unknown unit "${unit}"${extra} (use ms, s, m = minutes, h, d or w)`);
    }
    if (seen.has(unit)) return fail(`"${s}" is not a duration: unit "${unit}" appears twice`);
    seen.add(unit);
    total += Number(num) * factor;
    pos = re.lastIndex;
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) return fail(`"${s}" is too large`);
  return Math.round(total);
}
