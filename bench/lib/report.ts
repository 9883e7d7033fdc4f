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
    set?: { databaseBytes: number; redisKeys: number; qdrantPoints: number; cores: number; defaultConcurrency: number };
    pitr?: import('./pitr-bench.js').PitrBenchData;
    verify?: { bytes: number; artifacts: number };
  };
  measurements: Measurement[];
  comparisons: Comparison[];
  scale: ScalePoint[];
  notes: string[];
}

const s = (ms: number) => (ms / 1000).toFixed(ms >= 100_000 ? 0 : 1);
const mb = (b: number) => (b / MB).toFixed(b >= 100 * MB ? 0 : 1);
const gib = (b: number) => (b / GB).toFixed(2);

const med = (r: BenchResults, id: string, what: 'time' | 'cpu' | 'size' | 'rss') => r.measurements.find((m) => m.id === id)?.[what]?.median;
const sec = (ms: number | undefined) => (ms === undefined ? '?' : (ms / 1000).toFixed(1));

/**
 * Why a comparison comes out as it does, found by profiling (`SCHOLARIA_BENCH_NODE_ARGS=--cpu-prof`
 * and the CPU figures of each run). Kept beside the code that measures so a rerun shows the
 * reasoning next to its own figures; each returns nothing when it does not apply.
 */
