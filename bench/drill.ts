/**
 * `pnpm bench:drill`: the measured RTO of a restore drill (docs/drills.md) on a Scholaria-like
 * database of the given size, with Redis keys and a Qdrant collection whose points are the
 * chunk ids, on the testkit's throwaway servers. Prints a table and writes
 * bench/results/drill-<time>.json. Not part of `pnpm bench`: run it on a quiet machine.
 *
 *   pnpm bench:drill [--size GiB] [--runs N] [--keys N] [--drill-server]
 *
 * The defaults (--size 1 --runs 3 --keys 100000) give the 1 GiB figures of docs/benchmarks.md.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackupEngine, type DrillResult } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresDrillTarget, createPostgresSource } from '@scholaria/backup-postgres';
import { createRedisDrillTarget, createRedisSource } from '@scholaria/backup-redis';
import { createQdrantDrillTarget, createQdrantSource } from '@scholaria/backup-qdrant';
import { makeTempDir, startPostgres, startQdrantSimulator, startRedis } from '@scholaria/backup-testkit';
import { createSchema, growDatabase } from './lib/pg-data.js';
import { findPid, runPipeline, serverCpuMs, settle } from './lib/proc.js';
import { redisLoadCommands } from './lib/redis-data.js';
import { GB, fmtGB, fmtSeconds, summarize } from './lib/stats.js';
import { log } from './lib/measure.js';
import { drillSection, withDrillSection } from './lib/drill-report.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DB = 'scholaria';

const USAGE = `usage: pnpm bench:drill [--size GiB] [--runs N] [--keys N] [--drill-server]
  --size GiB       size of the Scholaria-like database (default 1: the figures of docs/benchmarks.md)
  --runs N         drills measured (default 3)
  --keys N         Redis keys (default 100000)
  --drill-server   drill PostgreSQL on a second server (BACKUP_DRILL_POSTGRES_URL) instead of beside the live database`;

const VALUED = new Set(['--size', '--runs', '--keys']);
const FLAGS = new Set(['--drill-server', '--help']);

function checkArgs(argv: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (VALUED.has(a)) i++;
    else if (!FLAGS.has(a)) throw new Error(`unknown argument "${a}"\n${USAGE}`);
  }
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(v > 0)) throw new Error(`--${name} needs a positive number\n${USAGE}`);
  return v;
}

/** CPU (user + system, ms) of a PostgreSQL server so far: the postmaster and its reaped backends. */
async function postgresCpu(dataDir: string): Promise<number | undefined> {
  try {
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    await settle(postmaster, (cmd) => /^postgres: \S+ \S+ (\[local\]|\d+\.\d+\.\d+\.\d+\(\d+\))/.test(cmd));
    return serverCpuMs(postmaster);
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    console.log(USAGE);
    return;
  }
  checkArgs(argv);
  const size = arg('size', 1);
  const runs = Math.round(arg('runs', 3));
  const keys = Math.round(arg('keys', 100_000));
  const onDrillServer = argv.includes('--drill-server');
  const work = await makeTempDir('scholaria-bench-drill-');
  const [pg, redis, qdrant, drillPg] = await Promise.all([startPostgres(), startRedis(), startQdrantSimulator(), onDrillServer ? startPostgres() : undefined]);
  try {
    await pg.createDatabase(DB);
    const query = (sql: string, params?: unknown[]) => pg.query(DB, sql, params);
    const pgEnv = { ...process.env, PGPASSWORD: pg.password };
    const copyIn = async (sql: string, rows: Iterable<Buffer>) => {
      await runPipeline(
        [{ cmd: join(pg.binDir, 'psql'), args: ['--no-psqlrc', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', DB, '-c', sql], env: pgEnv }],
        { stdin: rows },
      );
    };
    log(`[drill] generating a ${size} GiB database, ${keys} Redis keys and one Qdrant point per chunk`);
    await createSchema(query);
    const shape = await growDatabase(query, copyIn, size * GB);
    log(`  database: ${fmtGB(shape.databaseBytes)} GiB, ${shape.chunks} chunks`);
    await runPipeline([{ cmd: 'redis-cli', args: ['-h', redis.host, '-p', String(redis.port), ...(redis.password ? ['-a', redis.password, '--no-auth-warning'] : []), '--pipe'] }], {
      stdin: redisLoadCommands(0, keys),
    });
    const put = async (method: string, path: string, body: unknown) => {
      const res = await fetch(`${qdrant.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    };
    await put('PUT', '/collections/chunks', { vectors: { size: 4, distance: 'Cosine' } });
    const ids = (await query('SELECT id::text AS id FROM chunks ORDER BY id')).map((r) => Number(r.id));
    for (let i = 0; i < ids.length; i += 5000) {
      await put('PUT', '/collections/chunks/points?wait=true', { points: ids.slice(i, i + 5000).map((id) => ({ id, vector: [1, id % 7, id % 13, 1], payload: { chunk_id: id } })) });
    }
    const engine = createBackupEngine({
      sources: [createPostgresSource({ url: pg.url(DB) }), createRedisSource({ url: redis.url() }), createQdrantSource({ url: qdrant.url })],
      storage: createFsStorage({ root: join(work.path, 'backup') }),
    });
    const backup = await engine.backup({ tier: 'weekly' });
    if (backup.status !== 'complete') throw new Error(`backup ${backup.status}: ${backup.error?.message}`);
    const targets = [createPostgresDrillTarget({ url: pg.url(DB) }, drillPg ? { url: drillPg.url('postgres') } : {}), createRedisDrillTarget({ url: redis.url() }, { databases: [15] }), createQdrantDrillTarget({ url: qdrant.url })];
    const joins = [{ left: { component: 'postgres', table: 'chunks', column: 'id' }, right: { component: 'qdrant', collection: 'chunks' } }];
    // CPU of everything a drill uses: this process (the engine, the Qdrant simulator) with its
    // reaped children (pg_restore), the PostgreSQL server(s) and Redis. Less skewed by other load
    // on the machine than wall time.
    const redisPid = findPid(`redis-server 127.0.0.1:${redis.port}`);
    const cpuNow = async (): Promise<number | undefined> => {
      const parts = [serverCpuMs(process.pid), await postgresCpu(pg.dataDir), ...(drillPg ? [await postgresCpu(drillPg.dataDir)] : []), redisPid ? serverCpuMs(redisPid) : undefined];
      return parts.every((p): p is number => p !== undefined) ? parts.reduce((a, b) => a + b, 0) : undefined;
    };
    const results: (DrillResult & { wallMs: number; cpuMs?: number; load1: number })[] = [];
    for (let i = 0; i < runs; i++) {
      const c0 = await cpuNow();
      const t0 = performance.now();
      const r = await engine.drill({ targets, joins });
      const wallMs = performance.now() - t0;
      const c1 = await cpuNow();
      const cpuMs = c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined;
      if (r.status !== 'passed') throw new Error(`drill ${r.drillId} failed: ${r.error?.message}`);
      const load1 = loadavg()[0]!;
      log(`  run ${i + 1}: RTO ${fmtSeconds(r.rto.totalMs)} s (${Object.entries(r.rto.components).map(([c, ms]) => `${c} ${fmtSeconds(ms)} s`).join(', ')}), whole drill ${fmtSeconds(wallMs)} s${cpuMs !== undefined ? `, CPU ${fmtSeconds(cpuMs)} s` : ''} (load ${load1.toFixed(1)})`);
      results.push({ ...r, wallMs, ...(cpuMs !== undefined ? { cpuMs } : {}), load1 });
    }
    await engine.close();
    const row = (label: string, values: number[]) => {
      const s = summarize(values)!;
      return `| ${label} | ${fmtSeconds(s.median)} (${fmtSeconds(s.min)}–${fmtSeconds(s.max)}) |`;
    };
    const components = Object.keys(results[0]!.rto.components);
    const table = [
      `Restore drill, ${fmtGB(shape.databaseBytes)} GiB database (${shape.chunks} chunks${drillPg ? ', restored on a separate drill server' : ''}), ${keys} Redis keys, ${ids.length} Qdrant points (simulator), ${runs} runs, median (range), seconds:`,
      '',
      '| what | s |',
      '| --- | --- |',
      row('RTO, whole set (checksums + every component)', results.map((r) => r.rto.totalMs)),
      ...components.map((c) => row(`RTO, ${c}`, results.map((r) => r.rto.components[c]!))),
      row('whole drill (sweep, restore, checks, cleanup)', results.map((r) => r.wallMs)),
      ...(results.every((r) => r.cpuMs !== undefined) ? [row('CPU of the whole drill (every process: engine, pg_restore, servers)', results.map((r) => r.cpuMs!))] : []),
    ].join('\n');
    log(`\n${table}\n`);
    await mkdir(join(repo, 'bench', 'results'), { recursive: true });
    const file = join(repo, 'bench', 'results', `drill-${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
    await writeFile(
      file,
      `${JSON.stringify(
        {
          kind: 'drill-rto',
          time: new Date().toISOString(),
          machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryBytes: totalmem(), loadavg: loadavg() },
          data: { databaseBytes: shape.databaseBytes, chunks: shape.chunks, redisKeys: keys, qdrantPoints: ids.length, postgres: pg.version, drillServer: onDrillServer },
          runs: results.map((r) => ({ rto: r.rto, wallMs: r.wallMs, cpuMs: r.cpuMs, load1: r.load1, checks: r.checks.map((c) => ({ component: c.component, name: c.name, status: c.status, figures: c.figures })) })),
          markdown: table,
        },
        null,
        2,
      )}\n`,
    );
    log(`wrote ${file}`);
    const page = join(repo, 'docs', 'benchmarks.md');
    await writeFile(page, withDrillSection(await readFile(page, 'utf8'), drillSection(join(repo, 'bench', 'results'))));
    log('docs: the "Restore drill RTO" section of docs/benchmarks.md');
  } finally {
    await Promise.allSettled([pg.stop(), redis.stop(), qdrant.stop(), drillPg?.stop()]);
    await work.remove();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
