import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createRichFixture, databaseNames, grantsOf, schemaDump, tableChecksums } from './helpers/fixture.js';
import { pidRecordingPgDump } from './helpers/fake-tools.js';

const exec = promisify(execFile);

describe('postgres through the engine and the fs storage', () => {
  let a: PostgresServer;
  let b: PostgresServer;
  let temp: TempDir;
  let engine: BackupEngine;
  let schema: string;
  let data: Record<string, string>;

  beforeAll(async () => {
    [a, b, temp] = await Promise.all([startPostgres(), startPostgres(), makeTempDir('scholaria-pg-engine-')]);
    await createRichFixture(a, 'scholaria');
    schema = await schemaDump(a, 'scholaria');
    data = await tableChecksums(a, 'scholaria');
    engine = createBackupEngine({ sources: [createPostgresSource({ url: a.url('scholaria') })], storage: createFsStorage({ root: join(temp.path, 'backup') }) });
  });
  afterAll(async () => {
    await engine?.close();
    await Promise.all([a?.stop(), b?.stop(), temp?.remove()]);
  });

  it('backs up into a complete set that sha256sum -c accepts, with the manual restore in the manifest', async () => {
    const result = await engine.backup({ tier: 'daily' });
    expect(result.components.map((c) => c.error?.message ?? 'ok')).toEqual(['ok']);
    expect(result.status).toBe('complete');
    const setDir = join(temp.path, 'backup', result.setId);
    const { stdout } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: setDir });
    expect(stdout).toMatch(/postgres\/scholaria\.dump\.zst: OK/);
    const artifact = result.manifest!.components[0]!.artifacts.find((x) => x.name === 'scholaria.dump')!;
    expect(artifact.manualRestore).toBe('zstd -d < postgres/scholaria.dump.zst | pg_restore --dbname=scholaria');
    expect(JSON.stringify(result.manifest)).not.toContain(a.password);
  });

  it('restores latest into a fresh server: schema, grants and data identical', async () => {
    const target = createBackupEngine({ sources: [createPostgresSource({ url: b.url('scholaria') })], storage: createFsStorage({ root: join(temp.path, 'backup') }) });
    const res = await target.restore({ ref: 'latest' });
    expect(res.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
    expect(await schemaDump(b, 'scholaria')).toBe(schema);
    expect(await tableChecksums(b, 'scholaria')).toEqual(data);
    expect(await grantsOf(b, 'scholaria')).toEqual(await grantsOf(a, 'scholaria'));
    await target.close();
  });

  it('a pg_dump killed mid-stream records no complete set', async () => {
    const pidFile = join(temp.path, 'engine-pg_dump.pid');
    const killer = createBackupEngine({
      sources: [createPostgresSource({ url: a.url('scholaria'), pgDumpPath: await pidRecordingPgDump(temp.path, a.binDir, pidFile), globals: 'off' })],
      storage: createFsStorage({ root: join(temp.path, 'backup') }),
    });
    const before = await killer.list();
    // Hardly compressible, so zstd (which pg_dump writes into) passes bytes on while pg_dump still runs.
    await a.query('scholaria', `CREATE TABLE public.filler AS SELECT g, encode(gen_random_bytes(300), 'base64') AS t FROM generate_series(1, 150000) g`);
    let stored = 0;
    const running = killer.backup({ tier: 'daily', onProgress: (e) => void (e.artifact === 'scholaria.dump' && (stored = e.bytes)) });
    for (let i = 0; i < 1000 && stored === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(stored).toBeGreaterThan(0);
    process.kill(Number((await readFile(pidFile, 'utf8')).trim()), 'SIGKILL');
    const result = await running;
    expect(result.status).toBe('failed');
    expect(result.components[0]!.error?.message).toMatch(/pg_dump of database "scholaria" (was killed by SIGKILL|exited)/);
    expect(result.manifest).toBeUndefined();
    expect(await killer.list()).toEqual(before);
    await a.query('scholaria', 'DROP TABLE public.filler');
    await killer.close();
  });

  it('dry run through the engine plans and writes nothing', async () => {
    const names = await databaseNames(a);
    const res = await engine.restore({ ref: 'latest', dryRun: true, componentOptions: { postgres: { mode: 'in-place' } } });
    expect(res.components[0]!.status).toBe('planned');
    expect(res.components[0]!.plan.join('\n')).toMatch(/in-place: pg_restore --clean --if-exists --single-transaction/);
    expect(await databaseNames(a)).toEqual(names);
    expect((await readdir(join(temp.path, 'backup'))).length).toBeGreaterThan(0);
  });
});
