/**
 * `pnpm bench`: the library against the raw tools it drives and a Node peer, on the testkit's
 * throwaway servers. See docs/benchmarks.md (written by this script) and `pnpm bench -- --help`.
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { makeTempDir, startPostgres, startRedis, startS3, type PostgresServer, type RedisServer, type S3TestServer } from '@scholaria/backup-testkit';
import { installNodes } from './lib/node-versions.js';
import { runSetGroup } from './lib/set-group.js';
import { chartSvg, svgToPng } from './lib/chart.js';
import { log, measurePipeline, Recorder, runChild, type Run } from './lib/measure.js';
import { GROUPS, parseOptions, USAGE, type BenchOptions } from './lib/options.js';
import { createSchema, dataShape, growDatabase, type DataShape } from './lib/pg-data.js';
import { findPid, GNU_TIME, runPipeline, serverCpuMs, settle, type Step } from './lib/proc.js';
import { redisLoadCommands } from './lib/redis-data.js';
import { compare, type Comparison } from './lib/comparisons.js';
import { renderMarkdown, type BenchResults, type ScalePoint } from './lib/report.js';
import { drillSection, handWrittenTail, withDrillSection } from './lib/drill-report.js';
import { pitrBench } from './lib/pitr-bench.js';
import { GB, MB, fmtGB, fmtSeconds } from './lib/stats.js';
import type { ChildTask, S3Target } from './lib/tasks.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DB = 'scholaria';

function toolVersion(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]!;
  } catch (error) {
    return `unavailable (${(error as Error).message.split('\n')[0]})`;
  }
}

function gitCommit(): string | undefined {
  try {
    const head = readFileSync(join(repo, '.git', 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    const ref = head.slice(5);
    const file = join(repo, '.git', ref);
    if (existsSync(file)) return readFileSync(file, 'utf8').trim().slice(0, 12);
    const packed = readFileSync(join(repo, '.git', 'packed-refs'), 'utf8');
    return packed.split('\n').find((l) => l.endsWith(` ${ref}`))?.slice(0, 12);
  } catch {
    return undefined;
  }
}

/** Builds child.ts into plain ESM JavaScript beside node_modules, so children run without tsx. */
async function buildChild(): Promise<string> {
  const outDir = join(repo, 'node_modules', '.cache', 'scholaria-bench');
  await build({
    entry: { child: join(repo, 'bench', 'child.ts') },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    outExtension: () => ({ js: '.mjs' }),
    external: [/^@scholaria\//, /^@aws-sdk\//],
    silent: true,
    config: false,
    dts: false,
    sourcemap: false,
    clean: false,
    splitting: false,
  });
  return join(outDir, 'child.mjs');
}

async function removeOldSets(root: string, keep: string | undefined): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  await Promise.all(entries.filter((e) => !e.startsWith('.') && e !== keep).map((e) => rm(join(root, e), { recursive: true, force: true })));
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === 'help') {
    log(USAGE);
    return;
  }
  if (parsed.render) {
    const file = resolve(parsed.render);
    const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
    // Verdicts are recomputed, so a change to the comparisons applies to old results too.
    results.comparisons = compare(results.measurements, results.scale);
    await writeDocs(results, file);
    return;
  }
  const o: BenchOptions = parsed;
  const started = new Date();
  const t0 = performance.now();
  const loadStart = loadavg();
  log(`scholaria-backup bench: size ${o.size} GiB, reps ${o.reps} (long ones ${o.slowReps}, restores ${o.restoreReps}), groups ${[...o.only].join(', ')}`);
  if (!GNU_TIME) log('note: /usr/bin/time (GNU time) is missing: raw tools get no peak RSS figure (apt-get install time)');

  const childJs = await buildChild();
  const work = o.work ? { path: resolve(o.work), remove: async () => undefined } : await makeTempDir('scholaria-bench-');
  await mkdir(work.path, { recursive: true });
  const rec = new Recorder();
  rec.nodes = installNodes(repo, o.nodes, log);
  if (rec.nodes.length) log(`library children also run under ${rec.nodes.map((n) => `Node ${n.version}`).join(', ')}`);
  const notes: string[] = [];
  const scale: ScalePoint[] = [];
  let pgShape: DataShape | undefined;
  let pgServer: PostgresServer | undefined;
  let redisServer: RedisServer | undefined;
  let s3Server: S3TestServer | undefined;
  const data: BenchResults['data'] = {};

  const needPg = ['pg-backup', 'pg-age', 'pg-restore', 'scale'].some((g) => o.only.has(g as never));
  try {
    // ---------------------------------------------------------------- PostgreSQL
    if (needPg) {
      pgServer = await startPostgres();
      const pg = pgServer;
      await pg.createDatabase(DB);
      const query = (sql: string, params?: unknown[]) => pg.query(DB, sql, params);
      const pgEnv = { ...process.env, PGPASSWORD: pg.password };
      const conn = ['-h', pg.host, '-p', String(pg.port), '-U', pg.user];
      const bin = (tool: string) => join(pg.binDir, tool);
      const copyIn = async (sql: string, rows: Iterable<Buffer>) => {
        await runPipeline([{ cmd: bin('psql'), args: ['--no-psqlrc', '-q', '-v', 'ON_ERROR_STOP=1', ...conn, '-d', DB, '-c', sql], env: pgEnv }], { stdin: rows });
      };
      const grow = async (bytes: number) => {
        const g0 = performance.now();
        let last = 0;
        const shape = await growDatabase(query, copyIn, bytes, (p) => {
          if (p.seconds - last >= 15) {
            last = p.seconds;
            log(`  ... ${fmtGB(p.bytes)} GiB after ${p.seconds.toFixed(0)} s`);
          }
        });
        log(`  database: ${fmtGB(shape.databaseBytes)} GiB, ${shape.chunks.toLocaleString('en-US')} chunks (${fmtSeconds(performance.now() - g0)} s)`);
        return { shape, seconds: (performance.now() - g0) / 1000 };
      };
      log(`\n[postgres] generating a ${o.size} GiB Scholaria-like database (PostgreSQL ${pg.version})`);
      await createSchema(query);
      const base = await grow(o.size * GB);
      pgShape = base.shape;
      data.postgres = { ...base.shape, generateSeconds: base.seconds };

      const url = pg.url(DB);
      const raw = (name: string) => join(work.path, name);
      const rootOf = (name: string) => join(work.path, 'sets', name);
      const age = join(work.path, 'age-key.txt');
      execFileSync('age-keygen', ['-o', age], { stdio: 'ignore' });
      const recipient = /public key: (age1[0-9a-z]+)/.exec(readFileSync(age, 'utf8'))![1]!;
      const pgDump = (extra: string[]): Step => ({ cmd: bin('pg_dump'), args: [...extra, ...conn, '-d', DB], env: pgEnv });
      const zstd: Step = { cmd: 'zstd', args: ['-q', '-c', '-3', '-T0'] };
      const ageStep: Step = { cmd: 'age', args: ['-r', recipient] };
      const lastSet = new Map<string, string>();

      // The library side of a run: the child's report as a Run (CPU: Node and its tools).
      const asRun = (r: Awaited<ReturnType<typeof runChild>>): Run => ({
        ms: r.ms,
        wallMs: r.wallMs,
        maxRssBytes: r.maxRssBytes,
        ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
        ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}),
      });
      const libBackup = async (set: string, extra: Partial<Extract<ChildTask, { kind: 'pg-backup' }>>): Promise<Run> => {
        const root = rootOf(set);
        const r = await runChild(childJs, { kind: 'pg-backup', url, root, ...extra });
        lastSet.set(set, r.setId!);
        await removeOldSets(root, r.setId);
        return asRun(r);
      };
      // Backends are reaped by the postmaster, so its children's CPU is the server's share.
      const postmaster = Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      // Client backends show "postgres: USER DB HOST(PORT) ..." (autovacuum is off below).
      const pgCpu = async () => {
        await settle(postmaster, (cmd) => /^postgres: \S+ \S+ (\[local\]|\d+\.\d+\.\d+\.\d+\(\d+\))/.test(cmd) || /autovacuum worker/.test(cmd));
        return serverCpuMs(postmaster);
      };
      rec.serverCpu = pgCpu;
      // Autovacuum would add server CPU at random moments; VACUUM ANALYZE ran after loading.
      await query('ALTER SYSTEM SET autovacuum = off');
      await query('SELECT pg_reload_conf()');

      // Each rep runs every variant once, interleaved, so drift (cache, other load) spreads evenly.
      // Every run starts with no dirty pages left by the one before (sync, untimed): the raw
      // pipelines leave their file to the kernel's writeback, which would otherwise land in the
      // next run, usually the library's.
      const reps = async (n: number, variants: { id: string; slow?: boolean; run: () => Promise<Run> }[]) => {
        for (let i = 0; i < n; i++) {
          log(` rep ${i + 1}/${n}`);
          for (const v of variants) {
            if (v.slow && i >= o.slowReps) continue;
            execFileSync('sync');
            await rec.run(v.id, v.run);
          }
        }
      };

      const rawFc = raw('raw-fc.dump');
      if (o.only.has('pg-backup')) {
        log('\n[pg-backup] library backup to fs vs pg_dump');
        rec.define({ id: 'raw.pg_dump.fc', group: 'pg-backup', kind: 'raw', label: 'pg_dump -Fc (defaults)', command: 'pg_dump -Fc -f FILE' });
        rec.define({ id: 'lib.pg.default', group: 'pg-backup', kind: 'library', label: 'library, defaults (pg_dump -Z0 + zstd codec)', command: 'createPostgresSource({ url }) + createFsStorage' });
        rec.define({ id: 'raw.pg_dump.z0.zstd', group: 'pg-backup', kind: 'raw', label: 'pg_dump -Fc -Z0 | zstd -3 -T0 (what the default runs)', command: 'pg_dump -Fc -Z0 | zstd -q -c -3 -T0 > FILE' });
        rec.define({ id: 'lib.pg.pg', group: 'pg-backup', kind: 'library', label: "library, compression 'pg' (pg_dump's own zlib)", command: "createPostgresSource({ url, compression: 'pg' })" });
        rec.define({ id: 'raw.pg_dump.z0.zstd.sync', group: 'pg-backup', kind: 'raw', label: 'the same by hand, then sync FILE (on disk when it ends, as the library\'s file is)', command: 'pg_dump -Fc -Z0 | zstd -q -c -3 -T0 > FILE && sync FILE' });
        await reps(o.reps, [
          { id: 'raw.pg_dump.fc', slow: true, run: () => measurePipeline([pgDump(['-Fc', '-f', rawFc])], {}, rawFc) },
          { id: 'lib.pg.default', run: () => libBackup('default', {}) },
          { id: 'raw.pg_dump.z0.zstd', run: () => measurePipeline([pgDump(['-Fc', '-Z0']), zstd], { stdoutFile: raw('raw-z0.dump.zst') }) },
          {
            id: 'raw.pg_dump.z0.zstd.sync',
            run: async () => {
              const file = raw('raw-z0-synced.dump.zst');
              const dumped = await measurePipeline([pgDump(['-Fc', '-Z0']), zstd], { stdoutFile: file });
              const synced = await runPipeline([{ cmd: 'sync', args: [file] }]);
              return { ...dumped, ms: dumped.ms + synced.ms, ...(dumped.cpuMs !== undefined ? { cpuMs: dumped.cpuMs + (synced.cpuMs ?? 0) } : {}) };
            },
          },
          { id: 'lib.pg.pg', slow: true, run: () => libBackup('pg', { compression: 'pg' }) },
        ]);
      }

      if (o.only.has('pg-age')) {
        log('\n[pg-age] with sha256 + age encryption');
        rec.define({ id: 'raw.pg_dump.fc.age', group: 'pg-age', kind: 'raw', label: 'pg_dump -Fc | age -r KEY', command: 'pg_dump -Fc | age -r RECIPIENT > FILE' });
        rec.define({ id: 'lib.pg.pg.age', group: 'pg-age', kind: 'library', label: "library, compression 'pg' + age codec", command: "compression: 'pg', codecs: [createAgeCodec({ recipients })]" });
        rec.define({ id: 'raw.pg_dump.z0.zstd.age', group: 'pg-age', kind: 'raw', label: 'pg_dump -Fc -Z0 | zstd -3 -T0 | age -r KEY', command: 'pg_dump -Fc -Z0 | zstd -q -c -3 -T0 | age -r RECIPIENT > FILE' });
        rec.define({ id: 'lib.pg.default.age', group: 'pg-age', kind: 'library', label: 'library, defaults + age codec', command: 'codecs: [createAgeCodec({ recipients })]' });
        await reps(o.reps, [
          { id: 'raw.pg_dump.fc.age', slow: true, run: () => measurePipeline([pgDump(['-Fc']), ageStep], { stdoutFile: raw('raw-fc.dump.age') }) },
          { id: 'lib.pg.pg.age', slow: true, run: () => libBackup('pg-age', { compression: 'pg', ageRecipient: recipient }) },
          { id: 'raw.pg_dump.z0.zstd.age', run: () => measurePipeline([pgDump(['-Fc', '-Z0']), zstd, ageStep], { stdoutFile: raw('raw-z0.dump.zst.age') }) },
          { id: 'lib.pg.default.age', run: () => libBackup('default-age', { ageRecipient: recipient }) },
        ]);
        await rm(raw('raw-fc.dump.age'), { force: true });
        await rm(raw('raw-z0.dump.zst.age'), { force: true });
        await rm(rootOf('pg-age'), { recursive: true, force: true });
        await rm(rootOf('default-age'), { recursive: true, force: true });
      }

      if (o.only.has('pg-restore')) {
        log('\n[pg-restore] library restore vs pg_restore');
        // The inputs: the raw tool's archive, and library sets of the same database.
        if (!existsSync(rawFc)) await measurePipeline([pgDump(['-Fc', '-f', rawFc])], {}, rawFc);
        if (!lastSet.has('pg')) await libBackup('pg', { compression: 'pg' });
        if (!lastSet.has('default')) await libBackup('default', {});
        rec.define({
          id: 'raw.pg_restore.inplace',
          group: 'pg-restore',
          kind: 'raw',
          label: 'pg_restore --clean --if-exists --single-transaction (pg_dump -Fc archive)',
          command: 'pg_restore --clean --if-exists --single-transaction -d DB FILE',
        });
        rec.define({ id: 'lib.restore.inplace', group: 'pg-restore', kind: 'library', label: "library in-place restore of the 'pg' set (same archive bytes)", command: "engine.restore({ ref, componentOptions: { postgres: { mode: 'in-place' } } })" });
        rec.define({ id: 'lib.restore.swap', group: 'pg-restore', kind: 'library', label: 'library swap restore of the default (zstd) set', command: "mode: 'swap', keepPrevious: false" });
        await reps(o.restoreReps, [
          {
            id: 'raw.pg_restore.inplace',
            run: () => measurePipeline([{ cmd: bin('pg_restore'), args: ['--clean', '--if-exists', '--single-transaction', ...conn, '-d', DB, rawFc], env: pgEnv }], {}),
          },
          { id: 'lib.restore.inplace', run: async () => asRun(await runChild(childJs, { kind: 'pg-restore', url, root: rootOf('pg'), ref: lastSet.get('pg')!, mode: 'in-place' })) },
          { id: 'lib.restore.swap', run: async () => asRun(await runChild(childJs, { kind: 'pg-restore', url, root: rootOf('default'), ref: lastSet.get('default')!, mode: 'swap' })) },
        ]);
        const after = await dataShape(query);
        if (after.chunks !== pgShape.chunks) notes.push(`after the restores the database has ${after.chunks} chunks, expected ${pgShape.chunks}`);
      }
      await rm(raw('raw-z0.dump.zst'), { force: true });
      await rm(rootOf('pg'), { recursive: true, force: true });
      await rm(rootOf('pg-age'), { recursive: true, force: true });

      if (o.only.has('scale')) {
        log('\n[scale] peak RSS and time of the default backup against database size');
        const point = (shape: DataShape, backups: Run[]) => {
          const ms = backups.map((b) => b.ms).sort((a, b) => a - b)[Math.floor(backups.length / 2)]!;
          const rss = Math.max(...backups.map((b) => b.maxRssBytes ?? 0));
          scale.push({ databaseBytes: shape.databaseBytes, chunks: shape.chunks, backupMs: ms, maxRssBytes: rss, artifactBytes: backups[0]?.bytes ?? 0, runs: backups.length });
        };
        rec.define({ id: 'lib.pg.default.scale', group: 'scale', kind: 'library', label: 'library, defaults, on the grown database (one run per size)', command: 'createPostgresSource({ url }) + createFsStorage' });
        const baseRuns = rec.get('lib.pg.default')?.runs ?? [];
        if (baseRuns.length) point(pgShape, baseRuns);
        else {
          const r = await rec.run('lib.pg.default.scale', () => libBackup('scale', {}));
          if (r) point(pgShape, [r]);
        }
        for (const m of o.scale) {
          log(` growing to ${o.size * m} GiB`);
          rec.serverCpu = undefined;
          await query('ALTER SYSTEM SET autovacuum = on');
          await query('SELECT pg_reload_conf()');
          const grown = await grow(o.size * m * GB);
          await query('ALTER SYSTEM SET autovacuum = off');
          await query('SELECT pg_reload_conf()');
          rec.serverCpu = pgCpu;
          data.postgres[`generateSecondsTo${o.size * m}GiB`] = grown.seconds;
          const r = await rec.run('lib.pg.default.scale', () => libBackup('scale', {}));
          if (r) point(grown.shape, [r]);
          else notes.push(`the backup at ${o.size * m} GiB failed: ${rec.get('lib.pg.default.scale')!.errors.at(-1)}`);
        }
        await rm(rootOf('scale'), { recursive: true, force: true });
      }
      rec.serverCpu = undefined;
      await pg.stop();
      pgServer = undefined;
      await rm(join(work.path, 'sets'), { recursive: true, force: true });
      await rm(rawFc, { force: true });
    }

    // ---------------------------------------------------------------- PostgreSQL PITR
    if (o.only.has('pitr')) {
      log('\n[pitr] point-in-time restore: restore --to vs base + replay by hand (bench/lib/pitr-bench.ts)');
      const pitr = await pitrBench({ size: o.size, reps: o.reps, restoreReps: o.restoreReps, bin: join(repo, 'packages', 'cli', 'dist', 'bin.js'), work: work.path, notes }, rec);
      if (pitr) data.pitr = pitr;
    }

    // ---------------------------------------------------------------- verify (issue 22)
    if (o.only.has('verify')) {
      // Four artifacts of random bytes (what compressed or encrypted artifacts look like), in
      // all --size GiB, backed up once to an fs storage; then the library's full verify of the
      // set against `sha256sum -c SHA256SUMS` in its folder (both read the files from the page
      // cache, one after another), and `openssl dgst -sha256` of the same files for reference.
      log(`\n[verify] full verify of a ${o.size} GiB set vs sha256sum -c`);
      const root = join(work.path, 'sets', 'verify');
      const parts = 4;
      const files: string[] = [];
      for (let i = 0; i < parts; i++) {
        const file = join(work.path, `verify-${i}.bin`);
        await writeRandomFile(file, Math.round((o.size * GB) / parts));
        files.push(file);
      }
      const made = await runChild(childJs, { kind: 'fs-files-backup', root, files });
      await Promise.all(files.map((f) => rm(f, { force: true })));
      const setDir = join(root, made.setId!);
      const stored = readdirSync(join(setDir, 'blob')).map((f) => join(setDir, 'blob', f));
      data.verify = { bytes: made.totalBytes ?? 0, artifacts: parts };
      rec.define({ id: 'raw.sha256sum.c', group: 'verify', kind: 'raw', label: 'sha256sum -c SHA256SUMS in the set folder (GNU coreutils)', command: 'cd SET && sha256sum --quiet -c SHA256SUMS' });
      rec.define({ id: 'raw.openssl.sha256', group: 'verify', kind: 'raw', label: 'openssl dgst -sha256 of the same artifacts (OpenSSL, as Node hashes)', command: 'openssl dgst -sha256 SET/blob/*' });
      rec.define({ id: 'lib.verify', group: 'verify', kind: 'library', label: 'library full verify of the set (every artifact re-hashed, manifest and SHA256SUMS cross-checked)', command: 'engine.verify({ ref })' });
      for (let i = 0; i < o.reps; i++) {
        log(` rep ${i + 1}/${o.reps}`);
        await rec.run('raw.sha256sum.c', () => measurePipeline([{ cmd: 'sh', args: ['-c', 'cd "$1" && exec sha256sum --quiet -c SHA256SUMS', 'sh', setDir] }], {}));
        await rec.run('raw.openssl.sha256', () => measurePipeline([{ cmd: 'openssl', args: ['dgst', '-sha256', ...stored] }], {}));
        await rec.run('lib.verify', async () => {
          const r = await runChild(childJs, { kind: 'fs-verify', root, ref: made.setId! });
          return { ms: r.ms, wallMs: r.wallMs, maxRssBytes: r.maxRssBytes, ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}) };
        });
      }
      await rm(root, { recursive: true, force: true });
    }

    // ---------------------------------------------------------------- Redis
    if (o.only.has('redis')) {
      log(`\n[redis] ${o.redisKeys.toLocaleString('en-US')} keys of mixed types`);
      // No diskless-sync delay: both redis-cli --rdb and rdb mode would otherwise wait 5 s for more replicas.
      redisServer = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
      const rs = redisServer;
      const redisPid = findPid(`redis-server 127.0.0.1:${rs.port}`);
      rec.serverCpu = redisPid
        ? async () => {
            await settle(redisPid, () => true);
            return serverCpuMs(redisPid);
          }
        : undefined;
      const load = async (from: number, to: number) =>
        runPipeline([{ cmd: 'redis-cli', args: ['-h', rs.host, '-p', String(rs.port), '--pipe'] }], { stdin: redisLoadCommands(from, to) });
      const libRedis = async (mode: 'rdb' | 'logical'): Promise<Run> => {
        const root = join(work.path, 'sets', `redis-${mode}`);
        const r = await runChild(childJs, { kind: 'redis-backup', url: rs.url(), root, mode });
        await removeOldSets(root, r.setId);
        return {
          ms: r.ms,
          wallMs: r.wallMs,
          bytes: r.bytes!,
          maxRssBytes: r.maxRssBytes,
          keys: r.keys!,
          ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}),
        };
      };
      // A quarter of the keys first, backed up once, so the memory of the logical mode can be
      // compared at two sizes (flat memory), then the rest.
      const quarter = Math.floor(o.redisKeys / 4);
      const l0 = performance.now();
      await load(0, quarter);
      rec.define({ id: 'lib.redis.logical.quarter', group: 'redis', kind: 'library', label: `library, mode 'logical', on the first ${quarter.toLocaleString('en-US')} keys`, command: 'createRedisSource({ url }) + createFsStorage' });
      let l1 = performance.now();
      await rec.run('lib.redis.logical.quarter', () => libRedis('logical'));
      l1 = performance.now() - l1;
      await load(quarter, o.redisKeys);
      const dbsize = Number(await rs.command('DBSIZE'));
      const info = String(await rs.command('INFO', 'memory'));
      const loadSeconds = (performance.now() - l0 - l1) / 1000;
      data.redis = { keys: dbsize, usedMemoryBytes: Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN), loadSeconds };
      log(`  loaded ${dbsize.toLocaleString('en-US')} keys in ${loadSeconds.toFixed(1)} s`);
      if (dbsize !== o.redisKeys) notes.push(`Redis holds ${dbsize} keys after loading ${o.redisKeys}`);
      const redisCli = ['-h', rs.host, '-p', String(rs.port)];
      const rdbFile = join(work.path, 'cli.rdb');
      rec.define({ id: 'raw.redis-cli.rdb', group: 'redis', kind: 'raw', label: 'redis-cli --rdb FILE', command: 'redis-cli --rdb FILE' });
      rec.define({ id: 'lib.redis.rdb', group: 'redis', kind: 'library', label: "library, mode 'rdb'", command: "createRedisSource({ url, mode: 'rdb' }) + createFsStorage" });
      rec.define({ id: 'lib.redis.logical', group: 'redis', kind: 'library', label: "library, mode 'logical' (default)", command: 'createRedisSource({ url }) + createFsStorage' });
      rec.define({
        id: 'raw.redis.floor',
        group: 'redis',
        kind: 'raw',
        label: 'Redis server CPU floor: a minimal client pipelining SCAN (COUNT 2000) + DUMP + PEXPIRETIME of every key (CPU: the server only)',
        command: 'bench/lib/redis-floor.ts',
      });
      for (let i = 0; i < o.reps; i++) {
        log(` rep ${i + 1}/${o.reps}`);
        // Only the server's CPU counts (cpuMs 0 + the server's share): what Redis must spend.
        await rec.run('raw.redis.floor', async () => {
          const r = await runChild(childJs, { kind: 'redis-floor', url: rs.url() });
          if (r.keys !== dbsize) throw new Error(`the floor client saw ${r.keys} keys, the server holds ${dbsize}`);
          return { ms: r.ms, keys: r.keys, bytes: r.bytes!, cpuMs: 0 };
        });
        await rec.run('raw.redis-cli.rdb', async () => ({ ...(await measurePipeline([{ cmd: 'redis-cli', args: [...redisCli, '--rdb', rdbFile] }], {}, rdbFile)), keys: dbsize }));
        await rec.run('lib.redis.rdb', () => libRedis('rdb'));
        await rec.run('lib.redis.logical', () => libRedis('logical'));
      }
      rec.define({ id: 'peer.redis-dump', group: 'redis', kind: 'peer', label: 'redis-dump (npm, 0.1.10)', command: 'redis-dump -h HOST -p PORT > FILE' });
      const redisDumpCli = join(repo, 'node_modules', 'redis-dump', 'bin', 'cli.js');
      const out = join(work.path, 'redis-dump.txt');
      for (let i = 0; i < o.peerReps; i++) {
        await rec.run('peer.redis-dump', async () => {
          if (!existsSync(redisDumpCli)) throw new Error(`redis-dump is not installed (${redisDumpCli} missing): run pnpm install`);
          return { ...(await measurePipeline([{ cmd: process.execPath, args: [redisDumpCli, '-h', rs.host, '-p', String(rs.port)] }], { stdoutFile: out })), keys: dbsize };
        });
        await rm(out, { force: true });
      }
      rec.serverCpu = undefined;
      await rm(rdbFile, { force: true });
      await rm(join(work.path, 'sets'), { recursive: true, force: true });
      await rs.stop();
      redisServer = undefined;
    }

    // ---------------------------------------------------------------- S3
    if (o.only.has('s3')) {
      log(`\n[s3] upload of a ${o.s3Size} GiB artifact to s3rver`);
      s3Server = await startS3();
      const s3 = s3Server;
      const target: S3Target = { endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, ...s3.credentials };
      const file = join(work.path, 'blob.bin');
      // Random bytes: an artifact that is already compressed or encrypted.
      await writeRandomFile(file, Math.round(o.s3Size * GB));
      // The adapter's documented defaults, read from the built package, so the bare upload uses the same.
      const { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE } = (await import('@scholaria/backup-s3')) as { DEFAULT_PART_SIZE: number; DEFAULT_QUEUE_SIZE?: number };
      const part = DEFAULT_PART_SIZE;
      const queue = DEFAULT_QUEUE_SIZE ?? 4;
      data.s3 = { bytes: Math.round(o.s3Size * GB), partSizeBytes: part, queueSize: queue };
      const parts = `${part / MB} MiB parts, queue ${queue}`;
      rec.define({ id: 'raw.s3.lib-storage', group: 's3', kind: 'raw', label: `bare @aws-sdk/lib-storage Upload (${parts}: the adapter's defaults)`, command: `new Upload({ client, params: { Body: createReadStream(FILE) }, partSize: ${part / MB} MiB, queueSize: ${queue} })` });
      rec.define({ id: 'raw.s3.lib-storage.16x4', group: 's3', kind: 'raw', label: 'bare @aws-sdk/lib-storage Upload (16 MiB parts, queue 4: the adapter\'s defaults before issue 22)', command: 'new Upload({ ..., partSize: 16 MiB, queueSize: 4 })' });
      rec.define({ id: 'lib.s3', group: 's3', kind: 'library', label: 'library backup of the file to createS3Storage (sha256, manifest, SHA256SUMS)', command: 'createS3Storage({ bucket, endpoint, ... }) + a source streaming the file' });
      const wipe = async (prefix: string) => rm(join(s3.directory, s3.bucket, prefix), { recursive: true, force: true });
      // s3rver runs in this process: its CPU is this process's.
      rec.serverCpu = async () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      };
      const upload = async (task: ChildTask): Promise<Run> => {
        const r = await runChild(childJs, task);
        return { ms: r.ms, wallMs: r.wallMs, bytes: r.bytes ?? Math.round(o.s3Size * GB), maxRssBytes: r.maxRssBytes, ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}) };
      };
      for (let i = 0; i < o.reps; i++) {
        log(` rep ${i + 1}/${o.reps}`);
        await rec.run('raw.s3.lib-storage', () => upload({ kind: 's3-bare', s3: target, prefix: `bare-${i}`, file, partSize: part, queueSize: queue }));
        await wipe(`bare-${i}`);
        await rec.run('raw.s3.lib-storage.16x4', () => upload({ kind: 's3-bare', s3: target, prefix: `bare16-${i}`, file, partSize: 16 * MB, queueSize: 4 }));
        await wipe(`bare16-${i}`);
        await rec.run('lib.s3', () => upload({ kind: 's3-library', s3: target, prefix: `lib-${i}`, file }));
        await wipe(`lib-${i}`);
      }
      rec.serverCpu = undefined;
      await rm(file, { force: true });
      await s3.stop();
      s3Server = undefined;
    }

    // ---------------------------------------------------------------- whole set
    if (o.only.has('set')) data.set = await runSetGroup({ rec, childJs, work: work.path, o, notes });
  } finally {
    await pgServer?.stop().catch(() => undefined);
    await redisServer?.stop().catch(() => undefined);
    await s3Server?.stop().catch(() => undefined);
    if (!o.keep) await work.remove();
    else log(`work folder kept: ${work.path}`);
  }

  // ---------------------------------------------------------------- results
  const measurements = rec.finish();
  const comparisons: Comparison[] = compare(measurements, scale);
  const cpu = cpus();
  const results: BenchResults = {
    formatVersion: 1,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: (performance.now() - t0) / 1000,
    ...(gitCommit() ? { commit: gitCommit()! } : {}),
    options: { size: o.size, reps: o.reps, slowReps: o.slowReps, restoreReps: o.restoreReps, only: [...o.only], redisKeys: o.redisKeys, peerReps: o.peerReps, s3Size: o.s3Size, scale: o.scale, nodes: o.nodes, setSize: o.setSize },
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? 'unknown',
      memoryBytes: totalmem(),
      os: `${osName()} (kernel ${release()})`,
      loadAverageStart: loadStart.map((x) => +x.toFixed(2)),
      loadAverageEnd: loadavg().map((x) => +x.toFixed(2)),
    },
    versions: {
      node: process.version,
      library: JSON.parse(readFileSync(join(repo, 'packages', 'core', 'package.json'), 'utf8')).version as string,
      postgres: toolVersion(join(pgBinDir(), 'pg_dump'), ['--version']),
      redis: toolVersion('redis-server', ['--version']),
      redisCli: toolVersion('redis-cli', ['--version']),
      zstd: toolVersion('zstd', ['--version']),
      age: toolVersion('age', ['--version']),
      redisDump: readPkgVersion(join(repo, 'node_modules', 'redis-dump', 'package.json')),
      awsSdk: readPkgVersion(join(repo, 'node_modules', '@aws-sdk', 'lib-storage', 'package.json')),
      ...Object.fromEntries(rec.nodes.map((n) => [n.name, `v${n.version}`])),
    },
    data,
    measurements,
    comparisons,
    scale,
    notes,
  };
  const stamp = started.toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const outFile = o.out ? resolve(o.out) : join(repo, 'bench', 'results', `${stamp}.json`);
  await mkdir(dirname(outFile), { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  await writeFile(outFile, json);
  if (!o.out) await writeFile(join(repo, 'bench', 'results', 'latest.json'), json);
  log(`\nresults: ${outFile}`);

  const complete = GROUPS.every((g) => o.only.has(g));
  if (o.docs && complete) await writeDocs(results, outFile);
  else if (o.docs) log('docs/benchmarks.md not rewritten: only a full run (no --only) writes it');
  for (const c of comparisons) {
    const verdict = c.pass === undefined ? 'info' : c.pass ? 'PASS' : 'FAIL';
    log(`${verdict.padEnd(5)} ${c.label}: ${c.display}${c.target ? ` (target ${c.target})` : ''}`);
  }
  log(`\ntotal ${((performance.now() - t0) / 60000).toFixed(1)} min`);
}

/** A file of `bytes` random bytes, written in 8 MiB blocks. */
async function writeRandomFile(file: string, bytes: number): Promise<void> {
  await new Promise<void>((resolveWrite, reject) => {
    const ws = createWriteStream(file, { mode: 0o600 });
    ws.on('error', reject);
    const block = Buffer.alloc(8 * MB);
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        randomFillSync(block);
        const n = Math.min(left, block.length);
        left -= n;
        if (!ws.write(Buffer.from(block.subarray(0, n)))) return void ws.once('drain', pump);
      }
      ws.end(resolveWrite);
    };
    pump();
  });
}

