import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BackupError, ConfigError } from '../src/errors/backup-error.js';
import {
  formatResticDuration,
  parseDurationMs,
  parseResticDuration,
  resticDurationProblem,
} from '../src/retention/duration.js';
import { describeRetentionPolicy, planRetention, validateRetentionPolicy } from '../src/retention/plan-retention.js';
import {
  DEFAULT_RETENTION,
  planTierRetention,
  retentionFromDays,
  type TierRetentionSet,
} from '../src/retention/tier-retention.js';
import type { RetentionPolicy } from '../src/retention/types.js';
import { retainUntilForTier } from '../src/retention/retain-until.js';

function catchError(fn: () => unknown): BackupError {
  try {
    fn();
  } catch (error) {
    if (BackupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a BackupError, nothing was thrown');
}

/** ISO 8601 with the given offset in minutes, as a manifest would write it. */
function iso(ms: number, offsetMinutes = 0): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

describe('restic durations', () => {
  it('parses every unit in any order and formats canonically', () => {
    expect(parseResticDuration('1y2m3d4h')).toEqual({ years: 1, months: 2, days: 3, hours: 4 });
    expect(parseResticDuration('1y1d1m')).toEqual({ years: 1, months: 1, days: 1, hours: 0 });
    expect(formatResticDuration(parseResticDuration('1y1d1m'))).toBe('1y1m1d');
    expect(formatResticDuration(parseResticDuration(' 13d23h '))).toBe('13d23h');
    expect(parseResticDuration('365d')).toEqual({ years: 0, months: 0, days: 365, hours: 0 });
  });

  it('refuses malformed durations with a reason', () => {
    expect(resticDurationProblem('7')).toMatch(/no unit after 7/);
    expect(resticDurationProblem('7w')).toMatch(/unknown unit "w"/);
    expect(resticDurationProblem('1d2d')).toMatch(/appears twice/);
    expect(resticDurationProblem('-1d')).toMatch(/not a duration/);
    expect(resticDurationProblem('')).toMatch(/empty/);
    expect(resticDurationProblem(7)).toMatch(/expected a string/);
    const error = catchError(() => parseResticDuration('10x', 'retention.within'));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^retention\.within: .*unknown unit "x"/);
    expect(error.hint).toMatch(/m \(months\)/);
  });
});

describe('parseDurationMs', () => {
  it('reads fixed-length units where m means minutes', () => {
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('10m')).toBe(600_000);
    expect(parseDurationMs('1h')).toBe(3_600_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('1.5h')).toBe(5_400_000);
    expect(parseDurationMs('7d')).toBe(7 * 86_400_000);
    expect(parseDurationMs('2w')).toBe(14 * 86_400_000);
  });

  it('refuses bare numbers, calendar units and unknown units, naming the field', () => {
    expect(catchError(() => parseDurationMs('30', 'lockTtl')).message).toMatch(/^lockTtl: .*no unit after 30/);
    expect(catchError(() => parseDurationMs('1y')).message).toMatch(/years and months have no fixed length/);
    expect(catchError(() => parseDurationMs('5min')).message).toMatch(/unknown unit "min"/);
    expect(catchError(() => parseDurationMs('')).message).toMatch(/empty/);
    expect(catchError(() => parseDurationMs('1m1m')).message).toMatch(/appears twice/);
    expect(catchError(() => parseDurationMs('abc')).code).toBe('CONFIG_INVALID');
  });
});

