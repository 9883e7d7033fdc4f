import cliProgress from 'cli-progress';
import type { ProgressEvent } from '@scholaria/backup-core';
import type { Output } from './cli-io.js';
import { formatBytes, formatDuration } from './format.js';

export interface ProgressReporter {
  onProgress(event: ProgressEvent): void;
  /** Stops the bars (leaving their last state on screen). */
  stop(): void;
}

interface Track {
  label: string;
  started: number;
  artifacts: Map<string, number>;
  /** Expected bytes (restore: the manifest; backup: the previous set); 0 = unknown. */
  total: number;
  /** More bytes came than expected: the estimate is wrong, show no percentage. */
  exceeded: boolean;
  /** Set when every artifact reported done: the rate stops there instead of falling. */
  finishedAt?: number;
  done: Set<string>;
  lastLine: number;
  /** Longest line drawn, so that a shorter one overwrites it completely. */
  width: number;
  bar?: cliProgress.SingleBar;
}

const PHASE_LABEL: Record<string, string> = { upload: 'backup', backup: 'backup', verify: 'verify', restore: 'restore', download: 'download' };
const PLAIN_INTERVAL_MS = 15_000;
const BAR_WIDTH = 24;

function rateOf(track: Track, bytes: number): number {
  const seconds = ((track.finishedAt ?? Date.now()) - track.started) / 1000;
  // Below a fifth of a second the rate is noise.
  return seconds >= 0.2 ? bytes / seconds : 0;
}

export interface ProgressOptions {
  /** A terminal: draw bars. Otherwise print a line per finished artifact (and every 15 s). */
  tty: boolean;
  /** Off with --json. */
  enabled: boolean;
  /** Expected bytes per component, for the bar and the ETA (restore: from the manifest; backup: the previous set). */
  expected?: Map<string, number>;
  /** Phases whose per-artifact "done" lines are not printed (plain mode). */
  noDoneLines?: string[];
}

/** Bytes, rate and ETA per component: a cli-progress multibar on a terminal, plain lines otherwise. */
export function createProgress(out: Output, options: ProgressOptions): ProgressReporter {
  if (!options.enabled) return { onProgress() {}, stop() {} };
  const tracks = new Map<string, Track>();
  let multibar: cliProgress.MultiBar | undefined;

  const format: cliProgress.GenericFormatter = (_opts, params, payload: { label: string; track: Track }) => {
    const { track } = payload;
    const bytes = params.value;
    const rate = rateOf(track, bytes);
    const label = payload.label.padEnd(18);
    const done = track.finishedAt !== undefined;
    let line: string;
    if (track.total > 0 && !track.exceeded) {
      const ratio = Math.min(1, bytes / track.total);
      const filled = Math.round(ratio * BAR_WIDTH);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
      const eta = done
        ? `done in ${formatDuration(track.finishedAt! - track.started)}`
        : `ETA ${rate > 0 && bytes < track.total ? formatDuration(((track.total - bytes) / rate) * 1000) : '-'}`;
      line = `${label} ${bar} ${String(Math.round(ratio * 100)).padStart(3)}% ${formatBytes(bytes)}/${formatBytes(track.total)} ${formatBytes(rate)}/s ${eta}`;
    } else {
      // Unknown or outgrown total: bytes and rate only; a percentage would be a guess.
      line = `${label} ${formatBytes(bytes)} ${formatBytes(rate)}/s${done ? ` done in ${formatDuration(track.finishedAt! - track.started)}` : ''}`;
    }
    track.width = Math.max(track.width, line.length);
    return line.padEnd(track.width);
  };

  const ensureBars = () => {
    if (multibar || !options.tty) return;
    multibar = new cliProgress.MultiBar({
      stream: out.io.stderr,
      format,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 5,
      noTTYOutput: false,
    });
    // Log lines printed while the bars are up go above them instead of through them.
    out.interceptStderr = (line) => multibar?.log(`${line}\n`);
  };

  return {
    onProgress(event) {
      const phase = PHASE_LABEL[event.phase] ?? event.phase;
      const key = `${event.component} ${phase}`;
      let track = tracks.get(key);
      if (!track) {
        track = {
          label: key,
          started: Date.now(),
          artifacts: new Map(),
          total: options.expected?.get(event.component) ?? 0,
          exceeded: false,
          done: new Set(),
          lastLine: Date.now(),
          width: 0,
        };
        tracks.set(key, track);
      }
      const artifact = event.artifact ?? '';
      track.artifacts.set(artifact, Math.max(track.artifacts.get(artifact) ?? 0, event.bytes));
      const bytes = [...track.artifacts.values()].reduce((n, b) => n + b, 0);
      if (track.total > 0 && bytes > track.total) track.exceeded = true;
      const artifactDone = event.done === true || (event.totalBytes !== undefined && event.totalBytes > 0 && event.bytes >= event.totalBytes);
      if (artifactDone) track.done.add(artifact);
      else track.done.delete(artifact);
      track.finishedAt = track.done.size === track.artifacts.size ? (track.finishedAt ?? Date.now()) : undefined;
      if (options.tty) {
        ensureBars();
        if (!track.bar) track.bar = multibar!.create(Math.max(track.total, 1), bytes, { label: track.label, track });
        track.bar.setTotal(Math.max(track.total, 1));
        track.bar.update(bytes, { label: track.label, track });
        return;
      }
      const finished = artifactDone;
      const now = Date.now();
      // A restore reads its artifacts more than once (checks, then the restore itself): its
      // "done" would be printed before the restore starts, and in dry runs. The component's
      // result says when it is restored; here only the long reads get a line.
      if (finished && options.noDoneLines?.includes(phase)) return;
      if (finished || now - track.lastLine >= PLAIN_INTERVAL_MS) {
        track.lastLine = now;
        const what = event.artifact ? ` ${event.artifact}` : '';
        const rate = rateOf(track, bytes);
        out.note(`${event.component}: ${phase}${what} ${finished ? 'done,' : 'at'} ${formatBytes(finished ? event.bytes : bytes)}${rate > 0 ? ` (${formatBytes(rate)}/s)` : ''}`);
      }
    },
    stop() {
      if (multibar) {
        multibar.stop();
        multibar = undefined;
        out.interceptStderr = undefined;
      }
    },
  };
}
