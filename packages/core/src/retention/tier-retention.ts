import { BackupError } from '../errors/backup-error.js';
import type { RetentionConfig } from '../engine/types.js';
import { ENGINE_DEFAULTS } from '../engine/defaults.js';
import {
  compareRetentionTime,
  describeRetentionPolicy,
  parseRetentionTime,
  planRetention,
  validateRetentionPolicy,
  type RetentionInstant,
} from './plan-retention.js';
import type { RetentionPolicy } from './types.js';

export interface TierRetentionSet {
  id: string;
  /** Date or ISO 8601 string with offset (the manifest's `startedAt`). */
  time: Date | string;
  /** The set's group; sets without a tier form the group `untiered`. */
  tier?: string;
  status: 'complete' | 'partial';
  tags?: string[];
}

export interface TierRetentionDecision {
  id: string;
  tier: string;
  status: 'complete' | 'partial';
  reasons: string[];
}

export interface TierRetentionPlan {
  /** Newest first. */
  keep: TierRetentionDecision[];
  /** Newest first; each says which policy did not keep it. */
  remove: TierRetentionDecision[];
}

export interface PlanTierRetentionOptions {
  now?: Date;
  timeZone?: string;
}

export const UNTIERED = 'untiered';

/**
 * Applies each tier's policy to that tier's sets (restic `forget` semantics per group, like
 * `restic forget --group-by tags` with the tier as the group). Tiers without a policy keep
 * everything. On top of the policy, the newest complete set of every tier is never removed, so
 * a tier that has a good backup always keeps one. Partial sets are judged by the policy like
 * complete ones but never count as that good backup.
 */
export function planTierRetention(
  sets: readonly TierRetentionSet[],
  config: Pick<RetentionConfig, 'tiers'>,
  options: PlanTierRetentionOptions = {},
): TierRetentionPlan {
  if (typeof config !== 'object' || config === null || typeof config.tiers !== 'object' || config.tiers === null) {
    throw new BackupError('RETENTION_INVALID', 'retention: expected { tiers: { <tier>: <policy> } }', {
      hint: "Give a policy per tier, e.g. { tiers: { daily: { within: '7d' }, weekly: { within: '30d' } } }.",
    });
  }
  for (const [tier, policy] of Object.entries(config.tiers)) {
    validateRetentionPolicy(policy, `retention.tiers.${tier}`);
  }
  if (!Array.isArray(sets)) {
    throw new BackupError('RETENTION_INVALID', 'planTierRetention: sets must be an array', { hint: 'Pass [{ id, time, tier, status }, ...].' });
  }

  interface Entry {
    set: TierRetentionSet;
    tier: string;
    index: number;
    time: RetentionInstant;
  }
  const problems: string[] = [];
  const entries: Entry[] = [];
  const ids = new Set<string>();
  sets.forEach((set, index) => {
    if (typeof set?.id !== 'string' || set.id === '') return void problems.push(`set #${index}: id must be a non-empty string`);
    if (ids.has(set.id)) return void problems.push(`set #${index}: duplicate id "${set.id}"`);
    ids.add(set.id);
    const time = parseRetentionTime(set?.time, options.timeZone);
    if (typeof time === 'string') return void problems.push(`set #${index} ("${String(set?.id)}"): time ${time}`);
    if (set.status !== 'complete' && set.status !== 'partial') {
      return void problems.push(`set #${index} ("${String(set.id)}"): status must be "complete" or "partial", got ${JSON.stringify(set.status)}`);
    }
    entries.push({ set, tier: set.tier ?? UNTIERED, index, time });
  });
  if (problems.length > 0) {
    throw new BackupError('RETENTION_INVALID', `planTierRetention: invalid sets:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: 'Each set needs an id, a time (Date or ISO 8601 string with offset) and a status.',
      details: { issues: problems },
    });
  }

  const decisions = new Map<string, { keep: boolean; reasons: string[] }>();
  const groups = new Map<string, Entry[]>();
  for (const e of entries) {
    const group = groups.get(e.tier) ?? [];
    group.push(e);
    groups.set(e.tier, group);
  }

  for (const [tier, group] of groups) {
    const policy: RetentionPolicy | undefined = Object.hasOwn(config.tiers, tier) ? config.tiers[tier] : undefined;
    if (!policy) {
      for (const e of group) decisions.set(e.set.id, { keep: true, reasons: [`no retention policy for tier ${tier}`] });
    } else {
      const plan = planRetention(
        group.map((e) => ({ id: e.set.id, time: e.set.time, ...(e.set.tags ? { tags: e.set.tags } : {}) })),
        policy,
        options,
      );
      for (const k of plan.keep) decisions.set(k.id, { keep: true, reasons: [...k.reasons] });
      const why = `not kept by the ${tier} tier policy (${describeRetentionPolicy(policy)})`;
      for (const r of plan.remove) decisions.set(r.id, { keep: false, reasons: [why] });
    }
    const protect = (e: Entry | undefined, why: string) => {
      if (!e) return;
      const d = decisions.get(e.set.id)!;
      if (!d.keep) d.reasons = [];
      d.keep = true;
      d.reasons.push(why);
    };
    const newestFirst = sortNewestFirst(group).filter((e) => e.set.status === 'complete');
    protect(newestFirst[0], `newest complete set of tier ${tier} (never removed)`);
    // A set dated in the future (a host with a wrong clock, or a planted manifest) must not take
    // that protection away from the real newest one: the newest complete set not in the future
    // is protected as well.
    const nowTime: RetentionInstant = { ms: (options.now ?? new Date()).getTime(), subMs: 0, offsetMinutes: 0 };
    const newestPast = newestFirst.find((e) => compareRetentionTime(e.time, nowTime) <= 0);
    if (newestPast && newestPast !== newestFirst[0]) protect(newestPast, `newest complete set of tier ${tier} not dated in the future (never removed)`);
  }

  const plan: TierRetentionPlan = { keep: [], remove: [] };
  for (const e of sortNewestFirst(entries)) {
    const d = decisions.get(e.set.id)!;
    const decision = { id: e.set.id, tier: e.tier, status: e.set.status, reasons: d.reasons };
    (d.keep ? plan.keep : plan.remove).push(decision);
  }
  return plan;
}

function sortNewestFirst<T extends { time: RetentionInstant; index: number }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => compareRetentionTime(b.time, a.time) || a.index - b.index);
}

/**
 * The seed's `BACKUP_*_RETENTION` variables as tier policies: `{ daily: 7 }` keeps the daily
 * tier's sets made within 7 days of its newest set, i.e. `{ tiers: { daily: { within: '7d' } } }`.
 */
export function retentionFromDays(days: Record<string, number>): RetentionConfig {
  const tiers: Record<string, RetentionPolicy> = {};
  for (const [tier, n] of Object.entries(days)) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      throw new BackupError('RETENTION_INVALID', `retention days for tier ${tier} must be a whole number >= 1, got ${JSON.stringify(n)}`, {
        hint: 'Give the number of days to keep, e.g. { daily: 7, weekly: 30, monthly: 365 }.',
      });
    }
    tiers[tier] = { within: `${n}d` };
  }
  return { tiers };
}

/** The strategy document's defaults (`ENGINE_DEFAULTS.retentionDays`): daily kept 7 days, weekly 30, monthly 365. */
export const DEFAULT_RETENTION: Readonly<RetentionConfig> = Object.freeze({
  tiers: Object.freeze(retentionFromDays(ENGINE_DEFAULTS.retentionDays).tiers),
});