export const FINDINGS: Record<string, (c: Comparison, r: BenchResults) => string | undefined> = {
  'pg-default-speedup': (c, r) => {
    if (c.pass) return undefined;
    const pipe = med(r, 'raw.pg_dump.z0.zstd', 'time');
    const fc = med(r, 'raw.pg_dump.fc', 'time');
    return `the same two tools joined by an OS pipe (\`pg_dump -Fc -Z0 | zstd -3 -T0\`) took ${sec(pipe)} s, ${pipe && fc ? (fc / pipe).toFixed(1) : '?'}x faster than \`pg_dump -Fc\`, so the target is reachable; what the library adds on top of that pipe is explained in the next finding.`;
  },
  'pg-default-vs-pipe': (c, r) => {
    if (c.value === undefined || c.value <= 1.1) return undefined;
    return [
      `the library used ${sec(med(r, 'lib.pg.default', 'cpu'))} CPU-s against ${sec(med(r, 'raw.pg_dump.z0.zstd', 'cpu'))} for the pipe; on 2 cores the backend (COPY out, float formatting), pg_dump, zstd's threads and Node all compete, so each CPU-second Node adds shows as wall time.`,
      'The uncompressed dump no longer passes through Node: the source starts the zstd program with pg_dump\'s output as its input (an OS pipe between the two, as in the shell) and Node reads only zstd\'s output (0.4 of the dump) for the sha256 and the file; before that change Node read the whole 1.8 GB dump and wrote it into zstd (6-10 CPU-s at 1 GiB; in paired runs at 0.5 GiB its CPU went from about 3 to 1.5 s). What is left on top of the pipe: those reads and writes of the compressed stream, the row counts (`count(*)` in the dump\'s snapshot, ~1.5 CPU-s on the server, run concurrently with the dump once its table of contents is read), a `zstd -d | pg_restore --list` of the dump\'s head for those counts, and the fs storage\'s fsync, SHA256SUMS, manifest and audit log (~0.1 s), where the shell pipe leaves the file in the page cache. The fs storage now starts writing the file back every 32 MiB while the dump runs (an fdatasync on the thread pool, not awaited), so the final fsync has only the last few MiB left instead of the whole artifact (~1 s per 600 MB on this disk).',
    ].join(' ');
  },
  'pg-pg-time': (c, r) =>
    c.pass
      ? undefined
      : `pg_dump's zlib keeps one core busy for the whole run; the library's extra work (reading ${((med(r, 'lib.pg.pg', 'size') ?? 0) / 2 ** 20).toFixed(0)} MB through Node for the sha256 and the file, fsync, row counts on the server) runs on the other core, where the backend is already busy, so it shows. CPU ratio ${c.cpuRatio?.toFixed(2) ?? '?'}. With one run per side the ratio is also within the run-to-run noise of this machine (see the load averages); rerun with \`--slow-reps 3\` to separate the two.`,
  'pg-age-time': (c) =>
    c.pass
      ? undefined
      : 'as for compression \'pg\' above, plus age encryption in JavaScript (age-encryption, ChaCha20-Poly1305) on the Node process instead of the Go `age` binary.',
  'pg-default-age-vs-pipe': (c) =>
    c.value !== undefined && c.value > 1.05
      ? 'pg_dump writes into the zstd program directly as in item 1, and where the `age` program is installed the age codec runs it (`implementation: \'auto\'`; Go with assembly ChaCha20, as in the shell pipe) instead of encrypting in JavaScript. The compressed stream still passes through Node once more than in the shell: Node reads zstd\'s output (the head also feeds `pg_restore --list` for the row counts), writes it into age and reads age\'s output for the sha256 and the file. Joining zstd and age by an OS pipe would save that copy but leave the table-of-contents reader without its input, so it is not done.'
      : undefined,
  'pg-restore-inplace': (c, r) =>
    c.pass
      ? undefined
      : `the restore is the same \`pg_restore --clean --if-exists --single-transaction\` of the same archive, and pg_restore now reads the verified file itself (fs storage, no codec: the engine hashes it with direct 2 MiB reads, then hands pg_restore a descriptor of the same inode as stdin), so no byte passes through Node during the restore. What the library still adds: the sha256 pass over the whole archive before anything changes (verify before overwrite, invariant 3; ~0.5 CPU-s per GB in Node), \`pg_restore --list\` and the catalog checks (~0.3 s), and after the restore the exact row counts (\`count(*)\` of every table, a full scan of the chunks table that also sets hint bits, on the server). CPU ${sec(med(r, 'lib.restore.inplace', 'cpu'))} s against ${sec(med(r, 'raw.pg_restore.inplace', 'cpu'))} s. The row comparison can be switched off per restore (\`verifyRowCounts: false\`) where the time matters more.`,
  'pg-restore-swap': () =>
    'swap restores into a new database, checks row counts, then renames, and drops the replaced database (keepPrevious: false here). On an fs storage its zstd artifact is no longer read through Node: before anything changes the engine hashes the file with direct reads while `zstd -t` reads it by itself (both at once), and the restore then runs `zstd -d -c` on the verified file with its output joined to pg_restore\'s stdin by an OS pipe (the file is checked to be the same version, inode and times, as with the un-coded archive). Before, Node read the file twice and carried the whole decoded archive from zstd into pg_restore. What remains on top of pg_restore: the two reads of the compressed file, the decompression (which pg_restore of a `-Fc` archive does in-process), the row counts and the rename.',
  'verify-vs-sha256sum': (c, r) => {
    const openssl = med(r, 'raw.openssl.sha256', 'time');
    return `both read every artifact once, one after another, from the page cache. Node hashes with OpenSSL, which uses the CPU's SHA extensions (SHA-NI) where there are some; GNU coreutils ${'9.1'} \`sha256sum\` is plain C without them, so on this machine the library is faster than the tool the target names, and the fairer floor is \`openssl dgst -sha256\` of the same files (${sec(openssl)} s, next row). The library reads a file-backed storage with direct 2 MiB positional reads, two in flight, so the next read runs while the current block is hashed (\`verifyLocalFile\`), and cross-checks manifest.json and SHA256SUMS; artifacts are verified one at a time (in parallel they would compete for the same cores as the hashing itself).`;
  },
  'redis-logical-vs-redis-dump': (c, r) => {
    if (c.pass) return undefined;
    const lib = r.measurements.find((m) => m.id === 'lib.redis.logical');
    const server = lib?.runs.map((x) => x.serverCpuMs).filter((x): x is number => x !== undefined);
    const serverMs = server?.length ? server.sort((a, b) => a - b)[Math.floor(server.length / 2)] : undefined;
    return [
      `the logical mode took ${sec(med(r, 'lib.redis.logical', 'time'))} s for the keys; \`redis-cli --rdb\` of the same data took ${sec(med(r, 'raw.redis-cli.rdb', 'time'))} s, so 10x redis-dump here means being about as fast as the server's own snapshot.`,
      serverMs !== undefined
        ? `Redis alone spent ${sec(serverMs)} CPU-s answering SCAN, DUMP and PEXPIRETIME on its one thread, so the run cannot be shorter than that${serverMs / 1000 > (med(r, 'raw.redis-cli.rdb', 'time') ?? Infinity) / 1000 ? ': more than the whole `redis-cli --rdb` run' : ''}. Measured per command on 1M keys (Redis CPU, paired runs on the loaded bench machine): SCAN alone ~1.3 s, DUMP ~3.9 s more, PEXPIRETIME ~1.3 s more; a perf profile of Redis shows lzf_compress 21 % (DUMP compresses values as the snapshot does, \`rdbcompression\`), dictFind 15 % and dictScan 11 %, request parsing negligible. One EVALSHA per batch doing DUMP + PEXPIRETIME in Lua (keys passed, or SCAN inside the script) made Redis spend more, not less (6.7-9.8 and 7.6-8.7 CPU-s against 5.4-6.9 for the pipeline), so the logical mode keeps the plain pipeline. The target is out of reach for a DUMP-based backup on this server; mode \`rdb\`/\`auto\` is the fast path where SYNC is allowed.`
        : '',
      'The Node side now encodes requests and RESTORE commands byte by byte from precomputed command heads into reused chunks (`packages/redis/src/resp-writer.ts`): the Node process went from 5.6-6.2 to 2.9-3.6 CPU-s in three paired runs at 1M keys, below Redis. What remains there is the socket writes of the requests (each key is sent twice, ~96 bytes per key), redis-parser and its garbage (~0.4 s each in a profile), the sha256 and the file writes. redis-dump itself holds every value in memory (peak RSS above) and took far longer; the memory side of the target holds.',
    ]
      .filter(Boolean)
      .join(' ');
  },
  'redis-rdb': (c) =>
    c.pass
      ? undefined
      : 'both stream the same replication snapshot and fsync. The library checks the snapshot\'s CRC-64 in a WebAssembly kernel (`packages/redis/src/crc64-wasm.ts`, ~1.8 GB/s of CPU time, ~0.1 CPU-s per 185 MB; the JavaScript one it replaced ran at ~0.37 GB/s) and passes the payload to the engine in 1 MiB blocks (~185 storage writes instead of one per socket read), which cut the Node process from ~2.9 to ~2.0 CPU-s in paired runs. What remains on the Node side is mostly reading the socket: the master sends the snapshot in small pieces (~11,000 reads averaging 17 KB, many under 1 KB), and a bare Node reader alone spends ~0.9 CPU-s on them; reading into one reused buffer (`net.connect({ onread })`, plain TCP only, a change in `raw-socket.ts`) measured 0.63 CPU-s. Then the sha256 (~0.15 CPU-s), the file writes, and the engine\'s manifest, SHA256SUMS, lock and audit log (~0.1 s). Where the wall time goes (timestamps of three library runs against redis-cli runs of 3.4-3.6 s on the same data): the snapshot starts streaming 30-100 ms into the run (lock, INFO, replication handshake), its first MiB arrives about 110 ms later as for redis-cli, and the transfer then takes about 3.85 s; Redis\'s main thread hands a diskless snapshot to a replica in 16 KB pieces as fast as the replica drains its socket, so the per-read cost of the Node process, on 2 cores shared with the Redis fork and main thread, sets the pace. It is not the final fsync: writing the file back every 32 MiB during the transfer (so the fsync at the end is short) left the ratio at 1.19 in a redis-only run, and that change was not kept.',
  'redis-logical-rss-flat': (c, r) => {
    if (c.pass) return undefined;
    const runs = r.measurements.find((m) => m.id === 'lib.redis.logical')?.rss;
    return `within the run-to-run spread of this figure, not growth with the data: the runs on all keys ranged ${runs ? `${(runs.min / 2 ** 20).toFixed(0)}-${(runs.max / 2 ** 20).toFixed(0)}` : '?'} MB against one run on a quarter of them. A Node process's peak RSS is mostly its module code plus garbage awaiting collection; memory is bounded by the batch settings (\`batchSize\` 500 keys, \`pipelineDepth\` 4, \`maxBatchBytes\` 64 MB), not by the key count, and redis-dump grew to ${((med(r, 'peer.redis-dump', 'rss') ?? 0) / 2 ** 20).toFixed(0)} MB on the same data.`;
  },
  's3-upload': (c) =>
    c.value !== undefined && c.value > 1.05
      ? 'the library adds the sha256 of the stream, the manifest, SHA256SUMS, lock and audit objects (small PUTs) around an upload the size of the bare one.'
      : undefined,
  'rss-all-library': (c) =>
    c.value !== undefined && c.value >= 150
      ? 'the S3 runs: the adapter keeps queueSize + 1 part buffers (5 x 8 MiB by default) on top of a Node process with the AWS SDK loaded and the input\'s chunks awaiting collection; lower `partSizeBytes`/`queueSize` to trade speed for memory.'
      : undefined,
};

