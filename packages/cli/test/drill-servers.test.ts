import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type DrillResult, type DrillTarget } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresDrillTarget, createPostgresSource } from '@scholaria/backup-postgres';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { postgresFingerprint } from './drill-helpers.js';
import { PACKAGES, assertBuilt, parseJson, runBin } from './helpers.js';

// Drills on a separate PostgreSQL server (BACKUP_DRILL_POSTGRES_URL), and one drill at a time
// across processes: a second drill is refused while one runs, and no drill's sweep removes the
// database of a drill still running in another process.

const DB = 'scholaria';
const ROWS = 200;
let live: PostgresServer;
let drillServer: PostgresServer;
let work: TempDir;
let root: string;

const drillDbs = async (server: PostgresServer) =>
  (await server.query<{ d: string }>('postgres', "SELECT datname AS d FROM pg_database WHERE datname LIKE 'scholaria\\_drill\\_%' ORDER BY 1")).map((r) => r.d);

const engine = (backupRoot = root) => createBackupEngine({ sources: [createPostgresSource({ url: live.url(DB) })], storage: createFsStorage({ root: backupRoot }) });

beforeAll(async () => {
  work = await makeTempDir('scholaria-drill-servers-');
  root = join(work.path, 'backup');
  [live, drillServer] = await Promise.all([startPostgres(), startPostgres()]);
  await live.createDatabase(DB);
  await live.query(
    DB,
    `CREATE TABLE chunks (id integer PRIMARY KEY, body text NOT NULL);
     CREATE INDEX chunks_body ON chunks (body);
     INSERT INTO chunks SELECT g, 'chunk ' || g FROM generate_series(1, ${ROWS}) g;`,
  );
  expect((await engine().backup({ tier: 'daily' })).status).toBe('complete');
});

afterAll(async () => {
  await Promise.allSettled([live?.stop(), drillServer?.stop()]);
  await work?.remove();
});

