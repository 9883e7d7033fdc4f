import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { defaultConcurrency } from '@scholaria/backup-core';
import { startPostgres, startQdrantSimulator, startRedis } from '@scholaria/backup-testkit';
import { log, runChild, type Recorder, type Run } from './measure.js';
import type { BenchOptions } from './options.js';
import { createSchema, growDatabase } from './pg-data.js';
import { findPid, runPipeline, serverCpuMs, settle } from './proc.js';
import { redisLoadCommands } from './redis-data.js';
import { GB, fmtGB } from './stats.js';

export const SET_COMPONENTS = ['postgres', 'redis', 'qdrant'] as const;
const DIM = 64;

/**
 * Issue 22: a whole set (PostgreSQL + Redis + Qdrant simulator) against its components backed up
 * alone, each in its own child process with the same engine. The set runs with the default
 * concurrency (one component per core) and with concurrency 1 for reference. CPU: the child
 * (Node and pg_dump/zstd) plus the PostgreSQL backends, the Redis server and this process
 * (the Qdrant simulator runs in it).
 */
export async function runSetGroup(args: { rec: Recorder; childJs: string; work: string; o: BenchOptions; notes: string[] }): Promise<NonNullable<import('./report.js').BenchResults['data']['set']>> {
  const { rec, childJs, work, o } = args;
  const redisKeys = Math.max(1000, Math.floor(o.redisKeys / 4));
  log(`\n[set] PostgreSQL ${o.setSize} GiB + Redis ${redisKeys.toLocaleString('en-US')} keys + Qdrant simulator, whole set vs each component alone`);
  const [pg, redis, qdrant] = await Promise.all([startPostgres(), startRedis({ args: ['--repl-diskless-sync-delay', '0'] }), startQdrantSimulator()]);
  try {
    const DB = 'scholaria';
    await pg.createDatabase(DB);
    const query = (sql: string, params?: unknown[]) => pg.query(DB, sql, params);
    const pgEnv = { ...process.env, PGPASSWORD: pg.password };
    await createSchema(query);
    const shape = await growDatabase(
      query,
      async (sql, rows) =>
        runPipeline([{ cmd: join(pg.binDir, 'psql'), args: ['--no-psqlrc', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', DB, '-c', sql], env: pgEnv }], { stdin: rows }).then(() => undefined),
      o.setSize * GB,
    );
    await runPipeline([{ cmd: 'redis-cli', args: ['-h', redis.host, '-p', String(redis.port), '--pipe'] }], { stdin: redisLoadCommands(0, redisKeys) });
    const put = async (path: string, body: unknown) => {
      const res = await fetch(`${qdrant.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
    };
    await put('/collections/chunks', { vectors: { size: DIM, distance: 'Cosine' } });
    const points = shape.chunks;
    for (let i = 0; i < points; i += 2000) {
      const batch = Array.from({ length: Math.min(2000, points - i) }, (_, j) => {
        const id = i + j + 1;
        return { id, vector: Array.from({ length: DIM }, (_, d) => Math.sin(id * (d + 1))), payload: { chunk_id: id } };
      });
      await put('/collections/chunks/points?wait=true', { points: batch });
    }
    log(`  database ${fmtGB(shape.databaseBytes)} GiB, ${redisKeys.toLocaleString('en-US')} keys, ${points.toLocaleString('en-US')} points`);

    const postmaster = Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const redisPid = findPid(`redis-server 127.0.0.1:${redis.port}`);
    await query('ALTER SYSTEM SET autovacuum = off');
    await query('SELECT pg_reload_conf()');
    rec.serverCpu = async () => {
      await settle(postmaster, (cmd) => /^postgres: \S+ \S+ (\[local\]|\d+\.\d+\.\d+\.\d+\(\d+\))/.test(cmd) || /autovacuum worker/.test(cmd));
      const own = process.cpuUsage();
      return (serverCpuMs(postmaster) ?? 0) + (redisPid ? (serverCpuMs(redisPid) ?? 0) : 0) + (own.user + own.system) / 1000;
    };
    const urls = { postgres: { pgUrl: pg.url(DB) }, redis: { redisUrl: redis.url() }, qdrant: { qdrantUrl: qdrant.url } } as const;
    const all = { ...urls.postgres, ...urls.redis, ...urls.qdrant };
    const cores = typeof availableParallelism === 'function' ? availableParallelism() : 1;
    const concurrency = defaultConcurrency(SET_COMPONENTS.length);
    const backup = async (name: string, task: { pgUrl?: string; redisUrl?: string; qdrantUrl?: string; concurrency?: number }): Promise<Run> => {
      const root = join(work, 'sets', `set-${name}`);
      const r = await runChild(childJs, { kind: 'set-backup', root, ...task });
      await rm(root, { recursive: true, force: true });
      return { ms: r.ms, wallMs: r.wallMs, maxRssBytes: r.maxRssBytes, ...(r.bytes !== undefined ? { bytes: r.bytes } : {}), ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}) };
    };
    for (const c of SET_COMPONENTS) {
      rec.define({ id: `lib.set.${c}`, group: 'set', kind: 'library', label: `${c} alone (one-component engine)`, command: `createBackupEngine({ sources: [${c}] })` });
    }
    rec.define({ id: 'lib.set.all', group: 'set', kind: 'library', label: `whole set, default concurrency (${concurrency} on ${cores} cores)`, command: 'createBackupEngine({ sources: [postgres, redis, qdrant] })' });
    rec.define({ id: 'lib.set.all.c1', group: 'set', kind: 'library', label: 'whole set, concurrency 1 (one after another)', command: 'createBackupEngine({ sources: [...], concurrency: 1 })' });
    for (let i = 0; i < o.reps; i++) {
      log(` rep ${i + 1}/${o.reps}`);
      for (const c of SET_COMPONENTS) await rec.run(`lib.set.${c}`, () => backup(c, urls[c]));
      await rec.run('lib.set.all', () => backup('all', all));
      await rec.run('lib.set.all.c1', () => backup('c1', { ...all, concurrency: 1 }));
    }
    rec.serverCpu = undefined;
    return { databaseBytes: shape.databaseBytes, redisKeys, qdrantPoints: points, cores, defaultConcurrency: concurrency };
  } finally {
    await Promise.allSettled([pg.stop(), redis.stop(), qdrant.stop()]);
  }
}