/** docs/benchmarks.md and its chart, from a results file (also `--render FILE`). */
async function writeDocs(results: BenchResults, resultsFile: string): Promise<void> {
  const chartBase = join(repo, 'docs', 'benchmarks-scale');
  const scale = results.scale;
  let chart: string | undefined;
  if (scale.length) {
    const fc = results.measurements.find((m) => m.id === 'raw.pg_dump.fc')?.time;
    const pg = results.data.postgres;
    const svg = chartSvg(
      [
        {
          title: 'Backup time (library defaults)',
          xLabel: 'database size (GiB)',
          yLabel: 'seconds',
          series: [
            { label: 'library default (zstd)', color: '#1f77b4', points: scale.map((p) => ({ x: p.databaseBytes / GB, y: p.backupMs / 1000 })) },
            ...(fc && pg ? [{ label: 'pg_dump -Fc', color: '#d62728', points: [{ x: pg.databaseBytes / GB, y: fc.median / 1000 }] }] : []),
          ],
        },
        {
          title: 'Peak RSS of the backup process',
          xLabel: 'database size (GiB)',
          yLabel: 'MiB',
          series: [{ label: 'library Node process', color: '#2ca02c', points: scale.map((p) => ({ x: p.databaseBytes / GB, y: p.maxRssBytes / MB })) }],
          lines: [{ y: 150, label: 'target 150 MiB', color: '#d62728' }],
        },
      ],
      `PostgreSQL backup to fs, ${results.machine.cpus} cores, ${results.startedAt.slice(0, 10)}`,
    );
    await writeFile(`${chartBase}.svg`, svg);
    const png = await svgToPng(svg);
    if (png.png) {
      await writeFile(`${chartBase}.png`, png.png);
      chart = 'benchmarks-scale.png';
    } else {
      log(png.problem!);
      chart = 'benchmarks-scale.svg';
    }
  }
  const rel = resultsFile.startsWith(`${repo}/`) ? resultsFile.slice(repo.length + 1) : resultsFile;
  // The drill RTO section comes from `pnpm bench:drill`'s newest results; the findings written by
  // hand after it survive a full run unchanged.
  const page = join(repo, 'docs', 'benchmarks.md');
  const tail = existsSync(page) ? handWrittenTail(readFileSync(page, 'utf8')) : '';
  const generated = withDrillSection(renderMarkdown(results, { ...(chart ? { chart } : {}), resultsFile: rel }), drillSection(join(repo, 'bench', 'results')));
  await writeFile(page, tail ? `${generated}${tail}` : generated);
  log('docs: docs/benchmarks.md');
}

function osName(): string {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}

function readPkgVersion(file: string): string {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const v = (existsSync(root) ? readdirSync(root) : []).filter((x) => /^\d+$/.test(x)).sort((a, b) => Number(b) - Number(a))[0];
  return v ? join(root, v, 'bin') : '';
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
