/**
 * wal-push overhead per 16 MiB segment against `cp` (the archive_command of the PostgreSQL
 * docs), on a local fs storage with the default zstd codec (bench/lib/wal-push-bench.ts; the
 * `pitr` group of `pnpm bench` runs the same). Run on its own:
 *   pnpm build && node --import tsx bench/wal-push.ts [--runs 10] [--deployed] [--before OTHER/bin.js]
 * --deployed sets DATABASE_URL and BACKUP_PITR=on as a PITR deployment does; --before times
 * another build of the CLI in the same rounds (paired), e.g. main's packages/cli/dist/bin.js.
 * It prints the median and p90 wall time and the median CPU of each, and the overhead per segment.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureWalPush, median, type WalPushVariant } from './lib/wal-push-bench.js';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const runs = Number(arg('--runs') ?? 10);
const before = arg('--before');
const deployed = process.argv.includes('--deployed');
const work = mkdtempSync(join(tmpdir(), 'bench-wal-'));
const bins: WalPushVariant[] = [
  { id: 'lib.wal-push', label: 'scholaria-backup wal-push %p', bin: join(repo, 'packages/cli/dist/bin.js') },
  ...(before ? [{ id: 'lib.wal-push.before', label: `wal-push, ${before}`, bin: resolve(before) }] : []),
];
const load0 = loadavg();
try {
  console.log(`node ${process.version}, ${runs} segments of 16 MiB, ${execFileSync('nproc').toString().trim()} cores${deployed ? ', DATABASE_URL + BACKUP_PITR=on set' : ''}, load ${load0.map((l) => l.toFixed(1)).join(' / ')}`);
  const out = measureWalPush({ work, runs, bins, deployed });
  const labels: Record<string, string> = { 'raw.wal-push.cp': 'cp %p archive/%f', 'raw.node-start': 'node -e 0 (Node start alone)', ...Object.fromEntries(bins.map((b) => [b.id, b.label])) };
  for (const [id, list] of out) {
    const ms = list.map((r) => r.ms).sort((a, b) => a - b);
    const cpu = list.flatMap((r) => (r.cpuMs !== undefined ? [r.cpuMs] : []));
    console.log(`${labels[id]!.padEnd(40)} median ${median(ms).toFixed(0).padStart(5)} ms  p90 ${ms[Math.floor(ms.length * 0.9)]!.toFixed(0).padStart(5)} ms  CPU ${cpu.length ? `${median(cpu).toFixed(0).padStart(5)} ms` : '-'}`);
  }
  const med = (id: string) => median(out.get(id)!.map((r) => r.ms));
  console.log(`overhead of wal-push over cp: ${(med('lib.wal-push') - med('raw.wal-push.cp')).toFixed(0)} ms per segment (Node start alone: ${med('raw.node-start').toFixed(0)} ms)${before ? `; before: ${(med('lib.wal-push.before') - med('raw.wal-push.cp')).toFixed(0)} ms` : ''}`);
  console.log(`load at the end ${loadavg().map((l) => l.toFixed(1)).join(' / ')}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