describe('policy validation', () => {
  it('refuses an empty policy', () => {
    const error = catchError(() => planRetention([{ id: 'a', time: new Date() }], {}));
    expect(error.code).toBe('RETENTION_INVALID');
    expect(error.message).toMatch(/empty/);
    expect(catchError(() => planRetention([], { daily: 0, tags: [] })).code).toBe('RETENTION_INVALID');
  });

  it('names every invalid field at once', () => {
    const error = catchError(() =>
      validateRetentionPolicy(
        { daily: 2.5, weekly: -2, within: '7x', withinDaily: '0d', tags: [[]], keepDaily: 3 } as RetentionPolicy,
        'retention.tiers.daily',
      ),
    );
    expect(error.code).toBe('RETENTION_INVALID');
    expect(error.message).toContain('retention.tiers.daily.daily: must be a whole number');
    expect(error.message).toContain('retention.tiers.daily.weekly: must be a whole number');
    expect(error.message).toContain('retention.tiers.daily.within: "7x" is not a duration');
    expect(error.message).toContain('retention.tiers.daily.withinDaily: must be longer than zero');
    expect(error.message).toContain('retention.tiers.daily.tags: must be a list of non-empty lists');
    expect(error.message).toContain('retention.tiers.daily.keepDaily: unknown field');
    expect(error.details?.issues).toHaveLength(6);
    expect(error.hint).toBeTruthy();
  });

  it('refuses candidates without offset, with bad dates or duplicate ids', () => {
    const error = catchError(() =>
      planRetention(
        [
          { id: 'a', time: '2026-01-01T02:00:00' },
          { id: 'b', time: '2026-02-30T02:00:00Z' },
          { id: 'c', time: new Date(Number.NaN) },
          { id: 'd', time: '2026-01-01T02:00:00Z' },
          { id: 'd', time: '2026-01-02T02:00:00Z' },
        ],
        { last: 1 },
      ),
    );
    expect(error.code).toBe('RETENTION_INVALID');
    expect(error.message).toContain('candidate #0 ("a"): time "2026-01-01T02:00:00" is not an ISO 8601 timestamp with a UTC offset');
    expect(error.message).toContain('candidate #1 ("b"): time "2026-02-30T02:00:00Z" is not a valid date and time');
    expect(error.message).toContain('candidate #2 ("c"): time is an invalid Date');
    expect(error.message).toContain('candidate #4 ("d"): duplicate id "d"');
  });

  it('describes policies the way restic does', () => {
    expect(describeRetentionPolicy({ last: 2, daily: 7, monthly: -1 })).toBe('keep 2 latest, 7 daily, all monthly snapshots');
    expect(describeRetentionPolicy({ within: '7d' })).toBe('keep all snapshots within 7d of the newest');
    expect(describeRetentionPolicy({ withinDaily: '7d', tags: [['a', 'b']] })).toBe(
      'keep daily snapshots within 7d and all snapshots with tags [a, b]',
    );
    expect(describeRetentionPolicy({})).toBe('remove');
  });
});

