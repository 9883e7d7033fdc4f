/**
 * wal-push overhead per 16 MiB WAL segment against `cp` (the archive_command of the PostgreSQL
 * docs) and `node -e 0` (Node's start-up floor), on a local fs storage with the default zstd
 * codec. Used by `bench/wal-push.ts` (alone, optionally paired with another build) and by the
 * `pitr` group of `pnpm bench`. Each round runs every variant once, in turn, so that the load of
 * a shared machine spreads over all of them. CPU is user + system of the process and its
 * children (GNU time), which moves less with other load than wall time.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GNU_TIME, parseTimeOutput, rusageFile } from './proc.js';

export interface WalPushVariant {
  id: string;
  label: string;
  /** The built `scholaria-backup` bin.js; undefined for the `cp` and `node -e 0` rows. */
  bin?: string;
}

export interface WalPushRun {
  ms: number;
  cpuMs?: number;
}

/**
 * `deployed`: the environment of a real PITR deployment (DATABASE_URL and BACKUP_PITR=on set,
 * pointing nowhere: wal-push must not connect), where the full configuration used to create the
 * sources, drill targets and base backup source for every segment.
 */
export function measureWalPush(o: { work: string; runs: number; bins: WalPushVariant[]; deployed: boolean; log?: (line: string) => void }): Map<string, WalPushRun[]> {
  const work = join(o.work, 'wal-push');
  const pgWal = join(work, 'pg_wal');
  mkdirSync(pgWal, { recursive: true });
  const cpDir = join(work, 'cp-archive');
  mkdirSync(cpDir);
  // Half random, half zeros: WAL compresses, but not to nothing.
  const segment = Buffer.alloc(16 * 1024 * 1024);
  randomFillSync(segment, 0, segment.length / 2);
  const names = Array.from({ length: o.runs }, (_, i) => `00000001000000000000${(0x10 + i).toString(16).toUpperCase().padStart(4, '0')}`);
  for (const n of names) writeFileSync(join(pgWal, n), segment);
  const out = new Map<string, WalPushRun[]>();
  const timed = (id: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) => {
    const usage = rusageFile();
    const t0 = process.hrtime.bigint();
    const r = GNU_TIME ? spawnSync(GNU_TIME, ['-f', '%M %U %S', '-o', usage, cmd, ...args], { env: env ?? process.env }) : spawnSync(cmd, args, { env: env ?? process.env });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${id}: ${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    const cpu = GNU_TIME ? parseTimeOutput(readFileSync(usage, 'utf8')).cpuMs : undefined;
    rmSync(usage, { force: true });
    const list = out.get(id) ?? [];
    list.push({ ms, ...(cpu !== undefined ? { cpuMs: cpu } : {}) });
    out.set(id, list);
  };
  const envOf = (i: number) => {
    // A storage per variant, so every variant archives each segment for the first time.
    const backup = join(work, `backup-${i}`);
    mkdirSync(backup, { recursive: true });
    return {
      ...process.env,
      BACKUP_DIR: backup,
      BACKUP_LOG_DIR: join(work, 'log'),
      ...(o.deployed ? { DATABASE_URL: 'postgresql://app:secret@127.0.0.1:1/app', BACKUP_PITR: 'on' } : {}),
    };
  };
  const envs = o.bins.map((_, i) => envOf(i));
  try {
    for (let round = 0; round < o.runs; round++) {
      const name = names[round]!;
      timed('raw.wal-push.cp', 'cp', [join(pgWal, name), join(cpDir, name)]);
      timed('raw.node-start', process.execPath, ['-e', '0']);
      o.bins.forEach((v, i) => timed(v.id, process.execPath, [v.bin!, 'wal-push', join(pgWal, name)], envs[i]));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
