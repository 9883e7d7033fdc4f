import type { Comparison } from './comparisons.js';
import type { Measurement } from './measure.js';
import type { DataShape } from './pg-data.js';
import { GB, MB } from './stats.js';

export interface ScalePoint {
  databaseBytes: number;
  chunks: number;
  /** Median backup time at this size. */
  backupMs: number;
  /** Highest peak RSS of the library process at this size. */
  maxRssBytes: number;
  artifactBytes: number;
  runs: number;
}

export interface BenchResults {
  formatVersion: 1;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  commit?: string;
  options: Record<string, unknown>;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; os: string; loadAverageStart: number[]; loadAverageEnd: number[] };
  versions: Record<string, string>;
  data: {
    postgres?: DataShape & { generateSeconds: number } & Record<string, unknown>;
    redis?: { keys: number; usedMemoryBytes: number; loadSeconds: number };
    s3?: { bytes: number; partSizeBytes: number; queueSize: number };
  };
  measurements: Measurement[];
  comparisons: Comparison[];
  scale: ScalePoint[];
  notes: string[];
}

const s = (ms: number) => (ms / 1000).toFixed(ms >= 100_000 ? 0 : 1);
const mb = (b: number) => (b / MB).toFixed(b >= 100 * MB ? 0 : 1);
const gib = (b: number) => (b / GB).toFixed(2);

/**
 * Why a comparison comes out as it does, found by profiling (see the "Findings" section). Kept
 * here, beside the code that measures, so a rerun that changes the verdict shows the reasoning
 * next to the new figures.
 */
export const FINDINGS: Record<string, string> = {};

function verdict(c: Comparison): string {
  if (!c.measured) return 'not measured';
  if (c.pass === undefined) return 'info';
  return c.pass ? '**pass**' : '**FAIL**';
}

