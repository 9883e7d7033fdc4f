import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource, postgresBackupMetadataSchema, type PostgresSourceOptions } from '@scholaria/backup-postgres';
import { createDirBackupContext, createDirRestoreContext } from './helpers/dir-context.js';
import { databaseNames, ident, schemaDump, tableChecksums } from './helpers/fixture.js';

const ODD = `we "quote" d'b = x`;

async function roundTrip(server: PostgresServer, dir: string, options: PostgresSourceOptions, restoreOptions: Record<string, unknown> = {}) {
  const source = createPostgresSource(options);
  const backup = createDirBackupContext(dir);
  const result = await source.backup(backup.ctx);
  const component = backup.component(result);
  const restored = await source.restore(createDirRestoreContext(backup, component, { options: restoreOptions }));
  return { source, backup, result, component, restored };
}

describe('postgres source: options and modes (real server)', () => {
  let server: PostgresServer;
  let fresh: PostgresServer;
  let temp: TempDir;
  let n = 0;
  const dir = () => join(temp.path, `set${++n}`);
  let data: Record<string, string>;
  let schema: string;

  beforeAll(async () => {
    [server, fresh, temp] = await Promise.all([startPostgres(), startPostgres(), makeTempDir('scholaria-pg-modes-')]);
    await server.createDatabase(ODD);
    await server.query(
      ODD,
      `CREATE SCHEMA app; CREATE SCHEMA logs;
       CREATE TABLE app.a (id serial PRIMARY KEY, v text); CREATE TABLE app.b (id int REFERENCES app.a, w jsonb);
       CREATE TABLE logs.events (id bigserial, at timestamptz DEFAULT '2026-01-01', msg text);
       INSERT INTO app.a (v) SELECT 'v' || g FROM generate_series(1, 500) g;
       INSERT INTO app.b SELECT g, jsonb_build_object('g', g) FROM generate_series(1, 500) g;
       INSERT INTO logs.events (msg) SELECT 'e' || g FROM generate_series(1, 3000) g;`,
    );
    data = await tableChecksums(server, ODD);
    schema = await schemaDump(server, ODD);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), fresh?.stop(), temp?.remove()]);
  });

  it('backs up and swap-restores a database whose name has quotes, spaces and "="', async () => {
    const source = createPostgresSource({ url: server.url(ODD) });
    const backup = createDirBackupContext(dir());
    const component = backup.component(await source.backup(backup.ctx));
    await server.query(ODD, 'DELETE FROM logs.events; DROP TABLE app.b');
    const restored = await source.restore(createDirRestoreContext(backup, component));
    expect([...backup.stored.keys()].sort()).toEqual(['globals.sql', 'we%20%22quote%22%20d%27b%20%3D%20x.dump']);
    expect(restored.metadata).toMatchObject({ databases: [{ target: ODD, previous: expect.stringMatching(/^we "quote" d'b = x_before_/) }] });
    expect(await tableChecksums(server, ODD)).toEqual(data);
    expect(await schemaDump(server, ODD)).toBe(schema);
    const previous = (restored.metadata as { databases: { previous: string }[] }).databases[0]!.previous;
    await server.query('postgres', `DROP DATABASE ${ident(previous)}`);
  });

  it('parallel mode: pg_dump -Fd -j streamed as a tar, restored with pg_restore -j', async () => {
    const { backup, result } = await roundTrip(server, dir(), { url: server.url(ODD), jobs: 2, globals: 'off' }, { mode: 'new-database', targetDatabase: 'par', jobs: 2 });
    expect([...backup.stored.keys()]).toEqual(['we%20%22quote%22%20d%27b%20%3D%20x.dump.tar']);
    const meta = postgresBackupMetadataSchema.parse(result.metadata);
    expect(meta.databases[0]).toMatchObject({ format: 'directory-tar', snapshot: true });
    expect(meta.databases[0]!.tables.map((t) => t.rows)).toEqual([500, 500, 3000]);
    expect(await tableChecksums(server, 'par')).toEqual(data);
    await server.query('postgres', 'DROP DATABASE par');
  });

  for (const compression of ['gzip', 'pg', 'none'] as const) {
    it(`compression "${compression}" restores (pg_restore -j from a spooled file)`, async () => {
      const target = `c_${compression}`;
      const { backup, result } = await roundTrip(server, dir(), { url: server.url(ODD), compression, globals: 'off' }, { mode: 'new-database', targetDatabase: target, jobs: 2 });
      const record = backup.stored.get('we%20%22quote%22%20d%27b%20%3D%20x.dump')!.record;
      expect(record.codecs.map((c) => c.name)).toEqual(compression === 'gzip' ? ['gzip'] : []);
      expect(postgresBackupMetadataSchema.parse(result.metadata).compression.mode).toBe(compression);
      if (compression === 'pg') expect(record.rawSize).toBeLessThan(200_000);
      expect(await tableChecksums(server, target)).toEqual(data);
      await server.query('postgres', `DROP DATABASE ${target}`);
    });
  }

  it('include/exclude filters: counts cover exactly what was dumped; swap refuses a partial dump', async () => {
    const source = createPostgresSource({ url: server.url(ODD), schemas: ['app'], excludeTableData: ['app.b'], globals: 'off' });
    const backup = createDirBackupContext(dir());
    const result = await source.backup(backup.ctx);
    const meta = postgresBackupMetadataSchema.parse(result.metadata);
    expect(meta.partial).toBe(true);
    expect(meta.databases[0]!.tables.map((t) => `${t.schema}.${t.name}=${t.rows}`)).toEqual(['app.a=500']);
    const component = backup.component(result);
    const refused = await source.restore(createDirRestoreContext(backup, component, { dryRun: true })).catch((e: Error) => e);
    expect((refused as Error).message).toMatch(/swap mode would replace the whole database/);
    await source.restore(createDirRestoreContext(backup, component, { options: { mode: 'new-database', targetDatabase: 'partial' } }));
    const tables = await server.query<{ t: string }>('partial', `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`);
    expect(tables.map((r) => r.t)).toEqual(['app.a', 'app.b']);
    expect(await server.query('partial', 'SELECT count(*)::int AS n FROM app.b')).toEqual([{ n: 0 }]);
    await server.query('postgres', 'DROP DATABASE partial');
  });

  it('swap terminates sessions on the live database and completes', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', password: server.password, database: ODD });
    client.on('error', () => undefined);
    await client.connect();
    await client.query('SELECT 1');
    const { restored } = await roundTrip(server, dir(), { url: server.url(ODD), restore: { mode: 'swap', jobs: 1, keepPrevious: false, globals: true, verifyRowCounts: true, noOwner: false, noAcl: false } });
    expect((restored.metadata as { databases: { previous?: string }[] }).databases[0]!.previous).toBeUndefined();
    expect((await databaseNames(server)).filter((d) => d.startsWith('we'))).toEqual([ODD]);
    await expect(client.query('SELECT 1')).rejects.toThrow();
    await client.end().catch(() => undefined);
    expect(await tableChecksums(server, ODD)).toEqual(data);
  });

  it('several databases in one backup, restored into a fresh server', async () => {
    await server.createDatabase('second');
    await server.query('second', 'CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 42)');
    const source = createPostgresSource({ url: server.url('postgres'), databases: [ODD, 'second'] });
    const backup = createDirBackupContext(dir());
    const result = await source.backup(backup.ctx);
    expect([...backup.stored.keys()].sort()).toEqual(['globals.sql', 'second.dump', 'we%20%22quote%22%20d%27b%20%3D%20x.dump']);
    const target = createPostgresSource({ url: fresh.url('postgres'), databases: [ODD, 'second'] });
    await target.restore(createDirRestoreContext(backup, backup.component(result)));
    expect(await tableChecksums(fresh, ODD)).toEqual(data);
    expect(await fresh.query('second', 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 42 }]);
  });

  it('a non-superuser backup saves roles without passwords and warns', async () => {
    await server.query('postgres', `CREATE ROLE backup_user LOGIN PASSWORD 'bk-pass-987'; GRANT CONNECT ON DATABASE ${ident(ODD)} TO backup_user`);
    await server.query(ODD, 'GRANT USAGE ON SCHEMA app, logs TO backup_user; GRANT SELECT ON ALL TABLES IN SCHEMA app, logs TO backup_user; GRANT SELECT ON ALL SEQUENCES IN SCHEMA app, logs TO backup_user');
    const source = createPostgresSource({ url: `postgresql://backup_user:bk-pass-987@127.0.0.1:${server.port}/${encodeURIComponent(ODD)}` });
    const backup = createDirBackupContext(dir());
    const result = await source.backup(backup.ctx);
    expect(result.warnings!.join('\n')).toMatch(/--no-role-passwords/);
    expect(postgresBackupMetadataSchema.parse(result.metadata).globals).toEqual({ artifact: 'globals.sql', rolePasswords: false });
    expect(postgresBackupMetadataSchema.parse(result.metadata).databases[0]!.tables.map((t) => t.rows)).toEqual([500, 500, 3000]);
    expect(JSON.stringify(result)).not.toContain('bk-pass-987');
  });

  it('accepts a ready pg Pool and a password function', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: server.port, user: 'postgres', password: server.password, database: ODD, max: 2 });
    pool.on('error', () => undefined);
    const viaPool = createPostgresSource({ client: pool, globals: 'off' });
    const b1 = createDirBackupContext(dir());
    const r1 = await viaPool.backup(b1.ctx);
    expect(postgresBackupMetadataSchema.parse(r1.metadata).databases[0]!.tables).toHaveLength(3);
    expect((await viaPool.check()).ok).toBe(true);
    await pool.end();

    let calls = 0;
    const viaFn = createPostgresSource({
      host: '127.0.0.1',
      port: server.port,
      user: 'postgres',
      database: ODD,
      password: async () => {
        calls++;
        return server.password;
      },
      globals: 'off',
    });
    const b2 = createDirBackupContext(dir());
    await viaFn.backup(b2.ctx);
    expect(calls).toBeGreaterThan(0);
    expect(b2.stored.size).toBe(1);
  });

  it('exact row counts can give way to estimates for large tables', async () => {
    await server.query(ODD, 'ANALYZE');
    const source = createPostgresSource({ url: server.url(ODD), exactCountMaxRows: 1000, globals: 'off' });
    const backup = createDirBackupContext(dir());
    const meta = postgresBackupMetadataSchema.parse((await source.backup(backup.ctx)).metadata);
    expect(meta.databases[0]!.tables.map((t) => [t.name, t.exact])).toEqual([
      ['a', true],
      ['b', true],
      ['events', false],
    ]);
  });
});
