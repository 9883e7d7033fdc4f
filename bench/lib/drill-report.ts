import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GB } from './stats.js';

export const DRILL_START = '<!-- drill-rto:start -->';
export const DRILL_END = '<!-- drill-rto:end -->';

interface DrillResultsFile {
  time: string;
  machine: { cpus: number; model?: string; loadavg: number[] };
  data: { databaseBytes: number };
  markdown: string;
}

/** The "Restore drill RTO" section of docs/benchmarks.md from the newest bench/results/drill-*.json. */
export function drillSection(resultsDir: string): string {
  const files = readdirSync(resultsDir).filter((f) => /^drill-.*\.json$/.test(f)).sort();
  const newest = files[files.length - 1];
  const lines = [DRILL_START, '## Restore drill RTO', ''];
  if (!newest) {
    lines.push('Not measured yet: run `pnpm bench:drill` (1 GiB by default) on a quiet machine.');
  } else {
    const r = JSON.parse(readFileSync(join(resultsDir, newest), 'utf8')) as DrillResultsFile;
    lines.push(
      `Written by \`pnpm bench:drill\` (\`bench/drill.ts\`, not part of \`pnpm bench\`) on ${r.time.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cpus} cores, load ${r.machine.loadavg.map((l) => l.toFixed(1)).join(' / ')}; raw figures in [\`bench/results/${newest}\`](../bench/results/${newest}). The drill restores the set into throwaway targets and checks it ([drills.md](drills.md)); the RTO is checksum verification plus every component's restore. Qdrant runs on the testkit's simulator, so its row says little about a real Qdrant.`,
      '',
      r.markdown,
    );
    if (r.data.databaseBytes < 0.9 * GB) {
      lines.push('', `**The 1 GiB figures are not measured yet**: this run used a ${(r.data.databaseBytes / GB).toFixed(2)} GiB database on a shared, loaded machine (a smoke run of the scenario). Run \`pnpm bench:drill\` (default \`--size 1\`) on a quiet machine to fill this in.`);
    }
  }
  lines.push(DRILL_END);
  return `${lines.join('\n')}\n`;
}

/** Replaces the drill section of a benchmarks page (or appends it). */
export function withDrillSection(page: string, section: string): string {
  const a = page.indexOf(DRILL_START);
  const b = page.indexOf(DRILL_END);
  if (a >= 0 && b > a) return `${page.slice(0, a)}${section}${page.slice(b + DRILL_END.length + 1)}`;
  return `${page.trimEnd()}\n\n${section}`;
}

/**
 * What follows the drill section of a benchmarks page: the findings written by hand (wal-push,
 * PITR, performance rounds), which a full `pnpm bench` keeps as they are.
 */
export function handWrittenTail(page: string): string {
  const b = page.indexOf(DRILL_END);
  return b < 0 ? '' : page.slice(b + DRILL_END.length + 1);
}
