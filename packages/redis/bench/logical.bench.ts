/**
 * Logical-mode throughput and memory on a large keyspace (not part of the tests).
 *
 *   npx tsx --tsconfig packages/redis/bench/tsconfig.json packages/redis/bench/logical.bench.ts [--keys 1000000] [--rdb] [--json out.json]
 *     [--batch N] [--scan N] [--depth N]
 *
 * Loads N keys of mixed types (default 1,000,000) into a fresh redis-server from the testkit,
 * pipelined, then runs the backup in a child process so its peak RSS is the backup's own, and
 * prints keys/second, artifact size and peak RSS. `--rdb` also times rdb mode and
 * `redis-cli --rdb` on the same data for reference.
 */
import { execFile, fork } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import type { SourceBackupContext } from '@scholaria/backup-core';
import { makeTempDir, startRedis } from '@scholaria/backup-testkit';
import { createRedisSource, RespWriter } from '../src/index.js';
import { RespConnection } from '../src/resp-connection.js';

const run = promisify(execFile);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface ChildResult {
  ms: number;
  /** CPU time of the backup process (user + system) during the backup. */
  cpuMs: number;
  keys: number;
  bytes: number;
  maxRssBytes: number;
  metadata: Record<string, unknown>;
}

/** Child side: one backup to a file, then report. */
async function child(url: string, mode: 'logical' | 'rdb' | 'baseline', out: string, tuning: Record<string, number>): Promise<void> {
  if (mode === 'baseline') {
    // Same process with every module loaded but no backup: the floor the peak RSS is read against.
    process.send!({ ms: 0, cpuMs: 0, keys: 0, bytes: 0, maxRssBytes: process.resourceUsage().maxRSS * 1024, metadata: {} } satisfies ChildResult);
    return;
  }
  const source = createRedisSource({ url, mode, ...tuning });
  const noop = () => {};
  const ctx: SourceBackupContext = {
    setId: 'bench_20260101_000000',
    tier: 'manual',
    signal: new AbortController().signal,
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    artifact: (name) => createWriteStream(join(out, name)),
    writeArtifact: async (name, body) => {
      await pipeline(body instanceof Readable ? body : Readable.from(body), ctx.artifact(name));
    },
  };
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = await source.backup(ctx);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const file = join(out, mode === 'rdb' ? 'dump.rdb' : 'dump.resp');
  const report: ChildResult = {
    ms,
    cpuMs: (used.user + used.system) / 1000,
    keys: Number(result.metadata.keys),
    bytes: (await stat(file)).size,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    metadata: result.metadata,
  };
  process.send!(report);
}

/** Mixed types like Scholaria's: cache strings, session hashes with TTL, Celery-ish lists, sets, sorted sets. */
async function load(host: string, port: number, total: number): Promise<void> {
  const conn = await RespConnection.open({ host, port }, { connectTimeoutMs: 5000, idleTimeoutMs: 60_000, target: 'bench' });
  const writer = new RespWriter();
  const value = 'v'.repeat(64);
  const batch = 10_000;
  let inflight: Promise<unknown> | undefined;
  for (let start = 0; start < total; start += batch) {
    let commands = 0;
    for (let i = start; i < Math.min(total, start + batch); i++) {
      const kind = i % 10;
      const key = `bench:${kind}:${i}`;
      if (kind < 4) writer.command(['SET', key, `${value}${i}`]);
      else if (kind < 6) writer.command(['HSET', key, 'user', String(i), 'topic', 'rag', 'score', String(i % 97)]);
      else if (kind === 6) writer.command(['RPUSH', key, 'a', 'b', String(i)]);
      else if (kind === 7) writer.command(['SADD', key, 'x', 'y', String(i)]);
      else if (kind === 8) writer.command(['ZADD', key, '1', 'one', '2', String(i)]);
      else writer.command(['SET', key, `session-${i}`, 'PX', '86400000']);
      commands++;
      if (i % 3 === 0 && kind < 8) {
        writer.command(['PEXPIRE', key, '86400000']);
        commands++;
      }
    }
    const sent = conn.send(writer.take(), commands);
    await inflight;
    inflight = sent;
  }
  const replies = (await inflight) as unknown[];
  conn.close();
  if (replies.some((r) => r instanceof Error)) throw new Error('loading failed');
}

