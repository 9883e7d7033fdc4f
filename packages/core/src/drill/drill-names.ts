import { randomBytes } from 'node:crypto';

/** `<yyyymmdd>_<hhmmss>_<4 hex>` (UTC): sortable, unique enough, short enough for a 63-byte PostgreSQL name. */
export const DRILL_ID_PATTERN = /^\d{8}_\d{6}_[0-9a-f]{4}$/;

/** What a throwaway target's name ends with: `_drill_<id>`. */
export const DRILL_SUFFIX_PATTERN = /_drill_(\d{8}_\d{6}_[0-9a-f]{4})$/;

export function newDrillId(now: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}_${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${stamp}_${randomBytes(2).toString('hex')}`;
}

/** The throwaway name for `base` in drill `drillId`: `<base>_drill_<id>`. */
export function drillName(base: string, drillId: string): string {
  return `${base}_drill_${drillId}`;
}

/** The drill id a throwaway name carries, or undefined when the name is not a drill's. */
export function drillIdOf(name: string): string | undefined {
  return DRILL_SUFFIX_PATTERN.exec(name)?.[1];
}

/** When the drill with this id started (from the id), for messages about leftovers. */
export function drillTimeOf(drillId: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})/.exec(drillId);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
