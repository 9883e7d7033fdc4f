/**
 * wal-push overhead per 16 MiB segment against `cp` (the archive_command of the PostgreSQL
 * docs), on a local fs storage with the default zstd codec. Run on its own:
 *   pnpm build && node --import tsx bench/wal-push.ts [--runs 10]
 * It prints the median and p90 wall time of each and the overhead per segment.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const bin = join(repo, 'packages/cli/dist/bin.js');
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
const work = mkdtempSync(join(tmpdir(), 'bench-wal-'));

// Half random, half zeros: WAL compresses, but not to nothing.
const segment = Buffer.alloc(16 * 1024 * 1024);
randomFillSync(segment, 0, segment.length / 2);

function time(label: string, run: (i: number) => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    run(i);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  out.sort((a, b) => a - b);
  console.log(`${label.padEnd(34)} median ${out[Math.floor(runs / 2)]!.toFixed(0).padStart(5)} ms  p90 ${out[Math.floor(runs * 0.9)]!.toFixed(0).padStart(5)} ms`);
  return out;
}

try {
  const pgWal = join(work, 'pg_wal');
  mkdirSync(pgWal);
  const names = Array.from({ length: runs }, (_, i) => `00000001000000000000${(0x10 + i).toString(16).toUpperCase().padStart(4, '0')}`);
  for (const n of names) writeFileSync(join(pgWal, n), segment);
  const cpDir = join(work, 'cp-archive');
  mkdirSync(cpDir);
  // wal-push never creates the storage root (a missing one is an unmounted volume).
  mkdirSync(join(work, 'backup'));
  const env = { ...process.env, BACKUP_DIR: join(work, 'backup'), BACKUP_LOG_DIR: join(work, 'log') };
  console.log(`node ${process.version}, ${runs} segments of 16 MiB, ${execFileSync('nproc').toString().trim()} cores`);
  const cp = time('cp %p archive/%f', (i) => execFileSync('cp', [join(pgWal, names[i]!), join(cpDir, names[i]!)]));
  const start = time('node -e 0 (Node start alone)', () => execFileSync(process.execPath, ['-e', '0']));
  const push = time('scholaria-backup wal-push %p', (i) => {
    const r = spawnSync(process.execPath, [bin, 'wal-push', join(pgWal, names[i]!)], { env });
    if (r.status !== 0) throw new Error(`wal-push failed: ${r.stderr}`);
  });
  const again = time('wal-push again (already archived)', (i) => {
    const r = spawnSync(process.execPath, [bin, 'wal-push', join(pgWal, names[i]!)], { env });
    if (r.status !== 0) throw new Error(`wal-push failed: ${r.stderr}`);
  });
  const med = (a: number[]) => a[Math.floor(a.length / 2)]!;
  console.log(`overhead of wal-push over cp: ${(med(push) - med(cp)).toFixed(0)} ms per segment (Node start alone: ${med(start).toFixed(0)} ms; idempotent re-push ${med(again).toFixed(0)} ms)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
