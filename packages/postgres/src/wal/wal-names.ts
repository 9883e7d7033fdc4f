/**
 * WAL file names and LSNs, as PostgreSQL spells them (src/include/access/xlog_internal.h):
 * a segment is TTTTTTTTXXXXXXXXYYYYYYYY (timeline, log, segment in log, 8 hex digits each);
 * with the default 16 MiB segments there are 256 segments per log id.
 */

export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

const SEGMENT_RE = /^[0-9A-F]{24}$/;
const HISTORY_RE = /^[0-9A-F]{8}\.history$/;
const PARTIAL_RE = /^[0-9A-F]{24}\.partial$/;
const BACKUP_LABEL_RE = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;

export type WalFileKind = 'segment' | 'history' | 'partial' | 'backup-label';

/** What kind of file PostgreSQL hands to archive_command / asks of restore_command; undefined if none. */
export function walFileKind(name: string): WalFileKind | undefined {
  if (SEGMENT_RE.test(name)) return 'segment';
  if (HISTORY_RE.test(name)) return 'history';
  if (PARTIAL_RE.test(name)) return 'partial';
  if (BACKUP_LABEL_RE.test(name)) return 'backup-label';
  return undefined;
}

export interface SegmentName {
  timeline: number;
  /** Position of the segment in the WAL stream, independent of the timeline. */
  position: bigint;
}

export function segmentsPerLog(segmentSize = DEFAULT_SEGMENT_SIZE): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

export function parseSegmentName(name: string, segmentSize = DEFAULT_SEGMENT_SIZE): SegmentName | undefined {
  if (!SEGMENT_RE.test(name)) return undefined;
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return { timeline, position: log * segmentsPerLog(segmentSize) + seg };
}

const hex8 = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');

export function segmentName(timeline: number, position: bigint, segmentSize = DEFAULT_SEGMENT_SIZE): string {
  const per = segmentsPerLog(segmentSize);
  return `${hex8(timeline)}${hex8(position / per)}${hex8(position % per)}`;
}

/** '0/3000028' -> 0x3000028n; undefined when it is not an LSN. */
export function parseLsn(text: string): bigint | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The segment position holding `lsn`. */
export function lsnPosition(lsn: bigint, segmentSize = DEFAULT_SEGMENT_SIZE): bigint {
  return lsn / BigInt(segmentSize);
}

/**
 * The segment holding the last byte before `lsn`: a stop LSN exactly at a segment boundary
 * needs only the segment before it.
 */
export function lastPositionBefore(lsn: bigint, segmentSize = DEFAULT_SEGMENT_SIZE): bigint {
  return lsn === 0n ? 0n : (lsn - 1n) / BigInt(segmentSize);
}

export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

export interface TimelineSwitch {
  /** The timeline that ended. */
  timeline: number;
  /** First LSN that is no longer on it. */
  switchLsn: bigint;
}

/**
 * Parses a timeline history file (`parentTLI<TAB>switchpoint<TAB>reason` lines, as
 * src/backend/access/transam/timeline.c writes them).
 */
export function parseHistoryFile(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [tli, lsn] = line.split(/\s+/);
    const timeline = Number(tli);
    const switchLsn = lsn ? parseLsn(lsn) : undefined;
    if (!Number.isInteger(timeline) || switchLsn === undefined) continue;
    out.push({ timeline, switchLsn });
  }
  return out;
}

/**
 * Which timeline's copy of each segment recovery reads when it follows `history` (the target
 * timeline's history) up to `targetTimeline`: a segment before the segment of a switch point
 * comes from the older timeline; the segment holding the switch point and later ones from the
 * newer one (PostgreSQL copies the switch segment onto the new timeline at promotion).
 */
export function timelineForPosition(position: bigint, targetTimeline: number, history: TimelineSwitch[], segmentSize = DEFAULT_SEGMENT_SIZE): number {
  for (const entry of history) {
    if (position < lsnPosition(entry.switchLsn, segmentSize)) return entry.timeline;
  }
  return targetTimeline;
}
