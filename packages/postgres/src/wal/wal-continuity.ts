import type { ArchivedWalFile } from './wal-archive.js';
import { lsnPosition, parseLsn, parseSegmentName, segmentName, walFileKind } from './wal-names.js';
import type { BaseBackupPoint } from './wal-plan.js';

export interface WalContinuity {
  ok: boolean;
  segments: number;
  timelines: number[];
  /** Missing segments between the first and last archived one of a timeline, as ranges. */
  gaps: { timeline: number; from: string; to: string; count: number }[];
  newest?: { name: string; archivedAt: Date };
}

/** Holes in each timeline's run of archived segments (a timeline starts at its switch segment). */
export function checkWalContinuity(files: ArchivedWalFile[]): WalContinuity {
  const byTimeline = new Map<number, bigint[]>();
  let newest: ArchivedWalFile | undefined;
  let segments = 0;
  for (const f of files) {
    if (!newest || f.archivedAt > newest.archivedAt) newest = f;
    const s = parseSegmentName(f.name);
    if (!s) continue;
    segments++;
    const list = byTimeline.get(s.timeline) ?? [];
    list.push(s.position);
    byTimeline.set(s.timeline, list);
  }
  const gaps: WalContinuity['gaps'] = [];
  for (const [timeline, positions] of byTimeline) {
    positions.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 1; i < positions.length; i++) {
      const prev = positions[i - 1]!;
      const cur = positions[i]!;
      if (cur - prev > 1n) gaps.push({ timeline, from: segmentName(timeline, prev + 1n), to: segmentName(timeline, cur - 1n), count: Number(cur - prev - 1n) });
    }
  }
  return {
    ok: gaps.length === 0,
    segments,
    timelines: [...byTimeline.keys()].sort((a, b) => a - b),
    gaps,
    ...(newest ? { newest: { name: newest.name, archivedAt: newest.archivedAt } } : {}),
  };
}

/**
 * What retention may delete from the archive: every segment (and partial or backup label file)
 * older than the start of the oldest kept base backup, on any timeline. History files stay
 * (they are tiny and recovery reads them to follow timelines). With no kept base backup
 * nothing is deleted: the archive is then the only copy of those changes.
 */
export function walToKeep(files: ArchivedWalFile[], kept: BaseBackupPoint[]): { keep: string[]; remove: string[]; oldestNeeded?: string } {
  if (kept.length === 0) return { keep: files.map((f) => f.name), remove: [] };
  let oldest: bigint | undefined;
  let oldestName: string | undefined;
  for (const b of kept) {
    const p = lsnPosition(parseLsn(b.startLsn)!);
    if (oldest === undefined || p < oldest) {
      oldest = p;
      oldestName = segmentName(b.timeline, p);
    }
  }
  const keep: string[] = [];
  const remove: string[] = [];
  for (const f of files) {
    const kind = walFileKind(f.name);
    const s = parseSegmentName(f.name.slice(0, 24));
    if (kind === 'history' || !s || s.position >= oldest!) keep.push(f.name);
    else remove.push(f.name);
  }
  return { keep, remove, ...(oldestName ? { oldestNeeded: oldestName } : {}) };
}
