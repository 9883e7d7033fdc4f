import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_DRILL_SCHEDULE,
  createBackupEngine,
  createScheduler,
  detectSizeAnomalies,
  drillIdOf,
  drillName,
  joinIds,
  newDrillId,
  parseAnomalyDrop,
  parseJoinSpec,
  writeDrillRecord,
  type ComponentManifest,
  type DrillResult,
  type Manifest,
} from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';

async function* ids(list: (string | number)[]): AsyncIterable<string> {
  for (const x of list) yield String(x);
}

describe('cross-store join', () => {
  it('counts matches, missing and orphaned ids and lists the first few of both kinds', async () => {
    const r = await joinIds(ids([1, 2, 3, 4, 5, 5]), ids([2, 3, 5, 8, 9]), { maxMismatches: 4, leftLabel: 'chunks.id', rightLabel: 'point' });
    expect(r.figures).toEqual({ left: 6, right: 5, matched: 3, missing: 2, orphaned: 2 });
    expect(r.mismatches).toEqual(['chunks.id 1 has no point', 'chunks.id 4 has no point', 'point 8 is orphaned (no chunks.id)', 'point 9 is orphaned (no chunks.id)']);
  });

  it('agrees when both sides hold the same ids in any order', async () => {
    const r = await joinIds(ids(['b', 'a', 'c']), ids(['c', 'b', 'a']), { maxMismatches: 10, leftLabel: 'l', rightLabel: 'r' });
    expect(r).toEqual({ figures: { left: 3, right: 3, matched: 3, missing: 0, orphaned: 0 }, mismatches: [] });
  });
});

describe('drill names and settings', () => {
  it('names throwaway targets so the next drill can find them, and only those', () => {
    const id = newDrillId(new Date('2026-12-03T09:45:00Z'));
    expect(id).toMatch(/^20261203_094500_[0-9a-f]{4}$/);
    expect(drillName('chunks', id)).toBe(`chunks_drill_${id}`);
    expect(drillIdOf(`chunks_drill_${id}`)).toBe(id);
    expect(drillIdOf('chunks_drill_notes')).toBeUndefined();
    expect(drillIdOf('chunks')).toBeUndefined();
  });

  it('parses join specs and anomaly fractions, naming what is wrong', () => {
    expect(parseJoinSpec('public.chunks.id=chunks:chunk_id, chunks.id=vectors').joins).toEqual([
      { left: { component: 'postgres', table: 'public.chunks', column: 'id' }, right: { component: 'qdrant', collection: 'chunks', payloadField: 'chunk_id' } },
      { left: { component: 'postgres', table: 'chunks', column: 'id' }, right: { component: 'qdrant', collection: 'vectors' } },
    ]);
    expect(parseJoinSpec('chunks=chunks').problems[0]).toMatch(/"chunks=chunks" is not TABLE.COLUMN=COLLECTION/);
    expect([parseAnomalyDrop('0.3'), parseAnomalyDrop('25%'), parseAnomalyDrop('off')]).toEqual([0.3, 0.25, false]);
    expect(parseAnomalyDrop('150%')).toMatch(/expected a fraction/);
  });
});

const component = (name: string, metadata: Record<string, unknown>, rawSize: number, status: 'ok' | 'failed' = 'ok'): ComponentManifest => ({
  name,
  status,
  startedAt: '2026-12-01T02:00:00Z',
  finishedAt: '2026-12-01T02:01:00Z',
  durationMs: 1,
  artifacts: [{ name: 'a', path: `${name}/a`, size: rawSize, sha256: '0'.repeat(64), rawSize, codecs: [] }],
  metadata,
  warnings: [],
});

const manifest = (components: ComponentManifest[]): Manifest => ({
  formatVersion: 1,
  id: 'scholaria_backup_20261201_020000',
  tier: 'daily',
  status: 'complete',
  startedAt: '2026-12-01T02:00:00Z',
  finishedAt: '2026-12-01T02:01:00Z',
  timeZone: 'UTC',
  host: 'h',
  library: { name: 'x', version: '1' },
  components,
  storages: [],
  tags: [],
});