describe('planRetention calendar semantics', () => {
  it('buckets in each set own UTC offset', () => {
    // Same UTC day, but different days in Seoul: two daily buckets.
    const plan = planRetention(
      [
        { id: 'late', time: '2026-03-02T08:00:00+09:00' },
        { id: 'early', time: '2026-03-01T23:30:00+09:00' },
      ],
      { daily: 5 },
      { now: new Date('2026-04-01T00:00:00Z') },
    );
    expect(plan.keep.map((k) => k.id)).toEqual(['late', 'early']);
    // Written in UTC the same two instants share a day: the older one only survives as "oldest".
    const utc = planRetention(
      [
        { id: 'late', time: '2026-03-01T23:00:00Z' },
        { id: 'early', time: '2026-03-01T14:30:00Z' },
        { id: 'older', time: '2026-03-01T10:30:00Z' },
      ],
      { daily: 5 },
      { now: new Date('2026-04-01T00:00:00Z') },
    );
    expect(utc.keep.map((k) => [k.id, k.reasons])).toEqual([
      ['late', ['daily snapshot']],
      ['older', ['oldest daily snapshot']],
    ]);
    expect(utc.remove).toEqual([{ id: 'early' }]);
  });

  it('uses a time zone calendar when asked', () => {
    const sets = [
      { id: 'a', time: new Date('2026-03-01T16:00:00Z') }, // 2026-03-02 01:00 in Seoul
      { id: 'b', time: new Date('2026-03-01T14:00:00Z') }, // 2026-03-01 23:00 in Seoul
      { id: 'c', time: new Date('2026-03-01T13:00:00Z') },
    ];
    const now = new Date('2026-04-01T00:00:00Z');
    // In UTC all three share March 1: the newest, then the oldest while budget is left.
    expect(planRetention(sets, { daily: 2 }, { now }).keep.map((k) => k.id)).toEqual(['a', 'c']);
    expect(planRetention(sets, { daily: 2 }, { now, timeZone: 'Asia/Seoul' }).keep.map((k) => k.id)).toEqual(['a', 'b']);
    expect(catchError(() => planRetention(sets, { daily: 2 }, { timeZone: 'Mars/Base' })).code).toBe('RETENTION_INVALID');
  });

  it('measures within from the newest set that is not in the future, not from now, with a strict cutoff', () => {
    const sets = [
      { id: 'future', time: '2030-01-01T00:00:00Z' },
      { id: 'newest', time: '2026-01-10T00:00:00Z' },
      { id: 'inside', time: '2026-01-03T00:00:00.001Z' },
      { id: 'edge', time: '2026-01-03T00:00:00Z' },
    ];
    const plan = planRetention(sets, { within: '7d' }, { now: new Date('2027-06-01T00:00:00Z') });
    expect(plan.keep.map((k) => [k.id, k.reasons])).toEqual([
      ['future', ['within 7d']],
      ['newest', ['within 7d']],
      ['inside', ['within 7d']],
    ]);
    expect(plan.remove).toEqual([{ id: 'edge' }]);
  });

  it('subtracts months on the calendar like Go AddDate (March 31 minus 1 month is March 2 in 2024)', () => {
    const sets = [
      { id: 'anchor', time: '2024-03-31T00:00:00Z' },
      { id: 'after-cutoff', time: '2024-03-02T00:00:01Z' },
      { id: 'at-cutoff', time: '2024-03-02T00:00:00Z' },
      { id: 'feb-29', time: '2024-02-29T12:00:00Z' },
    ];
    const plan = planRetention(sets, { within: '1m' }, { now: new Date('2025-01-01T00:00:00Z') });
    expect(plan.keep.map((k) => k.id)).toEqual(['anchor', 'after-cutoff']);
  });

  it('uses ISO weeks across the year boundary', () => {
    const sets = [
      { id: 'mon-2021-w1', time: '2021-01-04T12:00:00Z' },
      { id: 'sun-2020-w53', time: '2021-01-03T12:00:00Z' },
      { id: 'thu-2020-w53', time: '2020-12-31T12:00:00Z' },
      { id: 'sun-2020-w52', time: '2020-12-27T12:00:00Z' },
    ];
    const plan = planRetention(sets, { weekly: 3 }, { now: new Date('2022-01-01T00:00:00Z') });
    expect(plan.keep.map((k) => k.id)).toEqual(['mon-2021-w1', 'sun-2020-w53', 'sun-2020-w52']);
    expect(plan.keep.map((k) => k.counters.weekly)).toEqual([2, 1, 0]);
  });

  it('keeps sets by tags, including the empty tag for untagged sets', () => {
    const plan = planRetention(
      [
        { id: 'a', time: '2026-01-03T00:00:00Z', tags: ['release', 'prod'] },
        { id: 'b', time: '2026-01-02T00:00:00Z', tags: ['release'] },
        { id: 'c', time: '2026-01-01T00:00:00Z' },
      ],
      { tags: [['release', 'prod'], ['']] },
      { now: new Date('2026-02-01T00:00:00Z') },
    );
    expect(plan.keep).toEqual([
      { id: 'a', reasons: ['has tags [release, prod]'], counters: { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 } },
      { id: 'c', reasons: ['has tags []'], counters: { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 } },
    ]);
    expect(plan.remove).toEqual([{ id: 'b' }]);
  });
});

