/**
 * One library operation in its own process, so the peak RSS it reports is that operation's
 * alone. Built by run.ts into plain JavaScript (no tsx loader in the measured process) and
 * started with the task as JSON in SCHOLARIA_BENCH_TASK (it holds the throwaway server's
 * password, which stays out of argv); it prints one JSON line (ChildReport) on stdout.
 */
import { createReadStream } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { createBackupEngine, type BackupSource, type Codec, type Logger } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import type { ChildReport, ChildTask, S3Target } from './lib/tasks.js';

// Each task loads only the packages it uses (dynamic imports below), as an application that
// backs up PostgreSQL to a folder would, so the AWS SDK does not weigh on the pg figures.

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

async function s3Client(t: S3Target): Promise<S3Client> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  return new S3Client({
    endpoint: t.endpoint,
    region: t.region,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Streams a file as one artifact: what a source does, minus any database. */
function fileSource(path: string | string[]): BackupSource {
  const paths = Array.isArray(path) ? path : [path];
  return {
    specVersion: 'v1',
    name: 'blob',
    async backup(ctx) {
      for (const [i, p] of paths.entries()) {
        await ctx.writeArtifact(paths.length === 1 ? 'blob.bin' : `blob-${i}.bin`, createReadStream(p, { highWaterMark: 1 << 20 }), { compression: false });
      }
      return { metadata: {} };
    },
    async restore() {
      throw new Error('not used by the benchmark');
    },
    async check() {
      return { ok: true };
    },
  };
}

async function codecsFor(task: { ageRecipient?: string }): Promise<Codec[]> {
  if (!task.ageRecipient) return [];
  const { createAgeCodec } = await import('@scholaria/backup-age');
  return [createAgeCodec({ recipients: [task.ageRecipient] })];
}

async function run(task: ChildTask): Promise<Omit<ChildReport, 'maxRssBytes' | 'ms'>> {
  switch (task.kind) {
    case 'pg-backup': {
      const { createPostgresSource } = await import('@scholaria/backup-postgres');
      const engine = createBackupEngine({
        sources: [createPostgresSource({ url: task.url, ...(task.compression ? { compression: task.compression } : {}) })],
        storage: createFsStorage({ root: task.root }),
        codecs: await codecsFor(task),
        logger: silent,
      });
      const result = await engine.backup({ tier: 'manual' });
      await engine.close();
      if (result.status !== 'complete') throw result.error ?? result.components.find((c) => c.error)?.error ?? new Error(`backup ${result.status}`);
      const artifacts = result.components.flatMap((c) => c.artifacts);
      const dump = artifacts.find((a) => /\.dump/.test(a.name));
      return { setId: result.setId, bytes: dump?.size ?? result.bytes, totalBytes: result.bytes, artifacts: artifacts.map((a) => ({ path: a.path, size: a.size })) };
    }
    case 'pg-restore': {
      const { createPostgresSource } = await import('@scholaria/backup-postgres');
      const engine = createBackupEngine({
        sources: [createPostgresSource({ url: task.url })],
        storage: createFsStorage({ root: task.root }),
        codecs: await codecsFor(task),
        logger: silent,
      });
      const result = await engine.restore({
        ref: task.ref,
        componentOptions: { postgres: { mode: task.mode, ...(task.mode === 'swap' ? { keepPrevious: false } : {}) } },
      });
      await engine.close();
      if (result.status !== 'ok') throw result.components.find((c) => c.error)?.error ?? new Error(`restore ${result.status}`);
      return { setId: result.setId };
    }
    case 'redis-backup': {
      const { createRedisSource } = await import('@scholaria/backup-redis');
      const engine = createBackupEngine({
        sources: [createRedisSource({ url: task.url, mode: task.mode })],
        storage: createFsStorage({ root: task.root }),
        logger: silent,
      });
      const result = await engine.backup({ tier: 'manual' });
      await engine.close();
      if (result.status !== 'complete') throw result.error ?? result.components.find((c) => c.error)?.error ?? new Error(`backup ${result.status}`);
      const keys = Number(result.manifest?.components[0]?.metadata?.keys ?? NaN);
      return { setId: result.setId, bytes: result.components[0]?.artifacts[0]?.size ?? result.bytes, totalBytes: result.bytes, keys };
    }
    case 's3-library': {
      const { createS3Storage } = await import('@scholaria/backup-s3');
      const storage = createS3Storage({
        bucket: task.s3.bucket,
        endpoint: task.s3.endpoint,
        region: task.s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: task.s3.accessKeyId, secretAccessKey: task.s3.secretAccessKey },
        checksumMode: 'WHEN_REQUIRED',
        prefix: task.prefix,
        ...(task.partSize ? { partSizeBytes: task.partSize } : {}),
        ...(task.queueSize ? { queueSize: task.queueSize } : {}),
      });
      const engine = createBackupEngine({ sources: [fileSource(task.file)], storage, logger: silent });
      const result = await engine.backup({ tier: 'manual' });
      await engine.close();
      if (result.status !== 'complete') throw result.error ?? result.components.find((c) => c.error)?.error ?? new Error(`backup ${result.status}`);
      return { setId: result.setId, bytes: result.components[0]?.artifacts[0]?.size ?? result.bytes, totalBytes: result.bytes };
    }
    case 'redis-floor': {
      const { redisCpuFloor } = await import('./lib/redis-floor.js');
      const r = await redisCpuFloor(task.url);
      return { keys: r.keys, bytes: r.bytes };
    }
    case 'set-backup': {
      const sources: BackupSource[] = [];
      if (task.pgUrl) sources.push((await import('@scholaria/backup-postgres')).createPostgresSource({ url: task.pgUrl }));
      if (task.redisUrl) sources.push((await import('@scholaria/backup-redis')).createRedisSource({ url: task.redisUrl }));
      if (task.qdrantUrl) sources.push((await import('@scholaria/backup-qdrant')).createQdrantSource({ url: task.qdrantUrl }));
      const engine = createBackupEngine({ sources, storage: createFsStorage({ root: task.root }), logger: silent, ...(task.concurrency ? { concurrency: task.concurrency } : {}) });
      const result = await engine.backup({ tier: 'manual' });
      await engine.close();
      if (result.status !== 'complete') throw result.error ?? result.components.find((c) => c.error)?.error ?? new Error(`backup ${result.status}`);
      return { setId: result.setId, bytes: result.bytes, totalBytes: result.bytes };
    }
    case 'fs-files-backup': {
      const engine = createBackupEngine({ sources: [fileSource(task.files)], storage: createFsStorage({ root: task.root }), logger: silent });
      const result = await engine.backup({ tier: 'manual' });
      await engine.close();
      if (result.status !== 'complete') throw result.error ?? result.components.find((c) => c.error)?.error ?? new Error(`backup ${result.status}`);
      return { setId: result.setId, bytes: result.bytes, totalBytes: result.bytes };
    }
    case 'fs-verify': {
      const engine = createBackupEngine({ sources: [fileSource([])], storage: createFsStorage({ root: task.root }), logger: silent });
      const result = await engine.verify({ ref: task.ref });
      await engine.close();
      if (!result.ok) throw new Error(`verify failed: ${result.sets.flatMap((x) => x.problems).join('; ')}`);
      return { setId: result.sets[0]?.id };
    }
    case 's3-bare': {
      const { Upload } = await import('@aws-sdk/lib-storage');
      const client = await s3Client(task.s3);
      const upload = new Upload({
        client,
        params: { Bucket: task.s3.bucket, Key: `${task.prefix}/blob.bin`, Body: createReadStream(task.file, { highWaterMark: 1 << 20 }) },
        partSize: task.partSize,
        queueSize: task.queueSize,
        leavePartsOnError: false,
      });
      await upload.done();
      client.destroy();
      return {};
    }
  }
}

/** Loads the task's modules before the clock starts: the time is the operation's, not Node's module loading. */
async function preload(task: ChildTask): Promise<void> {
  const modules: Record<ChildTask['kind'], string[]> = {
    'pg-backup': ['@scholaria/backup-postgres'],
    'pg-restore': ['@scholaria/backup-postgres'],
    'redis-backup': ['@scholaria/backup-redis'],
    's3-library': ['@scholaria/backup-s3'],
    's3-bare': ['@aws-sdk/client-s3', '@aws-sdk/lib-storage'],
    'redis-floor': [],
    'set-backup': [
      ...('pgUrl' in task && task.pgUrl ? ['@scholaria/backup-postgres'] : []),
      ...('redisUrl' in task && task.redisUrl ? ['@scholaria/backup-redis'] : []),
      ...('qdrantUrl' in task && task.qdrantUrl ? ['@scholaria/backup-qdrant'] : []),
    ],
    'fs-files-backup': [],
    'fs-verify': [],
  };
  for (const m of modules[task.kind]) await import(m);
  if ('ageRecipient' in task && task.ageRecipient) await import('@scholaria/backup-age');
}

async function main(): Promise<void> {
  const task = JSON.parse(process.env.SCHOLARIA_BENCH_TASK ?? '{}') as ChildTask;
  delete process.env.SCHOLARIA_BENCH_TASK;
  await preload(task);
  const startup = process.cpuUsage();
  const started = performance.now();
  const out = await run(task);
  const ms = performance.now() - started;
  const report: ChildReport = {
    ...out,
    ms,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    startupCpuMs: (startup.user + startup.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    const e = error as Error & { code?: string; hint?: string };
    process.stderr.write(`${e?.code ? `[${e.code}] ` : ''}${e?.stack ?? String(error)}${e?.hint ? `\nhint: ${e.hint}` : ''}\n`);
    process.exit(1);
  },
);