describe('size anomalies', () => {
  const pgMeta = (rows: number) => ({ databases: [{ name: 'scholaria', tables: [{ schema: 'public', name: 'chunks', rows, exact: true }] }] });
  const previous = manifest([
    component('postgres', pgMeta(1000), 10_000),
    component('redis', { keys: 400 }, 5000),
    component('qdrant', { collections: [{ name: 'chunks', pointsCount: 1000 }] }, 80_000),
  ]);

  it('flags a drop of more than the fraction in bytes or counts, per component', () => {
    const found = detectSizeAnomalies(previous, [
      component('postgres', pgMeta(499), 6000),
      component('redis', { keys: 201 }, 4000),
      component('qdrant', { collections: [{ name: 'chunks', pointsCount: 0 }] }, 100),
    ]);
    expect(found.map((a) => [a.component, a.measure, a.previous, a.current])).toEqual([
      ['postgres', 'rows', 1000, 499],
      ['qdrant', 'bytes', 80_000, 100],
      ['qdrant', 'points', 1000, 0],
    ]);
    expect(found[0]!.message).toMatch(/rows dropped 50% \(1000 -> 499\) since scholaria_backup_20261201_020000, more than the 50% allowed/);
  });

  it('honours the fraction, ignores growth, new components and failed ones', () => {
    expect(detectSizeAnomalies(previous, [component('postgres', pgMeta(700), 7000)], 0.25).map((a) => a.measure)).toEqual(['bytes', 'rows']);
    expect(detectSizeAnomalies(previous, [component('postgres', pgMeta(700), 7000)], 0.5)).toEqual([]);
    expect(detectSizeAnomalies(previous, [component('postgres', pgMeta(5000), 90_000), component('fs', {}, 1)])).toEqual([]);
    expect(detectSizeAnomalies(previous, [component('redis', {}, 0, 'failed')])).toEqual([]);
    expect(detectSizeAnomalies(undefined, [component('redis', { keys: 0 }, 0)])).toEqual([]);
  });
});

describe('scheduler drill job', () => {
  let dir: TempDir;
  let now: Date;
  beforeEach(async () => {
    dir = await makeTempDir();
    now = new Date('2026-11-29T04:59:00Z');
  });
  afterEach(async () => {
    await dir.remove();
  });

  it('runs the drill on its own cron, never as a tier, and reports it in status', async () => {
    const storage = createFsStorage({ root: dir.path });
    const engine = createBackupEngine({ sources: [createTestSource()], storage, clock: () => now });
    const drills: string[] = [];
    const fake = (id: string): DrillResult => ({
      drillId: id,
      setId: 'scholaria_backup_20261129_030000',
      tier: 'weekly',
      status: 'passed',
      startedAt: now.toISOString(),
      finishedAt: now.toISOString(),
      rto: { totalMs: 1234, components: { test: 1000 } },
      components: [],
      checks: [],
      removedLeftovers: [],
      cleanedUp: [],
      cleanupProblems: [],
    });
    const scheduler = createScheduler(engine, {
      tiers: { daily: '0 2 * * *' },
      timeZone: 'UTC',
      clock: () => now,
      drill: {
        async run() {
          const result = fake(`20261129_050000_${String(drills.length).padStart(4, '0')}`);
          drills.push(result.drillId);
          await writeDrillRecord(storage, result);
          return result;
        },
      },
    });
    expect(scheduler.nextRuns().find((n) => n.tier === 'drill')!.next!.toISOString()).toBe('2026-11-29T05:00:00.000Z');
    now = new Date('2026-11-29T05:00:30Z');
    const runs = await scheduler.tick();
    expect(runs.map((r) => [r.tier, r.drill?.status, r.result])).toEqual([['drill', 'passed', undefined]]);
    expect(drills).toHaveLength(1);
    const status = await scheduler.status();
    expect(status.tiers.map((t) => t.tier)).toEqual(['daily']);
    expect(status.drill).toMatchObject({ cron: DEFAULT_DRILL_SCHEDULE, missed: false, last: { drillId: drills[0], status: 'passed', rtoMs: 1234 } });
    // A week on without a drill: missed.
    now = new Date('2026-12-06T08:00:00Z');
    expect((await scheduler.status()).drill!.missed).toBe(true);
    await scheduler.stop();
  });

  it('refuses a tier named like the drill job and a drill run when drills are off', async () => {
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }) });
    expect(() => createScheduler(engine, { tiers: { drill: '0 1 * * *' } })).toThrow(/name of the restore drill job/);
    expect(() => createScheduler(engine, { drill: { schedule: 'weekly', run: async () => ({}) as DrillResult } })).toThrow(/drill schedule/);
    await expect(createScheduler(engine, {}).runNow('drill')).rejects.toThrow(/unknown tier "drill"/);
  });
});
