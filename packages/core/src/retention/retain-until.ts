import type { RetentionConfig } from '../engine/types.js';
import { parseResticDuration, type ResticDuration } from './duration.js';

/** The shortest each calendar unit can be, so a lock never outlives what the policy keeps. */
const SHORTEST_MS = {
  years: 365 * 86_400_000,
  months: 28 * 86_400_000,
  // A day across a daylight-saving change can be 23 hours long.
  days: 23 * 3_600_000,
  hours: 3_600_000,
} as const;

function shortestMs(d: ResticDuration): number {
  return d.years * SHORTEST_MS.years + d.months * SHORTEST_MS.months + d.days * SHORTEST_MS.days + d.hours * SHORTEST_MS.hours;
}

/**
 * Until when the retention policy of `tier` is sure to keep a set started at `startedAt`: the
 * storage may lock its objects that long (S3 Object Lock's retain-until date). Only the
 * policy's `within` rule guarantees that (restic's keep-within keeps every set newer than the
 * newest minus the duration, so a set stays at least `within` after it was made); count rules
 * (`daily: 7`) and the bucketed `within*` rules may drop a set earlier, so they give no date.
 * Calendar units are counted at their shortest (a month as 28 days), so prune never meets an
 * object the policy has let go of but the lock still holds. Undefined: no lock date.
 */
export function retainUntilForTier(retention: RetentionConfig | undefined, tier: string, startedAt: Date): Date | undefined {
  const within = retention?.tiers[tier]?.within;
  if (!within) return undefined;
  const ms = shortestMs(parseResticDuration(within, `retention.tiers.${tier}.within`));
  return ms > 0 ? new Date(startedAt.getTime() + ms) : undefined;
}
