import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComponentManifest } from '@scholaria/backup-core';
import { backupErrorOf, getFreePort, makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource, postgresBackupMetadataSchema } from '@scholaria/backup-postgres';
import { createDirBackupContext, createDirRestoreContext, type DirBackupContext } from './helpers/dir-context.js';
import { failingPgDump, oldPgDump, pidRecordingPgDump } from './helpers/fake-tools.js';
import { databaseNames } from './helpers/fixture.js';
import { runBackup } from '../src/postgres-backup.js';
import { parsePostgresOptions } from '../src/postgres-options.js';
import { createRuntime, type Runtime } from '../src/runtime.js';

/** The runtime of a source with these options, its connections counted. */
function countedRuntime(options: Record<string, unknown>): { rt: Runtime; opened: string[]; released: string[] } {
  const rt = createRuntime(parsePostgresOptions(options));
  const opened: string[] = [];
  const released: string[] = [];
  const connect = rt.connector.connect.bind(rt.connector);
  rt.connector.connect = async (database) => {
    const session = await connect(database);
    opened.push(database);
    return {
      client: session.client,
      release: async () => {
        released.push(database);
        await session.release();
      },
    };
  };
  return { rt, opened, released };
}

describe('postgres source: bad inputs and failures', () => {
  let pg: PostgresServer;
  let temp: TempDir;
  let n = 0;
  const ctxDir = () => join(temp.path, `set${++n}`);

  beforeAll(async () => {
    [pg, temp] = await Promise.all([startPostgres({ superuserPassword: 'Sup3r-Secret-pw' }), makeTempDir('scholaria-pg-err-')]);
    await pg.createDatabase('app');
    await pg.query('app', `CREATE TABLE big (id int, payload text); INSERT INTO big SELECT g, md5(g::text) || repeat('x', 200) FROM generate_series(1, 40000) g;`);
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), temp?.remove()]);
  });

  it('wrong password: AUTH_FAILED, without the password in the message', async () => {
    const source = createPostgresSource({ url: `postgresql://postgres:not-the-password-42@127.0.0.1:${pg.port}/app` });
    const e = await backupErrorOf(source.backup(createDirBackupContext(ctxDir()).ctx));
    expect(e.code).toBe('AUTH_FAILED');
    expect(e.message).toMatch(/authentication failed for postgres@127\.0\.0\.1:\d+\/app/);
    expect(e.hint).toMatch(/password/);
    expect(`${e.message} ${e.hint}`).not.toContain('not-the-password-42');
    const check = await source.check();
    expect(check.ok).toBe(false);
    expect(check.problems!.join()).toMatch(/authentication failed/);
    expect(JSON.stringify(check)).not.toContain('not-the-password-42');
  });

  it('unknown database: NOT_FOUND naming the database', async () => {
    const e = await backupErrorOf(createPostgresSource({ url: pg.url('no_such_db') }).backup(createDirBackupContext(ctxDir()).ctx));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toMatch(/database "no_such_db" does not exist/);
    expect(e.hint).toBeTruthy();
  });

  it('server unreachable: CONNECTION_FAILED, retryable', async () => {
    const port = await getFreePort();
    const e = await backupErrorOf(createPostgresSource({ url: `postgresql://postgres:pw@127.0.0.1:${port}/app` }).backup(createDirBackupContext(ctxDir()).ctx));
    expect(e.code).toBe('CONNECTION_FAILED');
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.retryable).toBe(true);
  });

  it('pg_dump missing: TOOL_MISSING saying where it looked', async () => {
    const e = await backupErrorOf(createPostgresSource({ url: pg.url('app'), pgDumpPath: '/nonexistent/pg_dump' }).backup(createDirBackupContext(ctxDir()).ctx));
    expect(e.code).toBe('TOOL_MISSING');
    expect(e.message).toContain('/nonexistent/pg_dump');
    const empty = await makeTempDir('scholaria-empty-bin-');
    const e2 = await backupErrorOf(createPostgresSource({ url: pg.url('app'), binDir: empty.path }).backup(createDirBackupContext(ctxDir()).ctx));
    expect(e2.code).toBe('TOOL_MISSING');
    expect(e2.message).toContain(empty.path);
    expect(e2.hint).toMatch(/postgresql-client/);
    await empty.remove();
  });

  it('pg_dump older than the server: TOOL_TOO_OLD before anything is written', async () => {
    const backup = createDirBackupContext(ctxDir());
    const e = await backupErrorOf(createPostgresSource({ url: pg.url('app'), pgDumpPath: await oldPgDump(temp.path) }).backup(backup.ctx));
    expect(e.code).toBe('TOOL_TOO_OLD');
    expect(e.message).toMatch(/pg_dump 13\.4 .* is older than the server \(PostgreSQL \d+/);
    expect(e.hint).toMatch(/client tools/);
    expect(backup.written.size).toBe(0);
  });

  it('the connection that read the server facts is the dump\'s own, and a failed check releases it', async () => {
    const ok = countedRuntime({ url: pg.url('app') });
    const backup = createDirBackupContext(ctxDir());
    await runBackup(ok.rt, backup.ctx);
    expect(backup.stored.has('app.dump')).toBe(true);
    expect(ok.opened).toEqual(['app']);
    expect(ok.released).toEqual(['app']);

    const old = countedRuntime({ url: pg.url('app'), pgDumpPath: await oldPgDump(temp.path) });
    const failed = createDirBackupContext(ctxDir());
    expect((await backupErrorOf(runBackup(old.rt, failed.ctx))).code).toBe('TOOL_TOO_OLD');
    expect(old.opened).toEqual(['app']);
    expect(old.released).toEqual(['app']);
    expect(failed.written.size).toBe(0);
  });

  it('a failing pg_dump fails the component with its stderr, redacted, and stores nothing', async () => {
    const backup = createDirBackupContext(ctxDir());
    const source = createPostgresSource({ url: pg.url('app'), pgDumpPath: await failingPgDump(temp.path, pg.binDir), globals: 'off' });
    const e = await backupErrorOf(source.backup(backup.ctx));
    expect(e.code).toBe('SOURCE_FAILED');
    expect(e.message).toMatch(/pg_dump of database "app" exited with code 3: pg_dump: error: simulated failure \(password was \*\*\*\)/);
    expect(e.message).not.toContain(pg.password);
    expect(backup.written.get('app.dump')).toBeGreaterThan(0);
    expect(backup.failed).toContain('app.dump');
    expect(backup.stored.has('app.dump')).toBe(false);
  });

  it('pg_dump killed mid-stream: the artifact is not stored and the backup fails', async () => {
    const pidFile = join(temp.path, 'pg_dump.pid');
    const backup = createDirBackupContext(ctxDir(), { slowMs: 30 });
    const source = createPostgresSource({
      url: pg.url('app'),
      pgDumpPath: await pidRecordingPgDump(temp.path, pg.binDir, pidFile),
      compression: 'none',
      globals: 'off',
    });
    const running = backupErrorOf(source.backup(backup.ctx));
    for (let i = 0; i < 500 && !((backup.written.get('app.dump') ?? 0) > 0); i++) await new Promise((r) => setTimeout(r, 20));
    expect(backup.written.get('app.dump')).toBeGreaterThan(0);
    process.kill(Number((await readFile(pidFile, 'utf8')).trim()), 'SIGKILL');
    const e = await running;
    expect(e.code).toBe('SOURCE_FAILED');
    expect(e.message).toMatch(/pg_dump of database "app" was killed by SIGKILL/);
    expect(backup.stored.has('app.dump')).toBe(false);
    expect(backup.failed).toContain('app.dump');
  });

  it('an aborted backup stops pg_dump and fails with ABORTED', async () => {
    const controller = new AbortController();
    const backup = createDirBackupContext(ctxDir(), { slowMs: 30, signal: controller.signal });
    const running = backupErrorOf(createPostgresSource({ url: pg.url('app'), compression: 'none', globals: 'off' }).backup(backup.ctx));
    for (let i = 0; i < 500 && !((backup.written.get('app.dump') ?? 0) > 0); i++) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const e = await running;
    expect(e.code).toBe('ABORTED');
    expect(backup.stored.has('app.dump')).toBe(false);
  });

  describe('restore checks', () => {
    let backup: DirBackupContext;
    let component: ComponentManifest;
    beforeAll(async () => {
      backup = createDirBackupContext(ctxDir());
      const result = await createPostgresSource({ url: pg.url('app') }).backup(backup.ctx);
      component = backup.component(result);
    });

    it('reports every problem before changing anything, on dry run and real run alike', async () => {
      const meta = postgresBackupMetadataSchema.parse(component.metadata);
      meta.pgDumpMajor = 99;
      meta.pgDumpVersion = '99.1';
      meta.databases[0]!.extensions.push({ name: 'no_such_extension', version: '1.0', schema: 'public' });
      const tampered = { ...component, metadata: meta as unknown as Record<string, unknown> };
      const before = await databaseNames(pg);
      for (const dryRun of [true, false]) {
        const e = await backupErrorOf(createPostgresSource({ url: pg.url('app') }).restore(createDirRestoreContext(backup, tampered, { dryRun })));
        expect(e.code).toBe('RESTORE_FAILED');
        expect(e.message).toMatch(/cannot read archives written by pg_dump 99\.1/);
        expect(e.message).toMatch(/needs extensions not installed on the target server: no_such_extension 1\.0/);
        expect(e.hint).toMatch(/nothing was changed/);
      }
      expect(await databaseNames(pg)).toEqual(before);
    });

    it('refuses a target that cannot be reached', async () => {
      const port = await getFreePort();
      const e = await backupErrorOf(
        createPostgresSource({ url: `postgresql://postgres:pw@127.0.0.1:${port}/app` }).restore(createDirRestoreContext(backup, component, { dryRun: true })),
      );
      expect(e.code).toBe('CONNECTION_FAILED');
    });

    it('refuses a new-database target that already exists, and bad restore options', async () => {
      const source = createPostgresSource({ url: pg.url('app') });
      const e = await backupErrorOf(source.restore(createDirRestoreContext(backup, component, { options: { mode: 'new-database', targetDatabase: 'app' } })));
      expect(e.message).toMatch(/database "app" already exists; new-database mode/);
      const e2 = await backupErrorOf(source.restore(createDirRestoreContext(backup, component, { options: { mode: 'upside-down' } })));
      expect(e2.code).toBe('CONFIG_INVALID');
      expect(e2.message).toMatch(/mode/);
    });

    it('an aborted restore stops pg_restore, drops the half-built copy and keeps the live database', async () => {
      const controller = new AbortController();
      const ctx = createDirRestoreContext(backup, component, { signal: controller.signal });
      const open = ctx.open.bind(ctx);
      let dumpOpens = 0;
      // The first read is the pre-flight listing; abort as the real restore starts reading.
      ctx.open = async (name: string) => {
        const stream = await open(name);
        if (name === 'app.dump' && ++dumpOpens === 2) setTimeout(() => controller.abort(), 20);
        return stream;
      };
      const before = await databaseNames(pg);
      const rows = await pg.query('app', 'SELECT count(*)::int AS n FROM big');
      const e = await backupErrorOf(createPostgresSource({ url: pg.url('app') }).restore(ctx));
      expect(e.code).toBe('ABORTED');
      expect(await databaseNames(pg)).toEqual(before);
      expect(await pg.query('app', 'SELECT count(*)::int AS n FROM big')).toEqual(rows);
    });

    it('a corrupted artifact fails the restore and leaves the live database alone', async () => {
      const stored = backup.stored.get('app.dump')!;
      const broken = { ...stored, record: { ...stored.record, sha256: '0'.repeat(64) } };
      const fake: DirBackupContext = { ...backup, stored: new Map([...backup.stored, ['app.dump', broken]]) };
      await pg.query('app', 'DELETE FROM big WHERE id > 39000');
      const before = await databaseNames(pg);
      const e = await backupErrorOf(createPostgresSource({ url: pg.url('app') }).restore(createDirRestoreContext(fake, component)));
      expect(e.code).toBe('RESTORE_FAILED');
      expect(e.message).toMatch(/reading app\.dump failed: checksum mismatch/);
      expect(await databaseNames(pg)).toEqual(before);
      expect(await pg.query('app', 'SELECT count(*)::int AS n FROM big')).toEqual([{ n: 39000 }]);
    });

    it("an artifact stream that fails before pg_restore --list got a byte is reported as the read failure, not as pg_restore's complaint", async () => {
      // What a small damaged artifact can do at random: its checksum error at the end of the
      // stream destroys pg_restore's stdin before the queued bytes reach it.
      const ctx = createDirRestoreContext(backup, component);
      const open = ctx.open.bind(ctx);
      ctx.open = async (name: string) => {
        if (name !== 'app.dump') return open(name);
        const stream = new Readable({ read() {} });
        setImmediate(() => stream.destroy(new Error('app.dump: checksum mismatch (injected)')));
        return stream;
      };
      const before = await databaseNames(pg);
      const e = await backupErrorOf(createPostgresSource({ url: pg.url('app') }).restore(ctx));
      expect(e.code).toBe('RESTORE_FAILED');
      expect(e.message).toMatch(/restore cannot start:\n {2}- reading app\.dump failed: app\.dump: checksum mismatch \(injected\)/);
      expect(e.message).not.toMatch(/pg_restore --list/);
      expect(await databaseNames(pg)).toEqual(before);
    });
  });
});
