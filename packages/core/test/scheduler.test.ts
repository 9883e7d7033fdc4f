import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBackupEngine, createScheduler, DEFAULT_SCHEDULES, isoWithOffset, type BackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { slotStatus } from '../src/scheduler/slot-status.js';

describe('scheduler', () => {
  let dir: TempDir;
  let now: Date;
  let engine: BackupEngine;
  const clock = () => now;
  beforeEach(async () => {
    dir = await makeTempDir();
    now = new Date('2026-11-25T14:00:00Z');
    engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), clock, timeZone: 'Asia/Seoul' });
  });
  afterEach(async () => {
    await dir.remove();
  });

  it("uses the strategy document's tiers by default, in the configured zone", () => {
    expect(DEFAULT_SCHEDULES).toEqual({ daily: '0 2 * * *', weekly: '0 3 * * 0', monthly: '0 4 1 * *' });
    const scheduler = createScheduler(engine, { timeZone: 'Asia/Seoul', clock });
    const next = Object.fromEntries(scheduler.nextRuns().map((n) => [n.tier, isoWithOffset(n.next!, 'Asia/Seoul')]));
    expect(next).toEqual({
      daily: '2026-11-26T02:00:00.000+09:00',
      weekly: '2026-11-29T03:00:00.000+09:00',
      monthly: '2026-12-01T04:00:00.000+09:00',
    });
  });

  it('crosses month ends and leap days', () => {
    const scheduler = createScheduler(engine, { timeZone: 'UTC', clock });
    const from = new Date('2028-02-28T12:00:00Z');
    const next = Object.fromEntries(scheduler.nextRuns(from).map((n) => [n.tier, n.next!.toISOString()]));
    expect(next.daily).toBe('2028-02-29T02:00:00.000Z');
    expect(next.monthly).toBe('2028-03-01T04:00:00.000Z');
    expect(scheduler.nextRuns(new Date('2026-12-31T23:00:00Z')).find((n) => n.tier === 'monthly')!.next!.toISOString()).toBe(
      '2027-01-01T04:00:00.000Z',
    );
  });

  it('fires each daily run exactly once per local day across DST changes', async () => {
    const ny = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), clock, timeZone: 'America/New_York' });
    const fired: string[] = [];
    for (const [start, days] of [
      ['2026-03-06T12:00:00Z', 4],
      ['2026-10-30T12:00:00Z', 4],
    ] as const) {
      // A service started at `start` that keeps running for `days`.
      now = new Date(start);
      const scheduler = createScheduler(ny, { timeZone: 'America/New_York', clock, tiers: { daily: '30 1 * * *' }, pruneAfter: false });
      const end = now.getTime() + days * 86_400_000;
      while (now.getTime() < end) {
        now = new Date(now.getTime() + 15 * 60_000);
        for (const run of await scheduler.tick()) fired.push(isoWithOffset(run.scheduledFor, 'America/New_York'));
      }
    }
    expect(fired).toEqual([
      '2026-03-07T01:30:00.000-05:00',
      '2026-03-08T01:30:00.000-05:00',
      '2026-03-09T01:30:00.000-04:00',
      '2026-03-10T01:30:00.000-04:00',
      '2026-10-31T01:30:00.000-04:00',
      '2026-11-01T01:30:00.000-04:00',
      '2026-11-02T01:30:00.000-05:00',
      '2026-11-03T01:30:00.000-05:00',
    ]);
    expect((await ny.list()).filter((s) => s.tier === 'daily')).toHaveLength(8);
  });

  it('runs the due tier when the clock passes its time, tags the set with the tier and prunes after', async () => {
    const withRetention = createBackupEngine({
      sources: [createTestSource()],
      storage: createFsStorage({ root: dir.path }),
      clock,
      timeZone: 'Asia/Seoul',
      retention: { tiers: { daily: { within: '7d' } } },
    });
    const scheduler = createScheduler(withRetention, { timeZone: 'Asia/Seoul', clock });
    now = new Date('2026-11-25T16:59:00Z'); // 01:59 in Seoul
    await scheduler.tick();
    expect(await withRetention.list()).toEqual([]);
    now = new Date('2026-11-25T17:01:00Z'); // 02:01 in Seoul
    const runs = await scheduler.tick();
    expect(runs.map((r) => [r.tier, r.result?.status, r.prune?.dryRun])).toEqual([['daily', 'complete', false]]);
    expect((await withRetention.list()).map((s) => [s.id, s.tier])).toEqual([['scholaria_backup_20261126_020100', 'daily']]);
  });

  it('never runs two backups at once: a manual run is refused while one runs, a due tier waits its turn', async () => {
    const slow = createBackupEngine({
      sources: [createTestSource({ generated: { 'big.bin': 4 * 1024 * 1024 }, chunkDelayMs: 3 })],
      storage: createFsStorage({ root: dir.path }),
      clock,
    });
    const ends: string[] = [];
    const starts: string[] = [];
    const scheduler = createScheduler(slow, { clock, pruneAfter: false, onRunStart: (t) => starts.push(t), onRunEnd: (r) => ends.push(r.tier) });
    now = new Date('2026-11-01T01:59:00Z');
    await scheduler.tick();
    now = new Date('2026-11-01T02:00:30Z');
    const first = scheduler.tick();
    await new Promise((r) => setTimeout(r, 20));
    expect(scheduler.running?.tier).toBe('daily');
    await expect(scheduler.runNow('daily')).rejects.toMatchObject({ code: 'LOCKED' });
    // Sunday the 1st, 04:00 UTC: weekly (03:00) and monthly (04:00) come due while daily runs.
    now = new Date('2026-11-01T04:00:30Z');
    await scheduler.tick();
    expect((await scheduler.status()).queued).toEqual(['weekly', 'monthly']);
    await first;
    while (ends.length < 3) await new Promise((r) => setTimeout(r, 20));
    expect(starts).toEqual(['daily', 'weekly', 'monthly']);
    expect(ends).toEqual(['daily', 'weekly', 'monthly']);
  });

  it('status shows the next run, the last set per tier and missed runs', async () => {
    const scheduler = createScheduler(engine, { timeZone: 'Asia/Seoul', clock });
    now = new Date('2026-11-25T17:00:00Z');
    await engine.backup({ tier: 'daily' });
    now = new Date('2026-11-27T05:00:00Z'); // 14:00 Seoul, two days later: the 26th's... 27th 02:00 run is missing
    const status = await scheduler.status();
    const daily = status.tiers.find((t) => t.tier === 'daily')!;
    expect(daily.lastSet?.id).toBe('scholaria_backup_20261126_020000');
    expect(isoWithOffset(daily.previousScheduled!, 'Asia/Seoul')).toBe('2026-11-27T02:00:00.000+09:00');
    expect(daily.missed).toBe(true);
    expect(isoWithOffset(daily.nextRun!, 'Asia/Seoul')).toBe('2026-11-28T02:00:00.000+09:00');
    const weekly = status.tiers.find((t) => t.tier === 'weekly')!;
    expect(weekly.missed).toBe(true);
  });

  it('a tier whose slot came before the service first started is pending, not missed', async () => {
    now = new Date('2026-11-27T05:00:00Z'); // 14:00 Seoul; the daily slot was 02:00 Seoul
    const fresh = createScheduler(engine, { timeZone: 'Asia/Seoul', clock, serviceSince: null });
    for (const t of (await fresh.status()).tiers) {
      if (t.lastSet) continue;
      expect(t, t.tier).toMatchObject({ missed: false, pending: true });
    }
    // Started at 10:00 Seoul: the 02:00 slot came before, so nothing was missed yet.
    const startedToday = createScheduler(engine, { timeZone: 'Asia/Seoul', clock, serviceSince: new Date('2026-11-27T01:00:00Z') });
    const weekly = (await startedToday.status()).tiers.find((t) => t.tier === 'weekly')!;
    expect(weekly).toMatchObject({ missed: false });
    // Running since October: the slots of November are missed.
    const longRunning = createScheduler(engine, { timeZone: 'Asia/Seoul', clock, serviceSince: new Date('2026-10-01T00:00:00Z') });
    const tiers = (await longRunning.status()).tiers;
    expect(tiers.find((t) => t.tier === 'monthly')).toMatchObject({ missed: true, pending: false });
  });

  it('the drill job follows the same pending / missed rule as the tiers (one helper)', async () => {
    now = new Date('2026-11-27T05:00:00Z'); // Friday 14:00 Seoul; the drill slot was Sunday 22nd 05:00 Seoul
    const drill = { schedule: '0 5 * * 0', run: async () => { throw new Error('not run in this test'); } };
    const at = (serviceSince: Date | null) => createScheduler(engine, { timeZone: 'Asia/Seoul', clock, serviceSince, drill });
    // Never started, or started after the slot: pending, like a tier.
    for (const since of [null, new Date('2026-11-24T00:00:00Z')]) {
      const s = await at(since).status();
      expect(s.drill, String(since)).toMatchObject({ pending: true, missed: false });
      expect(s.tiers.find((t) => t.tier === 'weekly'), String(since)).toMatchObject({ pending: true, missed: false });
    }
    // Running since October with no drill on record: missed, like the weekly tier.
    const s = await at(new Date('2026-10-01T00:00:00Z')).status();
    expect(s.drill).toMatchObject({ pending: false, missed: true });
    expect(s.tiers.find((t) => t.tier === 'weekly')).toMatchObject({ pending: false, missed: true });
  });

  it('slotStatus: pending before the service started or on a first run; missed after the grace with no run at the slot', () => {
    const prev = new Date('2026-11-22T20:00:00Z');
    const base = { now: new Date('2026-11-23T20:00:00Z'), previousScheduled: prev, since: new Date('2026-11-01T00:00:00Z'), lastAt: undefined, running: false, missedGraceMs: 3600_000 };
    expect(slotStatus(base)).toEqual({ pending: false, missed: true });
    expect(slotStatus({ ...base, running: true })).toEqual({ pending: true, missed: false });
    expect(slotStatus({ ...base, since: new Date('2026-11-23T00:00:00Z') })).toEqual({ pending: true, missed: false });
    expect(slotStatus({ ...base, since: null })).toEqual({ pending: true, missed: false });
    expect(slotStatus({ ...base, previousScheduled: null })).toEqual({ pending: true, missed: false });
    expect(slotStatus({ ...base, lastAt: new Date(prev.getTime() + 60_000) })).toEqual({ pending: false, missed: false });
    expect(slotStatus({ ...base, lastAt: new Date(prev.getTime() - 2 * 3600_000) })).toEqual({ pending: false, missed: true });
    expect(slotStatus({ ...base, now: new Date(prev.getTime() + 60_000) })).toEqual({ pending: false, missed: false });
  });

  it('rejects invalid cron expressions and time zones, naming the tier', () => {
    expect(() => createScheduler(engine, { tiers: { daily: '61 2 * * *' } })).toThrow(/tier "daily".*"61 2 \* \* \*"/s);
    expect(() => createScheduler(engine, { tiers: { weekly: 'every sunday' } })).toThrow(/tier "weekly"/);
    expect(() => createScheduler(engine, { timeZone: 'Asia/Nowhere' })).toThrow(/Asia\/Nowhere/);
  });
});
