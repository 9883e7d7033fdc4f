import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type ProgressEvent } from '@scholaria/backup-core';
import { createAgeCodec } from '@scholaria/backup-age';
import { createFsStorage } from '@scholaria/backup-fs';
import { backupErrorOf, isProcessRunning, makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createDirBackupContext } from './helpers/dir-context.js';
import { failingPgDump, pidRecordingPgDump, shadowProgram } from './helpers/fake-tools.js';
import { createRichFixture } from './helpers/fixture.js';
import { recordingLogger, type LoggedLine } from './helpers/recording-logger.js';

const exec = promisify(execFile);
const DB = 'scholaria';
const ZSTD_MAGIC = '28b52ffd';

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Every file under `dir`, relative, including temp files the storage's `list` hides. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, rel: string) => {
    let entries;
    try {
      entries = await readdir(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) await walk(join(at, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  await walk(dir, '');
  return out.sort();
}

describe('postgres: pg_dump piped straight into the zstd program (real server)', () => {
  let pg: PostgresServer;
  let temp: TempDir;
  let n = 0;
  const fresh = () => join(temp.path, `run${++n}`);
  const originalPath = process.env.PATH;
  /** Puts a `zstd` of the test's own first on PATH (the codec runs the program named zstd). */
  const shadowZstd = (body: string) => shadowProgram(join(temp.path, `bin${++n}`), 'zstd', body, originalPath);

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
    const lines: LoggedLine[] = [];
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

  it('a zstd that fails half-way fails the artifact with its message, and leaves no manifest, no file and no temp file', async () => {
    await shadowZstd(
      [
        // The capability check and decompression run the real program; compression writes the
        // first MiB of the dump for real (into the file, on this one fs storage), then fails.
        'case " $* " in *" -d "*|*" -1 "*) exec /usr/bin/zstd "$@";; esac',
        'head -c 1048576 | /usr/bin/zstd -c -3',
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
    expect((await filesUnder(root)).filter((f) => !f.startsWith('.scholaria-backup/'))).toEqual([]);
  });

  it('a disk that fills while zstd writes the file fails the backup as the storage\'s fault, saying so, and leaves no file', async () => {
    // The real zstd, writing into a device that is always full where it would write the
    // backup file (its stdout is a regular file only then): the kernel's own ENOSPC.
    await shadowZstd(`if [ -f /dev/stdout ]; then exec /usr/bin/zstd "$@" > /dev/full; fi\nexec /usr/bin/zstd "$@"`);
    const root = fresh();
    const engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })], storage: createFsStorage({ root }) });
    const result = await engine.backup({ tier: 'daily' });
    await engine.close();
    expect(result.status).toBe('failed');
    const error = result.components[0]!.error as { code?: string; message: string; hint?: string };
    expect(error.code).toBe('STORAGE_FAILED');
    expect(error.message).toMatch(/^postgres: zstd compression failed: no space left on the device it writes the backup file to \(zstd exited with code 70: .*No space left on device\)$/);
    expect(error.hint).toMatch(/^free space on the disk holding the backup/);
    expect(result.manifest).toBeUndefined();
    expect((await filesUnder(root)).filter((f) => !f.startsWith('.scholaria-backup/'))).toEqual([]);
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

  describe('on one fs storage, zstd (or age) writes the dump file itself', () => {
    it('the recorded size and SHA-256 are those of the file zstd wrote; sha256sum -c, zstd -d and pg_restore accept the set; progress adds up', async () => {
      const lines: LoggedLine[] = [];
      const root = fresh();
      const progress: ProgressEvent[] = [];
      const engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })], storage: createFsStorage({ root }), logger: recordingLogger(lines) });
      const result = await engine.backup({ tier: 'daily', onProgress: (e) => progress.push(e) });
      expect(result.components.map((c) => c.error?.message ?? 'ok')).toEqual(['ok']);
      expect(lines.find((l) => l.message === 'pg_dump started')?.fields?.writesFile).toBe(true);

      const dump = result.manifest!.components[0]!.artifacts.find((a) => a.name === `${DB}.dump`)!;
      const file = join(root, result.setId, dump.path);
      expect(dump.sha256).toBe(await sha256File(file));
      expect(dump.size).toBe((await readFile(file)).length);
      expect(dump.size).toBeGreaterThan(4 * 1024 * 1024);
      const { stdout: sums } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(root, result.setId) });
      expect(sums).toContain(`${dump.path}: OK`);
      const { stdout: rawSize } = await exec('sh', ['-c', `zstd -d < '${file}' | wc -c`]);
      expect(dump.rawSize).toBe(Number(rawSize.trim()));
      const { stdout: list } = await exec('sh', ['-c', `zstd -d < '${file}' | '${pg.binDir}/pg_restore' --list`]);
      expect(list).toMatch(/TABLE DATA public filler/);

      // The row counts still come from the dump's own table of contents, read from the file's head.
      const meta = result.manifest!.components[0]!.metadata as { databases: { tables: { schema: string; name: string; rows: number; exact: boolean }[] }[] };
      expect(meta.databases[0]!.tables.find((t) => t.name === 'filler')).toEqual({ schema: 'public', name: 'filler', rows: 60000, exact: true });

      const reported = progress.filter((e) => e.phase === 'upload' && e.artifact === `${DB}.dump`);
      expect(reported.length).toBeGreaterThan(2);
      expect(reported.at(-1)).toMatchObject({ bytes: dump.size, done: true });
      const bytes = reported.map((e) => e.bytes);
      expect(bytes).toEqual([...bytes].sort((a, b) => a - b));

      const verified = await engine.verify({ ref: result.setId });
      expect(verified.sets.flatMap((s) => s.problems)).toEqual([]);
      await engine.close();
      // Nothing but the set's own files: no temp file stays behind.
      expect((await filesUnder(join(root, result.setId))).filter((f) => !/^(manifest\.json|SHA256SUMS|postgres\/)/.test(f))).toEqual([]);
      expect((await filesUnder(join(root, result.setId, 'postgres'))).sort()).toEqual([`${DB}.dump.zst`]);
    });

    it('with a second storage the bytes stream through Node; with age the age program writes the file; the files match', async () => {
      const [rootA, rootB] = [fresh(), fresh()];
      const lines: LoggedLine[] = [];
      const mirrored = createBackupEngine({
        sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })],
        storage: [createFsStorage({ root: rootA }), createFsStorage({ root: rootB })],
        logger: recordingLogger(lines),
      });
      const result = await mirrored.backup({ tier: 'daily' });
      await mirrored.close();
      expect(result.status).toBe('complete');
      expect(lines.find((l) => l.message === 'pg_dump started')?.fields?.writesFile).toBeUndefined();
      const dump = result.manifest!.components[0]!.artifacts.find((a) => a.name === `${DB}.dump`)!;
      const [a, b] = await Promise.all([sha256File(join(rootA, result.setId, dump.path)), sha256File(join(rootB, result.setId, dump.path))]);
      expect([a, b]).toEqual([dump.sha256, dump.sha256]);

      // Encrypted with the age program: age writes the file, zstd's output goes through Node into
      // it; with the JavaScript encoder the bytes stream through Node as before. Same format.
      const keyFile = join(temp.path, `age-key-${++n}.txt`);
      const { stderr: keyOut } = await exec('age-keygen', ['-o', keyFile]);
      const recipient = /public key: (age1[0-9a-z]+)/i.exec(keyOut)![1]!;
      for (const implementation of ['auto', 'js'] as const) {
        const encLines: LoggedLine[] = [];
        const rootC = fresh();
        const encrypted = createBackupEngine({
          sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })],
          storage: createFsStorage({ root: rootC }),
          codecs: [createAgeCodec({ recipients: [recipient], implementation })],
          logger: recordingLogger(encLines),
        });
        const enc = await encrypted.backup({ tier: 'daily' });
        await encrypted.close();
        expect(enc.status).toBe('complete');
        expect(encLines.find((l) => l.message === 'pg_dump started')?.fields?.writesFile, implementation).toBe(implementation === 'auto' ? true : undefined);
        const encDump = enc.manifest!.components[0]!.artifacts.find((x) => x.name === `${DB}.dump`)!;
        expect(encDump.path).toBe(`postgres/${DB}.dump.zst.age`);
        const encFile = join(rootC, enc.setId, encDump.path);
        expect(await sha256File(encFile)).toBe(encDump.sha256);
        const { stdout: listed } = await exec('sh', ['-c', `age -d -i '${keyFile}' < '${encFile}' | zstd -d | '${pg.binDir}/pg_restore' --list`]);
        expect(listed).toMatch(/TABLE DATA public filler/);
        const { stdout: plainSize } = await exec('sh', ['-c', `age -d -i '${keyFile}' < '${encFile}' | zstd -d | wc -c`]);
        expect(encDump.rawSize).toBe(Number(plainSize.trim()));
        const meta = enc.manifest!.components[0]!.metadata as { databases: { tables: { name: string; rows: number }[] }[] };
        expect(meta.databases[0]!.tables.find((t) => t.name === 'filler')?.rows, implementation).toBe(60000);
      }
    });

    it('an abort while zstd writes the file leaves neither the file nor a temp file', async () => {
      // The first progress event comes after the first block was read back, long before the
      // last of the dump's ~18 MB: the abort lands while zstd is still writing the file.
      const root = fresh();
      const controller = new AbortController();
      const engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })], storage: createFsStorage({ root }) });
      const running = engine.backup({
        tier: 'daily',
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'upload' && e.artifact === `${DB}.dump` && e.bytes > 0) controller.abort();
        },
      });
      const result = await running;
      await engine.close();
      expect(result.status).toBe('failed');
      expect((result.components[0]!.error as { code?: string } | undefined)?.code).toBe('ABORTED');
      expect(result.manifest).toBeUndefined();
      const left = (await filesUnder(root)).filter((f) => !f.startsWith('.scholaria-backup/'));
      expect(left).toEqual([]);
    });

    it('a disk that fills while the age program writes the file fails the backup as the storage\'s fault', async () => {
      // The real age; where it would write the backup file, it writes into a full device.
      await shadowProgram(join(temp.path, `bin${++n}`), 'age', `if [ -f /dev/stdout ]; then exec /usr/bin/age "$@" > /dev/full; fi\nexec /usr/bin/age "$@"`, originalPath);
      const { stderr: keyOut } = await exec('age-keygen', ['-o', join(temp.path, `age-key-${++n}.txt`)]);
      const recipient = /public key: (age1[0-9a-z]+)/i.exec(keyOut)![1]!;
      const root = fresh();
      const engine = createBackupEngine({
        sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })],
        storage: createFsStorage({ root }),
        codecs: [createAgeCodec({ recipients: [recipient], implementation: 'binary' })],
      });
      const result = await engine.backup({ tier: 'daily' });
      await engine.close();
      expect(result.status).toBe('failed');
      const error = result.components[0]!.error as { code?: string; message: string; hint?: string };
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.message).toMatch(/age encryption failed: no space left on the device it writes the backup file to \(age exited with code 1: .*no space left on device/);
      expect(error.hint).toMatch(/^free space on the disk holding the backup/);
      expect((await filesUnder(root)).filter((f) => !f.startsWith('.scholaria-backup/'))).toEqual([]);
    });

    it('an age program that fails half-way through the file fails the artifact and leaves neither the file nor a temp file', async () => {
      // Encrypts the first 200 kB for real (enough for the codec's check of the program), then
      // fails if more input follows.
      await shadowProgram(
        join(temp.path, `bin${++n}`),
        'age',
        ['head -c 200000 | /usr/bin/age "$@"', 'rest=$(cat | wc -c)', 'if [ "$rest" -gt 0 ]; then echo "age: error: simulated failure" >&2; exit 1; fi'].join('\n'),
        originalPath,
      );
      const { stderr: keyOut } = await exec('age-keygen', ['-o', join(temp.path, `age-key-${++n}.txt`)]);
      const recipient = /public key: (age1[0-9a-z]+)/i.exec(keyOut)![1]!;
      const root = fresh();
      const lines: LoggedLine[] = [];
      const engine = createBackupEngine({
        sources: [createPostgresSource({ url: pg.url(DB), globals: 'off' })],
        storage: createFsStorage({ root }),
        codecs: [createAgeCodec({ recipients: [recipient], implementation: 'binary' })],
        logger: recordingLogger(lines),
      });
      const result = await engine.backup({ tier: 'daily' });
      await engine.close();
      expect(lines.find((l) => l.message === 'pg_dump started')?.fields?.writesFile).toBe(true);
      expect(result.status).toBe('failed');
      expect((result.components[0]!.error as { code?: string } | undefined)?.code).toBe('CODEC_FAILED');
      expect(result.components[0]!.error?.message).toMatch(/age .*failed.*simulated failure/);
      expect((await filesUnder(root)).filter((f) => !f.startsWith('.scholaria-backup/'))).toEqual([]);
    });
  });
});
