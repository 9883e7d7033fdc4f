import { BackupError } from '@scholaria/backup-core';
import type { ArchivedWalFile } from './wal-archive.js';
import {
  formatLsn,
  historyFileName,
  lastPositionBefore,
  lsnPosition,
  parseHistoryFile,
  parseSegmentName,
  segmentName,
  timelineForPosition,
  type TimelineSwitch,
} from './wal-names.js';

/** What the manifest records of one base backup (pg_basebackup's start and stop points). */
export interface BaseBackupPoint {
  timeline: number;
  startLsn: string;
  stopLsn: string;
  /** ISO time pg_basebackup finished: a time target must be later. */
  stopTime: string;
}

export type RecoveryTarget = { kind: 'time'; time: Date; text: string } | { kind: 'lsn'; lsn: bigint; text: string } | { kind: 'latest' };

export interface WalPlan {
  targetTimeline: number;
  /** Segments recovery needs, in replay order. */
  segments: string[];
  /** History files recovery reads to follow timelines. */
  historyFiles: string[];
  /** Needed but not archived, in order. Empty for a usable plan. */
  missing: string[];
  first: string;
  last: string;
  /** Archived after `last` on the same path: recovery reads them too when it needs them. */
  beyond: number;
}

function planError(message: string, hint: string): BackupError {
  return new BackupError('RESTORE_FAILED', message, { component: 'postgres-pitr', hint });
}

/** The newest timeline with a history file in the archive (what recovery_target_timeline 'latest' picks). */
export function latestTimeline(files: ArchivedWalFile[], base: number): number {
  let tl = base;
  for (const f of files) {
    const m = /^([0-9A-F]{8})\.history$/.exec(f.name);
    if (m) tl = Math.max(tl, Number.parseInt(m[1]!, 16));
  }
  return tl;
}

/**
 * The WAL a recovery from `base` to `target` replays, checked against the archive listing:
 * every segment from the base backup's start to the target must be there (a gap makes every
 * later moment unreachable). `readHistory` returns a history file's text.
 */
export async function planWal(params: {
  base: BaseBackupPoint;
  target: RecoveryTarget;
  files: ArchivedWalFile[];
  readHistory: (name: string) => Promise<string | undefined>;
  timeline?: number;
}): Promise<WalPlan> {
  const { base, target, files } = params;
  const startLsn = BigInt(`0x${base.startLsn.split('/')[0]}`) << 32n | BigInt(`0x${base.startLsn.split('/')[1]}`);
  const stopLsn = BigInt(`0x${base.stopLsn.split('/')[0]}`) << 32n | BigInt(`0x${base.stopLsn.split('/')[1]}`);
  const targetTimeline = params.timeline ?? latestTimeline(files, base.timeline);
  let history: TimelineSwitch[] = [];
  const historyFiles: string[] = [];
  if (targetTimeline !== base.timeline) {
    const name = historyFileName(targetTimeline);
    const text = await params.readHistory(name);
    if (text === undefined) {
      throw planError(`timeline ${targetTimeline}: its history file ${name} is not in the archive`, 'Push it from the pg_wal of the server on that timeline (scholaria-backup wal-push pg_wal/' + name + ').');
    }
    history = parseHistoryFile(text);
    historyFiles.push(name);
    if (!history.some((h) => h.timeline === base.timeline)) {
      throw planError(
        `the base backup is on timeline ${base.timeline}, which is not an ancestor of timeline ${targetTimeline}`,
        'Pick a base backup taken on the target timeline or one of its ancestors.',
      );
    }
    // Only the part of the history after the base backup's timeline matters.
    history = history.filter((h) => h.timeline >= base.timeline);
    const ended = history.find((h) => h.timeline === base.timeline);
    if (ended && ended.switchLsn < stopLsn) {
      throw planError(`timeline ${base.timeline} ended at ${formatLsn(ended.switchLsn)}, before the base backup became consistent (${base.stopLsn})`, 'Pick a base backup taken on the newer timeline.');
    }
  }
  const present = new Map(files.map((f) => [f.name, f]));
  const nameAt = (p: bigint) => segmentName(timelineForPosition(p, targetTimeline, history), p);
  const start = lsnPosition(startLsn);
  const consistent = lastPositionBefore(stopLsn);
  let end: bigint;
  if (target.kind === 'lsn') {
    if (target.lsn < stopLsn) {
      throw planError(`target LSN ${target.text} is before the end of the base backup (${base.stopLsn})`, 'Pick an older base backup (see `scholaria-backup list`), or a later target.');
    }
    end = lsnPosition(target.lsn);
  } else if (target.kind === 'time') {
    if (target.time.getTime() <= Date.parse(base.stopTime)) {
      throw planError(`target time ${target.text} is before the end of the base backup (${base.stopTime})`, 'Pick an older base backup, or a later target time.');
    }
    // The first segment closed after the target holds (or precedes) the first commit after it.
    const after = [...present.values()]
      .map((f) => ({ f, seg: parseSegmentName(f.name) }))
      .filter((x) => x.seg && x.seg.position >= consistent && x.f.archivedAt.getTime() >= target.time.getTime() && nameAt(x.seg.position) === x.f.name)
      .sort((a, b) => (a.seg!.position < b.seg!.position ? -1 : 1))[0];
    if (!after) {
      const newest = [...present.values()].reduce<Date | undefined>((m, f) => (!m || f.archivedAt > m ? f.archivedAt : m), undefined);
      throw planError(
        `no WAL archived after the target time ${target.text} (newest archived file: ${newest ? newest.toISOString() : 'none'}): recovery could not confirm the target`,
        'Wait for the next segment to be archived (or run SELECT pg_switch_wal() on the server), or choose an earlier target; --to latest replays everything archived.',
      );
    }
    end = after.seg!.position;
  } else {
    end = consistent;
    while (present.has(nameAt(end + 1n))) end++;
  }
  if (end < consistent) end = consistent;
  const segments: string[] = [];
  const missing: string[] = [];
  for (let p = start; p <= end; p++) {
    const name = nameAt(p);
    segments.push(name);
    if (!present.has(name)) missing.push(name);
  }
  let beyond = 0;
  while (present.has(nameAt(end + 1n + BigInt(beyond)))) beyond++;
  if (target.kind === 'latest' && missing.length === 0) {
    // A later file past a hole would be silently skipped by 'latest': say so instead.
    const later = files.find((f) => {
      const s = parseSegmentName(f.name);
      return s && s.position > end + BigInt(beyond) + 1n && nameAt(s.position) === f.name;
    });
    if (later) missing.push(nameAt(end + BigInt(beyond) + 1n));
  }
  return { targetTimeline, segments, historyFiles, missing, first: segments[0]!, last: segments.at(-1)!, beyond };
}
