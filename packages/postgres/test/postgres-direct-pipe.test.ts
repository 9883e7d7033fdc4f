import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type Logger } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { backupErrorOf, isProcessRunning, makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createDirBackupContext } from './helpers/dir-context.js';
import { failingPgDump, pidRecordingPgDump, writeScript } from './helpers/fake-tools.js';
import { createRichFixture } from './helpers/fixture.js';

const exec = promisify(execFile);
const DB = 'scholaria';
const ZSTD_MAGIC = '28b52ffd';

function recordingLogger(lines: { message: string; fields?: Record<string, unknown> }[]): Logger {
  const push = (message: string, fields?: Record<string, unknown>) => void lines.push({ message, ...(fields ? { fields } : {}) });
  return { debug: push, info: push, warn: push, error: push } as unknown as Logger;
}

describe('postgres: pg_dump piped straight into the zstd program (real server)', () => {
  let pg: PostgresServer;
  let temp: TempDir;
  let n = 0;
  const fresh = () => join(temp.path, `run${++n}`);
  const originalPath = process.env.PATH;
  /** Puts a `zstd` of the test's own first on PATH (the codec runs the program named zstd). */
  const shadowZstd = async (body: string) => {
    const bin = join(temp.path, `bin${++n}`);
    await mkdir(bin);
    await writeScript(bin, 'zstd', body);
    process.env.PATH = `${bin}${delimiter}${originalPath}`;
  };

  beforeAll(async () => {
    [pg, temp] = await Promise.all([startPostgres({ superuserPassword: 'Pipe-Secret-pw-7' }), makeTempDir('scholaria-pg-pipe-')]);
    await createRichFixture(pg, DB);
    await pg.query(DB, `CREATE TABLE public.filler AS SELECT g, encode(gen_random_bytes(300), 'base64') AS t FROM generate_series(1, 60000) g`);
  });
  afterEach(() => {
    process.env.PATH = originalPath;
  });
  afterAll(async () => {
    process.env.PATH = originalPath;
    await Promise.all([pg?.stop(), temp?.remove()]);
  });

  it('the engine gets compressed bytes from zstd; the set restores by hand and records what the Node path records', async () => {
    const lines: { message: string; fields?: Record<string, unknown> }[] = [];
    const root = fresh();
    const engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB) })], storage: createFsStorage({ root }), logger: recordingLogger(lines) });
    const result = await engine.backup({ tier: 'daily' });
    await engine.close();
    expect(result.components.map((c) => c.error?.message ?? 'ok')).toEqual(['ok']);
    const started = lines.find((l) => l.message === 'pg_dump started');
    expect(started?.fields?.pipedInto).toBe('zstd -c -3 -T0 -vv --no-progress');

    const component = result.manifest!.components[0]!;
    const dump = component.artifacts.find((a) => a.name === `${DB}.dump`)!;
    expect(dump.path).toBe(`postgres/${DB}.dump.zst`);
    expect(dump.codecs).toEqual([{ name: 'zstd', params: { level: 3 } }]);
    expect(dump.manualRestore).toBe(`zstd -d < postgres/${DB}.dump.zst | pg_restore --dbname=${DB}`);
    const file = join(root, result.setId, dump.path);
    const { stdout: size } = await exec('sh', ['-c', `zstd -d < '${file}' | wc -c`]);
    expect(dump.rawSize).toBe(Number(size.trim()));
    const { stdout: list } = await exec('sh', ['-c', `zstd -d < '${file}' | '${pg.binDir}/pg_restore' --list`]);
    expect(list).toMatch(/TABLE DATA public filler/);
    expect(list).toMatch(/TABLE DATA rag chunks/);

    // The same database through the Node path (a context that does not take precompressed bytes).
    const viaNode = createDirBackupContext(fresh(), { acceptsPrecompressed: false });
    const nodeResult = await createPostgresSource({ url: pg.url(DB), globals: 'off' }).backup(viaNode.ctx);
    expect(viaNode.heads.get(`${DB}.dump`)!.subarray(0, 5).toString()).toBe('PGDMP');
    const viaPipe = createDirBackupContext(fresh());
    const pipeResult = await createPostgresSource({ url: pg.url(DB), globals: 'off' }).backup(viaPipe.ctx);
    expect(viaPipe.heads.get(`${DB}.dump`)!.subarray(0, 4).toString('hex')).toBe(ZSTD_MAGIC);
    expect(pipeResult.warnings).toEqual(nodeResult.warnings);
    expect(pipeResult.metadata).toEqual(nodeResult.metadata);
    const meta = (component.metadata as { databases: { tables: unknown[]; largeObjects?: number; archiveVersion?: string }[] }).databases[0]!;
    expect(meta).toEqual((nodeResult.metadata as { databases: unknown[] }).databases[0]);
    expect(meta.largeObjects).toBe(1);
    expect(meta.archiveVersion).toBeTruthy();
    expect(viaPipe.stored.get(`${DB}.dump`)!.record.rawSize).toBe(viaNode.stored.get(`${DB}.dump`)!.record.rawSize);
  });

  it('a pg_dump that fails after writing fails the artifact with its stderr, redacted, and leaves no manifest', async () => {
    const root = fresh();
    const engine = createBackupEngine({
      sources: [createPostgresSource({ url: pg.url(DB), pgDumpPath: await failingPgDump(temp.path, pg.binDir), globals: 'off' })],
      storage: createFsStorage({ root }),
    });
    const result = await engine.backup({ tier: 'daily' });
    await engine.close();
    expect(result.status).toBe('failed');
    const message = result.components[0]!.error?.message ?? '';
    expect(message).toMatch(/pg_dump of database "scholaria" exited with code 3: pg_dump: error: simulated failure \(password was \*\*\*\)/);
    expect(message).not.toContain(pg.password);
    expect(result.manifest).toBeUndefined();
    expect(await createBackupEngine({ sources: [], storage: createFsStorage({ root }) }).list()).toEqual([]);
  });

  it('a zstd that fails half-way fails the artifact with its message, and leaves no manifest', async () => {
    await shadowZstd(
      [
        // The capability check and decompression run the real program; compression fails after 64 KiB.
        'case " $* " in *" -d "*|*" -1 "*) exec /usr/bin/zstd "$@";; esac',
        'head -c 65536 > /dev/null',
        'echo "zstd: error 70 : Write error : simulated (key Pipe-Secret-pw-7)" >&2',
        'exit 70',
      ].join('\n'),
    );
    const root = fresh();
    const engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })], storage: createFsStorage({ root }) });
    const result = await engine.backup({ tier: 'daily' });
    await engine.close();
    expect(result.status).toBe('failed');
    const error = result.components[0]!.error!;
    expect(error.message).toBe('postgres: zstd compression failed: zstd exited with code 70: zstd: error 70 : Write error : simulated (key ***)');
    expect(result.manifest).toBeUndefined();
  });

  it('an abort kills pg_dump and zstd', async () => {
    const pids = join(temp.path, 'zstd.pids');
    await shadowZstd(`echo $$ >> '${pids}'\nexec /usr/bin/zstd "$@"`);
    const pgDumpPid = join(temp.path, 'pipe-pg_dump.pid');
    const controller = new AbortController();
    const backup = createDirBackupContext(fresh(), { slowMs: 30, signal: controller.signal });
    const source = createPostgresSource({ url: pg.url(DB), pgDumpPath: await pidRecordingPgDump(temp.path, pg.binDir, pgDumpPid), globals: 'off' });
    const running = backupErrorOf(source.backup(backup.ctx));
    for (let i = 0; i < 1000 && !((backup.written.get(`${DB}.dump`) ?? 0) > 0); i++) await new Promise((r) => setTimeout(r, 10));
    expect(backup.heads.get(`${DB}.dump`)!.subarray(0, 4).toString('hex')).toBe(ZSTD_MAGIC);
    controller.abort();
    const e = await running;
    expect(e.code).toBe('ABORTED');
    expect(backup.stored.has(`${DB}.dump`)).toBe(false);
    const children = [
      Number((await readFile(pgDumpPid, 'utf8')).trim()),
      ...(await readFile(pids, 'utf8')).trim().split('\n').map(Number),
    ];
    expect(children.length).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 500 && children.some(isProcessRunning); i++) await new Promise((r) => setTimeout(r, 10));
    expect(children.filter(isProcessRunning)).toEqual([]);
  });
});
