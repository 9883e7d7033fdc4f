import { createHash } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine, type Logger, type Storage } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createS3Storage } from '@scholaria/backup-s3';
import { makeTempDir, startPostgres, startS3, type PostgresServer, type S3TestServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createRichFixture, databaseNames, tableChecksums } from './helpers/fixture.js';

const DB = 'scholaria';
const DIRECT = /pg_restore reads scholaria\.dump directly from the verified local file/;
const STREAMED = /pg_restore reads scholaria\.dump as a stream/;
const DECODED = /pg_restore reads scholaria\.dump from the verified local file through `zstd -q -d -c` \(an OS pipe/;

/** Records the arguments of every pg_restore the source starts. */
function argsLogger(): Logger & { runs: string[][] } {
  const runs: string[][] = [];
  const noop = () => undefined;
  return {
    runs,
    debug: noop,
    warn: noop,
    error: noop,
    info(message: string, fields?: Record<string, unknown>) {
      if (message === 'pg_restore started') runs.push(fields?.args as string[]);
    },
  } as Logger & { runs: string[][] };
}

describe('postgres restore: a verified local archive is read by pg_restore itself', () => {
  let pg: PostgresServer;
  let s3: S3TestServer;
  let temp: TempDir;
  let original: Record<string, string>;
  const root = (name: string) => join(temp.path, name);

  const engineOn = (storage: Storage, logger?: Logger, compression?: 'pg') =>
    createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB), ...(compression ? { compression } : {}) })], storage, ...(logger ? { logger } : {}) });

  /** Changes the live database so that a restore (or not) is visible. */
  async function drift(): Promise<Record<string, string>> {
    await pg.query(DB, `CREATE TABLE IF NOT EXISTS public.drift (n int)`);
    await pg.query(DB, `INSERT INTO public.drift VALUES (1)`);
    return await tableChecksums(pg, DB);
  }

  beforeAll(async () => {
    [pg, s3, temp] = await Promise.all([startPostgres(), startS3(), makeTempDir('scholaria-pg-direct-')]);
    await createRichFixture(pg, DB);
    original = await tableChecksums(pg, DB);
    // 'pg': pg_dump's own compression, so the stored artifact has no codec.
    for (const storage of [createFsStorage({ root: root('plain') }), createS3Storage({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true, prefix: 'plain' })]) {
      const engine = engineOn(storage, undefined, 'pg');
      expect((await engine.backup({ tier: 'daily' })).status).toBe('complete');
      await engine.close();
    }
    const zstd = engineOn(createFsStorage({ root: root('zstd') }));
    expect((await zstd.backup({ tier: 'daily' })).status).toBe('complete');
    await zstd.close();
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), s3?.stop(), temp?.remove()]);
  });

  it('in-place: pg_restore reads the un-coded file on fs directly (no pipe), rows verified', async () => {
    expect(await drift()).not.toEqual(original);
    const logger = argsLogger();
    const engine = engineOn(createFsStorage({ root: root('plain') }), logger);
    const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode: 'in-place' } } });
    expect(res.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
    expect(res.components[0]!.plan.join('\n')).toMatch(DIRECT);
    expect(res.components[0]!.plan.join('\n')).toMatch(/verify \d+ table row counts/);
    // The archive comes on stdin (the verified file's descriptor): no file argument.
    expect(logger.runs).toHaveLength(1);
    expect(logger.runs[0]!.some((a) => a.includes('.dump'))).toBe(false);
    // In-place keeps objects that are not in the backup (the drift table); all else is the backup's.
    await pg.query(DB, 'DROP TABLE public.drift');
    expect(await tableChecksums(pg, DB)).toEqual(original);
    await engine.close();
  });

  it('swap with jobs > 1: pg_restore -j opens the verified file by name (no temp copy)', async () => {
    const logger = argsLogger();
    const engine = engineOn(createFsStorage({ root: root('plain') }), logger);
    const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode: 'swap', jobs: 2, keepPrevious: false } } });
    expect(res.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
    expect(res.components[0]!.plan.join('\n')).toMatch(DIRECT);
    const file = logger.runs[0]!.find((a) => a.startsWith(root('plain')));
    expect(file).toMatch(/postgres\/scholaria\.dump$/);
    expect(logger.runs[0]).toContain('--jobs=2');
    expect(await tableChecksums(pg, DB)).toEqual(original);
    await engine.close();
  });

  it('a zstd artifact on fs is decoded by `zstd -d` from the verified file straight into pg_restore (in-place and swap)', async () => {
    for (const mode of ['in-place', 'swap'] as const) {
      await drift();
      const logger = argsLogger();
      const engine = engineOn(createFsStorage({ root: root('zstd') }), logger);
      const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode, ...(mode === 'swap' ? { keepPrevious: false } : {}) } } });
      expect([mode, ...res.components.map((c) => c.error?.message ?? c.status)]).toEqual([mode, 'ok']);
      expect(res.components[0]!.plan.join('\n')).toMatch(DECODED);
      expect(res.components[0]!.plan.join('\n')).toMatch(/verify \d+ table row counts/);
      // The archive comes on stdin (zstd's output): no file argument.
      expect(logger.runs).toHaveLength(1);
      expect(logger.runs[0]!.some((a) => a.includes('.dump'))).toBe(false);
      if (mode === 'in-place') await pg.query(DB, 'DROP TABLE public.drift');
      expect(await tableChecksums(pg, DB)).toEqual(original);
      await engine.close();
    }
  });

  it('a zstd file whose checksum matches but which does not decode is refused before the target is touched', async () => {
    await cp(root('zstd'), root('zstd-bad'), { recursive: true });
    const engine = engineOn(createFsStorage({ root: root('zstd-bad') }));
    const [set] = await engine.list();
    const artifact = set!.manifest!.components[0]!.artifacts.find((a) => a.name === 'scholaria.dump')!;
    const file = join(root('zstd-bad'), set!.id, artifact.path);
    const bytes = await readFile(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0xff;
    await writeFile(file, bytes);
    // Record the damaged bytes as if they had been stored so: only the decoder can tell.
    const sha = createHash('sha256').update(bytes).digest('hex');
    const manifestPath = join(root('zstd-bad'), set!.id, 'manifest.json');
    await writeFile(manifestPath, (await readFile(manifestPath, 'utf8')).replaceAll(artifact.sha256, sha));
    const sumsPath = join(root('zstd-bad'), set!.id, 'SHA256SUMS');
    await writeFile(sumsPath, (await readFile(sumsPath, 'utf8')).replaceAll(artifact.sha256, sha));

    const live = await drift();
    const names = await databaseNames(pg);
    const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode: 'in-place' } } });
    expect(res.status).toBe('failed');
    expect(res.verified).toContainEqual(expect.objectContaining({ path: artifact.path, ok: false, code: 'CODEC_FAILED' }));
    expect(res.verified.find((v) => v.path === artifact.path)?.error).toMatch(/zstd decompression failed/);
    expect(res.components[0]!.error?.message).toMatch(/failed verification, nothing was restored/);
    expect(await tableChecksums(pg, DB)).toEqual(live);
    expect(await databaseNames(pg)).toEqual(names);
    await pg.query(DB, 'DROP TABLE public.drift');
    await engine.close();
  });

  it('an artifact on S3 (no local file) is streamed through the checksum check as before', async () => {
    const cases: [string, Storage][] = [
      ['no codec on S3', createS3Storage({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true, prefix: 'plain' })],
    ];
    for (const [what, storage] of cases) {
      await drift();
      const engine = engineOn(storage);
      const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode: 'in-place' } } });
      expect([what, ...res.components.map((c) => c.error?.message ?? c.status)]).toEqual([what, 'ok']);
      expect(res.components[0]!.plan.join('\n')).toMatch(STREAMED);
      expect(res.components[0]!.plan.join('\n')).not.toMatch(DIRECT);
      await pg.query(DB, 'DROP TABLE public.drift');
      expect(await tableChecksums(pg, DB)).toEqual(original);
      await engine.close();
    }
  });

  it('a corrupted local archive is refused before the target is touched', async () => {
    await cp(root('plain'), root('corrupt'), { recursive: true });
    const engine = engineOn(createFsStorage({ root: root('corrupt') }));
    const [set] = await engine.list();
    const artifact = set!.manifest!.components[0]!.artifacts.find((a) => a.name === 'scholaria.dump')!;
    const file = join(root('corrupt'), set!.id, artifact.path);
    const bytes = await readFile(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0xff;
    await writeFile(file, bytes);

    const live = await drift();
    const names = await databaseNames(pg);
    const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode: 'in-place' } } });
    expect(res.status).toBe('failed');
    expect(res.verified).toContainEqual(expect.objectContaining({ path: artifact.path, ok: false, code: 'CHECKSUM_MISMATCH' }));
    expect(res.components[0]!.error?.message).toMatch(/failed verification, nothing was restored/);
    expect(await tableChecksums(pg, DB)).toEqual(live);
    expect(await databaseNames(pg)).toEqual(names);
    await pg.query(DB, 'DROP TABLE public.drift');
    await engine.close();
  });

  it('row counts are still compared on the direct path: a mismatch fails the restore', async () => {
    await cp(root('plain'), root('counts'), { recursive: true });
    const engine = engineOn(createFsStorage({ root: root('counts') }));
    const [set] = await engine.list();
    const manifestPath = join(root('counts'), set!.id, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    const table = manifest.components[0].metadata.databases[0].tables.find((t: { exact: boolean; rows: number }) => t.exact && t.rows > 0);
    table.rows += 1;
    await writeFile(manifestPath, JSON.stringify(manifest));

    const res = await engine.restore({ ref: 'latest', componentOptions: { postgres: { mode: 'in-place' } } });
    expect(res.status).toBe('failed');
    expect(res.components[0]!.error?.message).toMatch(/row counts differ from the manifest/);
    expect(res.components[0]!.error?.message).toContain(`${table.rows - 1} rows, expected ${table.rows}`);
    await engine.close();
  });

  it('dry run on the direct path plans it and writes nothing', async () => {
    const live = await drift();
    const names = await databaseNames(pg);
    const logger = argsLogger();
    const engine = engineOn(createFsStorage({ root: root('plain') }), logger);
    const res = await engine.restore({ ref: 'latest', dryRun: true, componentOptions: { postgres: { mode: 'in-place' } } });
    expect(res.components[0]!.status).toBe('planned');
    expect(res.components[0]!.plan.join('\n')).toMatch(DIRECT);
    expect(logger.runs).toEqual([]);
    expect(await tableChecksums(pg, DB)).toEqual(live);
    expect(await databaseNames(pg)).toEqual(names);
    await pg.query(DB, 'DROP TABLE public.drift');
    await engine.close();
  });
});