/** A table cell: pipes would end the cell, even inside code spans. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

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
    `Run of ${r.startedAt.replace('T', ' ').slice(0, 16)} UTC${r.commit ? ` at commit \`${r.commit}\`` : ''}: ${r.options.reps} repetitions per measurement (${r.options.slowReps} for the long ones: the four backups bound by pg_dump's own zlib, about 100 s each; ${r.options.restoreReps ?? r.options.slowReps} for the restores), ${r.options.size} GiB base database, whole run ${minutes} min.`,
  );
  L.push('');
  L.push('## Results against the targets (issue 11)');
  L.push('');
  L.push(
    'Ratios are of medians. "times faster" = raw time / library time; "ratio" = library / raw. The CPU column is library CPU / raw CPU for the same comparison: every process involved, servers included (PostgreSQL backends, the Redis fork, s3rver), so it is what the library costs on a machine with no idle core, and it is less skewed by other load than wall time.',
  );
  L.push('');
  L.push('| # | comparison | result | target | verdict | basis (medians) | CPU ratio (CPU s) |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const c of r.comparisons) {
    const cpu = c.cpuRatio !== undefined ? `${c.cpuRatio.toFixed(2)} (${c.cpuBasis})` : '';
    L.push(`| ${c.item} | ${cell(c.label)} | ${c.display} | ${c.target ?? '—'} | ${verdict(c)} | ${c.basis ?? ''} | ${cpu} |`);
  }
  L.push('');
  const findings = r.comparisons.map((c) => ({ c, text: c.measured ? FINDINGS[c.id]?.(c, r) : undefined })).filter((f) => f.text);
  if (findings.length) {
    L.push('### Findings');
    L.push('');
    for (const { c, text } of findings) L.push(`- **${c.label}** (${c.display}${c.target ? `, target ${c.target}` : ''}): ${text}`);
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
  L.push('| group | what | runs | time s | CPU s | artifact MB | peak RSS MB | keys/s |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  // The scale runs differ in size on purpose: they have their own table below.
  for (const m of r.measurements.filter((x) => x.group !== 'scale')) {
    const range = (x: { median: number; min: number; max: number } | undefined, f: (n: number) => string) =>
      x ? (f(x.min) === f(x.max) ? f(x.median) : `${f(x.median)} (${f(x.min)}–${f(x.max)})`) : '—';
    const what = `${cell(m.label)}<br>\`${cell(m.command)}\``;
    const err = m.errors.length ? ` **${m.errors.length} failed**: ${cell(m.errors[0]!.split('\n')[0]!.slice(0, 300))}` : '';
    L.push(
      `| ${m.group} | ${what}${err} | ${m.runs.length} | ${range(m.time, s)} | ${range(m.cpu, s)} | ${range(m.size, mb)} | ${range(m.rss, mb)} | ${m.keysPerSecond ? range(m.keysPerSecond, (n) => Math.round(n).toLocaleString('en-US')) : '—'} |`,
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
  if (r.data.set) {
    L.push(`- Whole set: ${gib(r.data.set.databaseBytes)} GiB PostgreSQL database, ${r.data.set.redisKeys.toLocaleString('en-US')} Redis keys, ${r.data.set.qdrantPoints.toLocaleString('en-US')} Qdrant points (64-dim, simulator); default concurrency ${r.data.set.defaultConcurrency} on ${r.data.set.cores} cores.`);
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
      "- Redis CPU floor (issue 22): a minimal client (`bench/lib/redis-floor.ts`) pipelines SCAN (COUNT 2000) with DUMP + PEXPIRETIME of every key, as the logical mode does, and discards the replies; its row counts the Redis server's CPU only (`/proc/<pid>/stat`). The logical mode's CPU (Node + Redis) is compared with it.",
      '- Whole set (issue 22): PostgreSQL, Redis and a Qdrant simulator collection backed up by one engine (default concurrency, and concurrency 1) and each component alone by a one-component engine, in fresh processes; CPU is the child (with pg_dump and zstd), the PostgreSQL backends, the Redis server and the orchestrator (where the Qdrant simulator runs).',
      '- Node versions (`--node 22,24`, issue 22): every library run is repeated right after under each pinned Node, installed from the npm registry (`node` package) into `node_modules/.cache/scholaria-node/<major>`; rows `<id>@node22` etc. Node >= 22.15 has zstd in zlib, which the zstd codec\'s `auto` uses instead of the `zstd` program.',
      '- Verify: four artifacts of random bytes, `--size` GiB in all, backed up once to an fs storage; then `engine.verify()` of that set against `sha256sum -c SHA256SUMS` run in the set folder and `openssl dgst -sha256` of the same files, all reading from the page cache.',
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
    'It needs what the tests need (PostgreSQL server and client tools, `redis-server`/`redis-cli`, `zstd`, `age`/`age-keygen`) and GNU `time` for the raw tools\' memory figures; free disk of about 4 × the database size. Groups: `pg-backup`, `pg-age`, `pg-restore`, `redis`, `s3`, `set`, `scale`, `pitr` (point-in-time restore and wal-push per segment), `verify`. `pnpm bench -- --help` lists every option.',
  );
  L.push('');
  return L.join('\n');
}