describe('tier retention', () => {
  it('maps the seed variables to within-days policies', () => {
    expect(retentionFromDays({ daily: 7, weekly: 30, monthly: 365 })).toEqual({
      tiers: { daily: { within: '7d' }, weekly: { within: '30d' }, monthly: { within: '365d' } },
    });
    expect(DEFAULT_RETENTION).toEqual(retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }));
    expect(Object.isFrozen(DEFAULT_RETENTION.tiers)).toBe(true);
    expect(catchError(() => retentionFromDays({ daily: 0 })).message).toMatch(/tier daily must be a whole number >= 1/);
  });

  it('applies each tier policy to its own sets and explains every decision', () => {
    const day = 86_400_000;
    const base = Date.parse('2026-11-26T02:00:00Z');
    const sets: TierRetentionSet[] = [];
    for (let i = 0; i < 10; i++) sets.push({ id: `d${i}`, time: iso(base - i * day, 540), tier: 'daily', status: 'complete' });
    for (let i = 0; i < 3; i++) sets.push({ id: `w${i}`, time: iso(base - i * 7 * day - 3600_000), tier: 'weekly', status: 'complete' });
    sets.push({ id: 'm0', time: iso(base - 400 * day), tier: 'monthly', status: 'complete' });
    sets.push({ id: 'x0', time: iso(base - 900 * day), tier: 'manual', status: 'partial' });
    const plan = planTierRetention(sets, DEFAULT_RETENTION, { now: new Date(base + day) });

    const keep = Object.fromEntries(plan.keep.map((k) => [k.id, k.reasons]));
    const remove = Object.fromEntries(plan.remove.map((r) => [r.id, r.reasons]));
    expect(Object.keys(keep).sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'm0', 'w0', 'w1', 'w2', 'x0']);
    expect(Object.keys(remove).sort()).toEqual(['d7', 'd8', 'd9']);
    expect(keep.d0).toEqual(['within 7d', 'newest complete set of tier daily (never removed)']);
    expect(keep.d6).toEqual(['within 7d']);
    expect(remove.d7).toEqual(['not kept by the daily tier policy (keep all snapshots within 7d of the newest)']);
    // 400 days old, but it is the only monthly set: within 365d of itself.
    expect(keep.m0).toEqual(['within 365d', 'newest complete set of tier monthly (never removed)']);
    expect(keep.x0).toEqual(['no retention policy for tier manual']);
    // Newest first overall.
    const times = plan.keep.map((k) => Date.parse(sets.find((s) => s.id === k.id)!.time as string));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(plan.keep.find((k) => k.id === 'w0')).toMatchObject({ tier: 'weekly', status: 'complete' });
  });

  it('never removes the newest complete set even when the policy would, and partial sets do not count', () => {
    const sets: TierRetentionSet[] = [
      { id: 'p2', time: '2026-11-20T02:00:00Z', tier: 'daily', status: 'partial' },
      { id: 'p1', time: '2026-11-19T02:00:00Z', tier: 'daily', status: 'partial' },
      { id: 'c1', time: '2026-11-01T02:00:00Z', tier: 'daily', status: 'complete' },
      { id: 'c0', time: '2026-10-31T02:00:00Z', tier: 'daily', status: 'complete' },
    ];
    const plan = planTierRetention(sets, { tiers: { daily: { within: '7d' } } }, { now: new Date('2026-11-21T00:00:00Z') });
    expect(plan.keep).toEqual([
      { id: 'p2', tier: 'daily', status: 'partial', reasons: ['within 7d'] },
      { id: 'p1', tier: 'daily', status: 'partial', reasons: ['within 7d'] },
      { id: 'c1', tier: 'daily', status: 'complete', reasons: ['newest complete set of tier daily (never removed)'] },
    ]);
    expect(plan.remove.map((r) => r.id)).toEqual(['c0']);
  });

  it('refuses an empty tier policy, naming the tier', () => {
    const error = catchError(() => planTierRetention([], { tiers: { weekly: {} } }));
    expect(error.code).toBe('RETENTION_INVALID');
    expect(error.message).toMatch(/^retention\.tiers\.weekly: the retention policy is empty/);
    expect(catchError(() => planTierRetention([], { tiers: { daily: { daily: -3 } } })).message).toContain('retention.tiers.daily.daily');
  });

  it('refuses bad sets', () => {
    const error = catchError(() =>
      planTierRetention(
        [
          { id: 'a', time: 'yesterday', status: 'complete' },
          { id: 'b', time: new Date(), status: 'incomplete' as 'complete' },
          { id: 'b', time: new Date(), status: 'complete' },
        ],
        DEFAULT_RETENTION,
      ),
    );
    expect(error.message).toContain('set #0 ("a"): time "yesterday"');
    expect(error.message).toContain('set #1 ("b"): status must be');
    expect(error.message).toContain('set #2: duplicate id "b"');
  });
});

// ---------- property tests ----------

const START = Date.parse('2020-01-01T00:00:00Z');
const SPAN = 3 * 365 * 86_400_000;
const OFFSETS = [0, 540, -300, 330, -600];
const DURATIONS = ['1h', '12h', '1d', '2d', '7d', '30d', '1m', '3m', '1y', '1m14d', '2y1m3d5h'];
const TAG_LISTS = [['a'], ['a', 'b'], ['b'], ['']];