describe('a drill on a separate PostgreSQL server', () => {
  it('restores, checks and drops on the drill server, sweeps its leftovers there, and leaves the live server unchanged', async () => {
    // A killed drill's leftover on the drill server (no session holds its lease).
    const leftover = 'scholaria_drill_20200101_000000_abcd';
    await drillServer.createDatabase(leftover);
    const before = await postgresFingerprint(live, DB);
    const target = createPostgresDrillTarget({ url: live.url(DB) }, { url: drillServer.url('postgres') });
    // Seen while the checks run: where the throwaway database really is.
    const during: { live: string[]; drill: string[] } = { live: [], drill: [] };
    const watched: DrillTarget = {
      ...target,
      async check(ctx) {
        during.live = await drillDbs(live);
        during.drill = await drillDbs(drillServer);
        return await target.check(ctx);
      },
    };
    const e = engine();
    const result = await e.drill({ targets: [watched] });
    expect(result.status, JSON.stringify(result, null, 2)).toBe('passed');
    const where = `on drill server 127.0.0.1:${drillServer.port}`;
    expect(result.components[0]!.target).toBe(`postgres database "scholaria_drill_${result.drillId}" ${where}`);
    expect(during).toEqual({ live: [], drill: [`scholaria_drill_${result.drillId}`] });
    expect(result.checks.find((c) => c.name === 'counts')).toMatchObject({ status: 'pass', figures: { restoredRows: ROWS, expectedRows: ROWS } });
    expect(result.checks.find((c) => c.name === 'amcheck')).toMatchObject({ status: 'pass' });
    expect(result.removedLeftovers).toEqual([`postgres database "${leftover}" ${where}`]);
    expect(result.cleanedUp).toEqual([`postgres database "scholaria_drill_${result.drillId}" ${where}`]);
    expect(await drillDbs(drillServer)).toEqual([]);
    expect(await postgresFingerprint(live, DB)).toEqual(before);
    await e.close();
  });

  it('the built command takes BACKUP_DRILL_POSTGRES_URL, and refuses the live server as the drill server', async () => {
    assertBuilt();
    const env = (extra: Record<string, string> = {}) => ({
      BACKUP_DIR: root,
      BACKUP_LOG_DIR: join(work.path, 'logs'),
      DATABASE_URL: live.url(DB),
      BACKUP_DRILL_POSTGRES_URL: drillServer.url('postgres'),
      BACKUP_MIN_FREE_DISK: '1MiB',
      ...extra,
    });
    const before = await postgresFingerprint(live, DB);
    const r = await runBin(['drill', '--json'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const result = parseJson<DrillResult & { ok: boolean }>(r.stdout);
    expect(result.ok).toBe(true);
    expect(result.components[0]!.target).toContain(`on drill server 127.0.0.1:${drillServer.port}`);
    expect(await postgresFingerprint(live, DB)).toEqual(before);
    expect(await drillDbs(drillServer)).toEqual([]);
    // Neither server's password shows in the output.
    expect(r.stdout + r.stderr).not.toContain(drillServer.password);
    expect(r.stdout + r.stderr).not.toContain(live.password);

    const same = await runBin(['drill'], { env: env({ BACKUP_DRILL_POSTGRES_URL: live.url('postgres') }) });
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/BACKUP_DRILL_POSTGRES_URL/);
    expect(same.stderr).toMatch(/is the live server/);
    expect(same.stderr).not.toContain(live.password);
  });
});

describe('one drill at a time, across processes', () => {
  it('refuses a second drill while one runs; another drill sweeps only databases whose drill is gone', async () => {
    assertBuilt();
    const dist = (pkg: string) => pathToFileURL(join(PACKAGES, pkg, 'dist', 'index.js')).href;
    // Process A: a real drill on the live server that stops inside its checks, its throwaway
    // database restored, until it is killed.
    const script = join(work.path, 'running-drill.mjs');
    writeFileSync(
      script,
      `import { createBackupEngine } from ${JSON.stringify(dist('core'))};
import { createFsStorage } from ${JSON.stringify(dist('fs'))};
import { createPostgresSource, createPostgresDrillTarget } from ${JSON.stringify(dist('postgres'))};
const t = createPostgresDrillTarget({ url: ${JSON.stringify(live.url(DB))} });
const stuck = { ...t, async check(ctx) { process.stdout.write('CHECKING ' + ctx.drillId + '\\n'); await new Promise(() => {}); } };
const engine = createBackupEngine({ sources: [createPostgresSource({ url: ${JSON.stringify(live.url(DB))} })], storage: createFsStorage({ root: ${JSON.stringify(root)} }) });
await engine.drill({ targets: [stuck] });
`,
    );
    const initial = await postgresFingerprint(live, DB);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const checking = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`drill A did not reach its checks:\n${output}`)), 90_000);
      const look = () => {
        const m = /CHECKING (\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout.on('data', (d: Buffer) => ((output += d.toString()), look()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      void exited.then((code) => reject(new Error(`drill A exited (${String(code)}) early:\n${output}`)));
    });
    try {
      const runningId = await checking;
      const running = `scholaria_drill_${runningId}`;
      expect(await drillDbs(live)).toEqual([running]);

      // Process B, the built command on the same storage: refused at once, nothing touched.
      const before = await postgresFingerprint(live, DB);
      const b = await runBin(['drill', '--json'], {
        env: { BACKUP_DIR: root, BACKUP_LOG_DIR: join(work.path, 'logs'), DATABASE_URL: live.url(DB), BACKUP_MIN_FREE_DISK: '1MiB' },
      });
      expect(b.code, b.stdout + b.stderr).toBe(1);
      expect(b.stdout + b.stderr).toMatch(/cannot start drill of scholaria_backup_\d{8}_\d{6}.*is locked: drill by .* is running/);
      expect(b.stdout + b.stderr).toMatch(/Only one drill/);
      expect(await drillDbs(live)).toEqual([running]);
      expect(await postgresFingerprint(live, DB)).toEqual(before);

      // A drill of another storage (its own lock) on the same server: its sweep leaves A's
      // database alone, because A's session still holds that database's advisory lock.
      const otherRoot = join(work.path, 'other-backup');
      const other = engine(otherRoot);
      expect((await other.backup({ tier: 'daily' })).status).toBe('complete');
      const beside = await other.drill({ targets: [createPostgresDrillTarget({ url: live.url(DB) })] });
      expect(beside.status, JSON.stringify(beside, null, 2)).toBe('passed');
      expect(beside.removedLeftovers).toEqual([]);
      expect(await drillDbs(live)).toEqual([running]);

      // Once A is killed its lease is gone with its session: the next drill removes the leftover.
      child.kill('SIGKILL');
      await exited;
      const after = await other.drill({ targets: [createPostgresDrillTarget({ url: live.url(DB) })] });
      expect(after.status).toBe('passed');
      expect(after.removedLeftovers).toEqual([`postgres database "${running}"`]);
      expect(await drillDbs(live)).toEqual([]);
      // And on A's own storage, its run lock is stale (its process is gone): the next drill runs.
      const own = await engine().drill({ targets: [createPostgresDrillTarget({ url: live.url(DB) })] });
      expect(own.status).toBe('passed');
      expect(await postgresFingerprint(live, DB)).toEqual(initial);
      await other.close();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