function runChild(url: string, mode: 'logical' | 'rdb' | 'baseline', out: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = fork(fileURLToPath(import.meta.url), ['--child', url, mode, out, JSON.stringify(tuning())], { execArgv: process.execArgv, stdio: 'inherit' });
    let result: ChildResult | undefined;
    proc.on('message', (m) => (result = m as ChildResult));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`benchmark child exited ${code}`))));
  });
}

/** `--batch`, `--scan`, `--depth` pass batchSize, scanCount and pipelineDepth to the source. */
function tuning(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [flag, option] of [['batch', 'batchSize'], ['scan', 'scanCount'], ['depth', 'pipelineDepth']] as const) {
    const v = arg(flag);
    if (v !== undefined) out[option] = Number(v);
  }
  return out;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    await child(process.argv[3]!, process.argv[4] as 'logical' | 'rdb' | 'baseline', process.argv[5]!, JSON.parse(process.argv[6] ?? '{}') as Record<string, number>);
    return;
  }
  const keys = Number(arg('keys') ?? 1_000_000);
  const withRdb = process.argv.includes('--rdb');
  const server = await startRedis({ args: ['--repl-diskless-sync', 'no'] });
  const dir = await makeTempDir('scholaria-redis-bench-');
  try {
    const t0 = performance.now();
    await load(server.host, server.port, keys);
    const loadMs = performance.now() - t0;
    const info = String(await server.command('INFO', 'memory'));
    const usedMemory = /used_memory:(\d+)/.exec(info)?.[1];
    console.log(`loaded ${keys} keys in ${(loadMs / 1000).toFixed(1)} s (redis used_memory ${mb(Number(usedMemory))})`);

    const baseline = await runChild(server.url(), 'baseline', dir.path);
    const logical = await runChild(server.url(), 'logical', dir.path);
    const rows: Record<string, unknown>[] = [
      { what: 'process baseline (modules loaded, no backup)', seconds: '-', cpuSeconds: '-', keysPerSecond: '-', artifact: '-', peakRss: mb(baseline.maxRssBytes) },
      {
        what: 'library logical backup',
        seconds: +(logical.ms / 1000).toFixed(2),
        cpuSeconds: +(logical.cpuMs / 1000).toFixed(2),
        keysPerSecond: Math.round(logical.keys / (logical.ms / 1000)),
        artifact: mb(logical.bytes),
        peakRss: mb(logical.maxRssBytes),
      },
    ];
    if (logical.keys !== keys) throw new Error(`backup saw ${logical.keys} keys, expected ${keys}`);

    if (withRdb) {
      const rdb = await runChild(server.url(), 'rdb', dir.path);
      rows.push({ what: 'library rdb backup', seconds: +(rdb.ms / 1000).toFixed(2), cpuSeconds: +(rdb.cpuMs / 1000).toFixed(2), keysPerSecond: Math.round(keys / (rdb.ms / 1000)), artifact: mb(rdb.bytes), peakRss: mb(rdb.maxRssBytes) });
      const t = performance.now();
      await run('redis-cli', ['-h', server.host, '-p', String(server.port), '--rdb', join(dir.path, 'cli.rdb')]);
      const cliMs = performance.now() - t;
      rows.push({ what: 'redis-cli --rdb', seconds: +(cliMs / 1000).toFixed(2), cpuSeconds: '-', keysPerSecond: Math.round(keys / (cliMs / 1000)), artifact: mb((await stat(join(dir.path, 'cli.rdb'))).size), peakRss: '-' });
    }
    console.table(rows);
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${mb(totalmem())} RAM, node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const json = arg('json');
    if (json) await writeFile(json, JSON.stringify({ keys, loadMs, rows, node: process.version, cpus: cpus().length }, null, 2));
  } finally {
    await server.stop();
    await dir.remove();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