const candidateArb = fc.record({
  ms: fc.integer({ min: START, max: START + SPAN }),
  offset: fc.constantFrom(...OFFSETS),
  tags: fc.subarray(['a', 'b']),
  asDate: fc.boolean(),
});

const candidatesArb = fc.array(candidateArb, { maxLength: 60 }).map((list) =>
  list.map((c, i) => ({ id: `s${i}`, time: c.asDate ? new Date(c.ms) : iso(c.ms, c.offset), tags: c.tags })),
);

const policyArb: fc.Arbitrary<RetentionPolicy> = fc
  .record(
    {
      last: fc.integer({ min: -1, max: 6 }),
      hourly: fc.integer({ min: -1, max: 6 }),
      daily: fc.integer({ min: -1, max: 10 }),
      weekly: fc.integer({ min: -1, max: 6 }),
      monthly: fc.integer({ min: -1, max: 12 }),
      yearly: fc.integer({ min: -1, max: 3 }),
      within: fc.constantFrom(...DURATIONS),
      withinHourly: fc.constantFrom(...DURATIONS),
      withinDaily: fc.constantFrom(...DURATIONS),
      withinWeekly: fc.constantFrom(...DURATIONS),
      withinMonthly: fc.constantFrom(...DURATIONS),
      withinYearly: fc.constantFrom(...DURATIONS),
      tags: fc.subarray(TAG_LISTS, { minLength: 1 }),
    },
    { requiredKeys: [] },
  )
  .filter((p) => {
    try {
      validateRetentionPolicy(p);
      return true;
    } catch {
      return false;
    }
  });

// Narrow policies remove most sets, so the guard is exercised often.
const narrowPolicyArb: fc.Arbitrary<RetentionPolicy> = fc.oneof(
  fc.record({ last: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ daily: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ within: fc.constantFrom('1h', '1d') }),
  fc.record({ withinWeekly: fc.constantFrom('1d', '7d') }),
  fc.constant<RetentionPolicy>({ tags: [['a']] }),
);
const anyPolicyArb = fc.oneof(policyArb, narrowPolicyArb);

const nowArb = fc.integer({ min: START - 86_400_000, max: START + SPAN + 30 * 86_400_000 }).map((ms) => new Date(ms));

