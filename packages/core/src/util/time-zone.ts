import { ConfigError } from '../errors/backup-error.js';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      });
    } catch (error) {
      throw new ConfigError(`timeZone "${timeZone}" is not a valid IANA time zone (e.g. "UTC", "Asia/Seoul")`, [], { cause: error });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * Zones that are UTC by name, the default: their parts come from the Date's own UTC fields.
 * A process's first Intl.DateTimeFormat loads ICU's zone data (~20 ms, paid by every CLI command
 * and every engine created), which UTC does not need.
 */
export function isUtc(timeZone: string): boolean {
  return timeZone === 'UTC' || timeZone === 'Etc/UTC';
}

export function assertTimeZone(timeZone: string): void {
  if (!isUtc(timeZone)) formatter(timeZone);
}

export interface ZonedParts {
  year: string;
  month: string;
  day: string;
  hour: string;
  minute: string;
  second: string;
  /** Offset from UTC in minutes (Asia/Seoul: 540). */
  offsetMinutes: number;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

export function zonedParts(date: Date, timeZone: string): ZonedParts {
  if (isUtc(timeZone)) {
    if (Number.isNaN(date.getTime())) throw new RangeError('Invalid time value');
    return {
      year: String(date.getUTCFullYear()),
      month: pad2(date.getUTCMonth() + 1),
      day: pad2(date.getUTCDate()),
      hour: pad2(date.getUTCHours()),
      minute: pad2(date.getUTCMinutes()),
      second: pad2(date.getUTCSeconds()),
      offsetMinutes: 0,
    };
  }
  const parts = Object.fromEntries(formatter(timeZone).formatToParts(date).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  const offsetMinutes = Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60_000);
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
    offsetMinutes,
  };
}

/** `YYYYMMDD_HHMMSS` in the zone, as used in set ids. */
export function compactStamp(date: Date, timeZone: string): string {
  const p = zonedParts(date, timeZone);
  return `${p.year}${p.month}${p.day}_${p.hour}${p.minute}${p.second}`;
}

/** ISO 8601 with the zone's offset: 2026-11-26T02:00:00.000+09:00. */
export function isoWithOffset(date: Date, timeZone: string): string {
  const p = zonedParts(date, timeZone);
  const off = p.offsetMinutes;
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  const oh = String(Math.floor(abs / 60)).padStart(2, '0');
  const om = String(abs % 60).padStart(2, '0');
  const ms = String(date.getUTCMilliseconds()).padStart(3, '0');
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}.${ms}${sign}${oh}:${om}`;
}

/** Parses the timestamp of a set id (`prefix_YYYYMMDD_HHMMSS[-n]`) as a wall time in the zone. */
export function timeFromSetId(id: string, timeZone: string): Date | undefined {
  const m = /_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})(?:-\d+)?$/.exec(id);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const guess = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
  const offset = zonedParts(guess, timeZone).offsetMinutes;
  return new Date(guess.getTime() - offset * 60_000);
}