export function renderMarkdown(r: BenchResults, extra: { chart?: string; resultsFile: string }): string {
  const L: string[] = [];
  const minutes = (r.durationSeconds / 60).toFixed(1);
  L.push('# Benchmarks');
  L.push('');
  L.push(
    'What the library costs on top of the tools it drives (`pg_dump`, `pg_restore`, `redis-cli`, `age`, `@aws-sdk/lib-storage`), how it compares with a Node peer (`redis-dump`), and how its memory behaves as the data grows. Everything on this page was written by `pnpm bench` from one run; the raw figures are in [`' +
      extra.resultsFile +
      '`](../' +
      extra.resultsFile +
      ') so later runs can be compared.',
  );
  L.push('');
  L.push(
    `Run of ${r.startedAt.replace('T', ' ').slice(0, 16)} UTC${r.commit ? ` at commit \`${r.commit}\`` : ''}: ${r.options.reps} repetitions per measurement (${r.options.slowReps} for the four bound by pg_dump's zlib), ${r.options.size} GiB base database, whole run ${minutes} min.`,
  );
  L.push('');
  L.push('## Results against the targets (issue 11)');
  L.push('');
  L.push('Ratios are of medians. "times faster" = raw time / library time; "ratio" = library / raw.');
  L.push('');
  L.push('| # | comparison | result | target | verdict | basis (medians) |');
  L.push('| --- | --- | --- | --- | --- | --- |');
  for (const c of r.comparisons) {
    L.push(`| ${c.item} | ${c.label} | ${c.display} | ${c.target ?? '—'} | ${verdict(c)} | ${c.basis ?? ''} |`);
  }
  L.push('');
  const findings = r.comparisons.filter((c) => FINDINGS[c.id]);
  if (findings.length) {
    L.push('### Findings');
    L.push('');
    for (const c of findings) L.push(`- **${c.label}** (${c.display}${c.target ? `, target ${c.target}` : ''}): ${FINDINGS[c.id]}`);
    L.push('');
  }
  if (r.notes.length) {
    L.push('Notes from the run:');
    L.push('');
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }

  L.push('## Measurements');
  L.push('');
  L.push('Median, with the range of the runs in brackets. Peak RSS: for library rows the Node process that ran the operation (its child tools such as `pg_dump` and `zstd` not included); for raw rows the largest process of the pipeline (GNU time).');
  L.push('');
  L.push('| group | what | runs | time s | artifact MB | peak RSS MB | keys/s |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const m of r.measurements) {
    const range = (x: { median: number; min: number; max: number } | undefined, f: (n: number) => string) =>
      x ? (x.min === x.max ? f(x.median) : `${f(x.median)} (${f(x.min)}–${f(x.max)})`) : '—';
    const what = `${m.label}<br>\`${m.command}\``;
    const err = m.errors.length ? ` **${m.errors.length} failed**: ${m.errors[0]!.split('\n')[0]!.replace(/\|/g, '\\|').slice(0, 300)}` : '';
    L.push(
      `| ${m.group} | ${what}${err} | ${m.runs.length} | ${range(m.time, s)} | ${range(m.size, mb)} | ${range(m.rss, mb)} | ${m.keysPerSecond ? range(m.keysPerSecond, (n) => Math.round(n).toLocaleString('en-US')) : '—'} |`,
    );
  }
  L.push('');

  L.push('## Memory and time against database size');
  L.push('');
  if (extra.chart) {
    L.push(`![Backup time and peak RSS against database size](${extra.chart})`);
    L.push('');
  }
  if (r.scale.length) {
    L.push('| database | chunks | library default backup s | artifact MB | peak RSS MB | runs |');
    L.push('| --- | --- | --- | --- | --- | --- |');
    for (const p of r.scale) {
      L.push(`| ${gib(p.databaseBytes)} GiB | ${p.chunks.toLocaleString('en-US')} | ${s(p.backupMs)} | ${mb(p.artifactBytes)} | ${mb(p.maxRssBytes)} | ${p.runs} |`);
    }
    L.push('');
  }

  L.push('## Machine, versions and data');
  L.push('');
  const m = r.machine;
  L.push(`- Machine: ${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / GB).toFixed(0)} GiB RAM, ${m.os}. Load average (1/5/15 min) at start ${m.loadAverageStart.join(' / ')}, at end ${m.loadAverageEnd.join(' / ')}.`);
  L.push(`- Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join('; ')}.`);
  const pg = r.data.postgres;
  if (pg) {
    L.push(
      `- PostgreSQL: database \`scholaria\` of ${gib(pg.databaseBytes)} GiB (\`pg_database_size\`): ${pg.users.toLocaleString('en-US')} users, ${pg.topics.toLocaleString('en-US')} topics, ${pg.contexts.toLocaleString('en-US')} contexts, ${pg.chunks.toLocaleString('en-US')} chunks (1–2 KB of text and a 384-dim \`real[]\` embedding each; primary keys, foreign keys, a unique and three secondary indexes), generated in ${pg.generateSeconds.toFixed(0)} s. Server from the testkit (\`startPostgres\`: fsync off, shared_buffers 32 MB).`,
    );
  }
  if (r.data.redis) {
    L.push(
      `- Redis: ${r.data.redis.keys.toLocaleString('en-US')} keys (40 % JSON strings, 20 % session hashes, 10 % each lists, sets, sorted sets and expiring tokens; about a third with a TTL), ${mb(r.data.redis.usedMemoryBytes)} MB used_memory, loaded with \`redis-cli --pipe\` in ${r.data.redis.loadSeconds.toFixed(1)} s. Server from the testkit (\`startRedis\`, persistence off, \`repl-diskless-sync-delay 0\` so neither rdb client waits 5 s for other replicas).`,
    );
  }
  if (r.data.s3) {
    L.push(`- S3: a ${gib(r.data.s3.bytes)} GiB file of random bytes uploaded to s3rver (testkit \`startS3\`, in the orchestrating process), ${mb(r.data.s3.partSizeBytes)} MB parts, ${r.data.s3.queueSize} in flight, for both.`);
  }
  L.push('');

  L.push('## How it is measured');
  L.push('');
  L.push(
    [
      '- Each repetition runs every variant of a group once, in turn, so drift (page cache, other load) is spread evenly; medians and ranges are over the repetitions.',
      "- Every library operation runs in a fresh Node process (plain JavaScript built from `bench/child.ts`, no TypeScript loader) through the public API: `createBackupEngine` with the source, `createFsStorage` or `createS3Storage`, and codecs. Its time is measured inside that process around `engine.backup()`/`engine.restore()` (so it includes preflight checks, row counts, globals, SHA256SUMS, manifest, lock and audit log, but not Node's start-up), its peak RSS is `process.resourceUsage().maxRSS`.",
      '- Raw tools run as the same processes a shell pipeline would start, connected by OS pipes (no byte passes through Node), timed from the first spawn to the last exit; peak RSS from GNU time.',
      "- PostgreSQL: `pg_dump -Fc` with its defaults is the baseline of item 1. The library default is `pg_dump -Fc -Z0` piped to the zstd codec (level 3, all cores), so `pg_dump -Fc -Z0 | zstd -3 -T0` is timed too: the same work done by hand. `compression: 'pg'` makes the library run exactly `pg_dump -Fc`, for the overhead check. Restores: `pg_restore --clean --if-exists --single-transaction` of the raw archive vs the library's in-place restore of its `'pg'` set (the same archive bytes; the library also verifies the checksum first and compares row counts after), and the swap restore of its default set (restore into a new database, compare, rename).",
      '- Redis: `redis-cli --rdb` vs the library in `rdb` mode (the same replication stream) and in `logical` mode (SCAN + DUMP, a RESP file of RESTORE commands), and vs `redis-dump` (npm) run as its CLI. keys/s = keys / time.',
      '- S3: the library backs up a file through a minimal source (the file streamed as one artifact, no compression) to `createS3Storage`; the bare baseline is one `Upload` of `createReadStream(file)` with the same part size and queue size.',
      '- Memory against size: the database is grown in place (more chunks) to each size and backed up once more with the library defaults.',
    ].join('\n'),
  );
  L.push('');
  L.push('## Running it');
  L.push('');
  L.push('```sh');
  L.push('pnpm install && pnpm bench                      # the whole run; about the time given above');
  L.push('pnpm bench -- --size 0.1 --reps 1 --redis-keys 100000 --s3-size 0.1 --scale 2   # a quick pass');
  L.push('pnpm bench -- --only redis,s3                    # some groups (docs are not rewritten)');
  L.push('```');
  L.push('');
  L.push(
    'It needs what the tests need (PostgreSQL server and client tools, `redis-server`/`redis-cli`, `zstd`, `age`/`age-keygen`) and GNU `time` for the raw tools\' memory figures; free disk of about 4 × the database size. Groups: `pg-backup`, `pg-age`, `pg-restore`, `redis`, `s3`, `scale`. `pnpm bench -- --help` lists every option.',
  );
  L.push('');
  return L.join('\n');
}