describe('planRetention properties', () => {
  it('splits every candidate into exactly one of keep/remove, newest first, each keep with a reason', () => {
    fc.assert(
      fc.property(candidatesArb, anyPolicyArb, nowArb, (candidates, policy, now) => {
        const plan = planRetention(candidates, policy, { now });
        const ids = [...plan.keep.map((k) => k.id), ...plan.remove.map((r) => r.id)];
        expect(ids.sort()).toEqual(candidates.map((c) => c.id).sort());
        for (const k of plan.keep) expect(k.reasons.length).toBeGreaterThan(0);
        const time = (id: string) => new Date(candidates.find((c) => c.id === id)!.time).getTime();
        for (const list of [plan.keep, plan.remove]) {
          const times = list.map((e) => time(e.id));
          expect(times).toEqual([...times].sort((a, b) => b - a));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps exactly min(n, count) sets with last: n', () => {
    fc.assert(
      fc.property(candidatesArb, fc.integer({ min: 1, max: 80 }), (candidates, n) => {
        expect(planRetention(candidates, { last: n }).keep).toHaveLength(Math.min(n, candidates.length));
      }),
    );
  });

  it('is idempotent: planning the kept sets again removes nothing', () => {
    fc.assert(
      fc.property(candidatesArb, anyPolicyArb, nowArb, (candidates, policy, now) => {
        const first = planRetention(candidates, policy, { now });
        const kept = new Set(first.keep.map((k) => k.id));
        const second = planRetention(
          candidates.filter((c) => kept.has(c.id)),
          policy,
          { now },
        );
        expect(second.remove).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});

const tierSetsArb = fc
  .array(
    fc.record({
      ms: fc.integer({ min: START, max: START + SPAN }),
      offset: fc.constantFrom(...OFFSETS),
      tier: fc.constantFrom('daily', 'weekly', 'monthly', 'manual', undefined),
      status: fc.constantFrom('complete' as const, 'partial' as const),
      tags: fc.subarray(['a']),
    }),
    { maxLength: 50 },
  )
  .map((list) =>
    list.map((s, i): TierRetentionSet => ({
      id: `set${i}`,
      time: iso(s.ms, s.offset),
      ...(s.tier ? { tier: s.tier } : {}),
      status: s.status,
      tags: s.tags,
    })),
  );

const tierConfigArb = fc.record({
  tiers: fc.record({ daily: anyPolicyArb, weekly: anyPolicyArb, monthly: anyPolicyArb }, { requiredKeys: [] }),
});

describe('planTierRetention properties', () => {
  it('never removes all complete sets of a tier', () => {
    fc.assert(
      fc.property(tierSetsArb, tierConfigArb, nowArb, (sets, config, now) => {
        const plan = planTierRetention(sets, config, { now });
        const keptIds = new Set(plan.keep.map((k) => k.id));
        const tiers = new Set(sets.map((s) => s.tier ?? 'untiered'));
        for (const tier of tiers) {
          const complete = sets.filter((s) => (s.tier ?? 'untiered') === tier && s.status === 'complete');
          if (complete.length > 0) expect(complete.some((s) => keptIds.has(s.id))).toBe(true);
        }
        expect(plan.keep.length + plan.remove.length).toBe(sets.length);
        for (const d of [...plan.keep, ...plan.remove]) expect(d.reasons.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('is idempotent: planning the kept sets again removes nothing', () => {
    fc.assert(
      fc.property(tierSetsArb, tierConfigArb, nowArb, (sets, config, now) => {
        const first = planTierRetention(sets, config, { now });
        const kept = new Set(first.keep.map((k) => k.id));
        const second = planTierRetention(
          sets.filter((s) => kept.has(s.id)),
          config,
          { now },
        );
        expect(second.remove).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('retainUntilForTier (object lock dates from retention)', () => {
  const start = new Date('2026-11-26T02:00:00Z');
  const H = 3_600_000;
  it('locks for the tier\'s within duration, counting calendar units at their shortest', () => {
    const retention = { tiers: { daily: { within: '7d' }, monthly: { within: '1y2m' }, hours: { within: '36h' } } };
    expect(retainUntilForTier(retention, 'daily', start)?.getTime()).toBe(start.getTime() + 7 * 23 * H);
    expect(retainUntilForTier(retention, 'monthly', start)?.getTime()).toBe(start.getTime() + (365 + 2 * 28) * 24 * H);
    expect(retainUntilForTier(retention, 'hours', start)?.getTime()).toBe(start.getTime() + 36 * H);
    // The strategy document's defaults.
    expect(retainUntilForTier(retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }), 'weekly', start)?.getTime()).toBe(start.getTime() + 30 * 23 * H);
  });
  it('gives no date where the policy does not promise one', () => {
    const retention = { tiers: { daily: { daily: 7 }, weekly: { withinWeekly: '4m' }, monthly: { within: '0d', monthly: 12 } } };
    expect(retainUntilForTier(retention, 'daily', start)).toBeUndefined();
    expect(retainUntilForTier(retention, 'weekly', start)).toBeUndefined();
    expect(retainUntilForTier(retention, 'monthly', start)).toBeUndefined();
    expect(retainUntilForTier(retention, 'manual', start)).toBeUndefined();
    expect(retainUntilForTier(undefined, 'daily', start)).toBeUndefined();
  });
  it('the lock never outlives what planTierRetention keeps (a set just past its lock may be pruned, one inside it never)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 48 }), (days, hours) => {
        const within = `${days}d${hours ? `${hours}h` : ''}`;
        const retention = { tiers: { daily: { within } } };
        const until = retainUntilForTier(retention, 'daily', start)!;
        // A newer set at the lock date: the policy must still keep the old one (it is within).
        const plan = planTierRetention(
          [
            { id: 'old', time: start, tier: 'daily', status: 'complete' },
            { id: 'new', time: new Date(until.getTime() - 1), tier: 'daily', status: 'complete' },
          ],
          retention,
          { now: until, timeZone: 'Europe/Berlin' },
        );
        return plan.keep.some((k) => k.id === 'old');
      }),
    );
  });
});
