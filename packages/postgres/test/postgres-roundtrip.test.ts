import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComponentManifest, SourceBackupResult } from '@scholaria/backup-core';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource, postgresBackupMetadataSchema, type PostgresSourceOptions } from '@scholaria/backup-postgres';
import { createDirBackupContext, createDirRestoreContext, type DirBackupContext } from './helpers/dir-context.js';
import { createRichFixture, databaseNames, grantsOf, ident, schemaDump, tableChecksums } from './helpers/fixture.js';

const exec = promisify(execFile);
const DB = 'scholaria';

describe('postgres source round trip (real servers)', () => {
  let a: PostgresServer;
  let b: PostgresServer;
  let temp: TempDir;
  let backup: DirBackupContext;
  let result: SourceBackupResult;
  let component: ComponentManifest;
  let originalSchema: string;
  let originalData: Record<string, string>;
  let originalGrants: unknown;
  const source = (server: PostgresServer, extra: Partial<PostgresSourceOptions> = {}) =>
    createPostgresSource({ url: server.url(DB), ...extra });

  beforeAll(async () => {
    [a, b, temp] = await Promise.all([startPostgres(), startPostgres(), makeTempDir('scholaria-pg-test-')]);
    await createRichFixture(a, DB);
    originalSchema = await schemaDump(a, DB);
    originalData = await tableChecksums(a, DB);
    originalGrants = await grantsOf(a, DB);
    backup = createDirBackupContext(`${temp.path}/set1`);
    result = await source(a).backup(backup.ctx);
    component = backup.component(result);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), temp?.remove()]);
  });

  it('writes a zstd-compressed custom dump and a globals artifact', () => {
    expect([...backup.stored.keys()].sort()).toEqual(['globals.sql', 'scholaria.dump']);
    const dump = backup.stored.get('scholaria.dump')!;
    expect(dump.record.codecs.map((c) => c.name)).toEqual(['zstd']);
    expect(dump.record.contentType).toBe('application/x-postgresql-custom-dump');
    expect(dump.record.manualRestore).toBe('zstd -d < X | pg_restore --dbname=scholaria');
    expect(dump.record.size).toBeLessThan(dump.record.rawSize);
  });

  it('records versions, size, extensions and exact row counts in the manifest metadata', () => {
    const meta = postgresBackupMetadataSchema.parse(result.metadata);
    expect(meta.serverVersion).toMatch(/^\d+\.\d+/);
    expect(meta.pgDumpVersion).toMatch(/^\d+\.\d+/);
    expect(meta.compression).toEqual({ mode: 'zstd', level: 3 });
    expect(meta.globals).toEqual({ artifact: 'globals.sql', rolePasswords: true });
    const db = meta.databases[0]!;
    expect(db.name).toBe(DB);
    expect(db.sizeBytes).toBeGreaterThan(1_000_000);
    expect(db.snapshot).toBe(true);
    expect(db.extensions.map((e) => e.name)).toEqual(expect.arrayContaining(['citext', 'pgcrypto', 'plpgsql']));
    const counts = Object.fromEntries(db.tables.map((t) => [`${t.schema}.${t.name}`, t.rows]));
    expect(counts).toEqual({
      'Odd Schema.Mixed "Case" Table': 3,
      'app.topics': 120,
      'app.users': 300,
      'rag.chunks': 2000,
      'rag.contexts': 200,
    });
    expect(db.tables.every((t) => t.exact)).toBe(true);
    expect(db.largeObjects).toBe(1);
    expect(db.acl).toContain('app_reader=Tc/');
    expect(db.settings).toEqual(['work_mem=8MB']);
  });

  it('never records the password', () => {
    const text = JSON.stringify({ result, records: [...backup.stored.values()].map((s) => s.record) });
    expect(text).not.toContain(a.password);
  });

  it('restores into a freshly initialised server: roles, grants, schema and data identical', async () => {
    const target = source(b);
    const res = await target.restore(createDirRestoreContext(backup, component));
    expect(res.metadata).toMatchObject({ mode: 'swap', databases: [{ source: DB, target: DB }] });
    expect((res.metadata as { createdRoles: string[] }).createdRoles.sort()).toEqual(['Report "Team"', 'app_owner', 'app_reader']);
    expect(await schemaDump(b, DB)).toBe(originalSchema);
    expect(await tableChecksums(b, DB)).toEqual(originalData);
    expect(await grantsOf(b, DB)).toEqual(originalGrants);
    // The restored role keeps its password: it can log in.
    const login = await b.query('postgres', `SELECT rolname FROM pg_roles WHERE rolname = 'app_owner' AND rolcanlogin`);
    expect(login).toHaveLength(1);
    // The superuser we connect as was not touched by the globals script.
    expect(await b.query('postgres', 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    const verified = await target.verify!({ component, signal: new AbortController().signal, logger: console as never });
    expect(verified).toEqual({ ok: true, mismatches: [] });
  });

  it('swap mode: replaces a damaged live database and keeps the old one under a dated name', async () => {
    await a.query(DB, 'DELETE FROM rag.chunks WHERE id % 3 = 0; DROP MATERIALIZED VIEW rag.topic_stats; UPDATE app.users SET name = $$x$$');
    const before = await databaseNames(a);
    const res = await source(a).restore(createDirRestoreContext(backup, component));
    expect(await schemaDump(a, DB)).toBe(originalSchema);
    expect(await tableChecksums(a, DB)).toEqual(originalData);
    const previous = (res.metadata as { databases: { previous: string }[] }).databases[0]!.previous;
    expect(previous).toMatch(/^scholaria_before_\d{8}_\d{6}$/);
    expect(await databaseNames(a)).toEqual([...before, previous].sort());
    const kept = await a.query<{ n: string }>(previous, 'SELECT count(*)::text AS n FROM rag.chunks');
    expect(kept[0]!.n).toBe(String(2000 - 666));
    await a.query('postgres', `DROP DATABASE ${ident(previous)}`);
  });

  it('in-place mode: restores over the live database in one transaction', async () => {
    await a.query(DB, 'DELETE FROM rag.chunks WHERE ord > 1500; UPDATE app.topics SET title = $$x$$; DROP TABLE "Odd Schema"."Mixed ""Case"" Table"; SELECT lo_unlink(oid) FROM pg_largeobject_metadata');
    const before = await databaseNames(a);
    const res = await source(a).restore(createDirRestoreContext(backup, component, { options: { mode: 'in-place' } }));
    expect(res.metadata).toMatchObject({ mode: 'in-place', databases: [{ target: DB, tablesVerified: 5 }] });
    expect(await databaseNames(a)).toEqual(before);
    expect(await schemaDump(a, DB)).toBe(originalSchema);
    expect(await tableChecksums(a, DB)).toEqual(originalData);
  });

  it('new-database mode: restores beside the live database for inspection', async () => {
    await a.query(DB, 'DELETE FROM rag.contexts WHERE true');
    const damaged = await tableChecksums(a, DB);
    const res = await source(a).restore(createDirRestoreContext(backup, component, { options: { mode: 'new-database', targetDatabase: 'inspect me' } }));
    expect(res.metadata).toMatchObject({ mode: 'new-database', databases: [{ target: 'inspect me' }] });
    expect(await schemaDump(a, 'inspect me')).toBe(originalSchema);
    expect(await tableChecksums(a, 'inspect me')).toEqual(originalData);
    expect(await tableChecksums(a, DB)).toEqual(damaged);
    await a.query('postgres', `DROP DATABASE "inspect me"`);
  });

  it('dry run reports the checks and the plan and changes nothing', async () => {
    const before = await databaseNames(a);
    const data = await tableChecksums(a, DB);
    const res = await source(a).restore(createDirRestoreContext(backup, component, { dryRun: true }));
    expect(res.metadata).toMatchObject({ dryRun: true, mode: 'swap' });
    const plan = res.plan!.join('\n');
    expect(plan).toMatch(/every role in globals\.sql exists/);
    expect(plan).toMatch(/readable by pg_restore/);
    expect(plan).toMatch(/swap: restore "scholaria" into new database "scholaria_restoring_20260101_020000"/);
    expect(plan).toMatch(/verify 5 table row counts/);
    expect(await databaseNames(a)).toEqual(before);
    expect(await tableChecksums(a, DB)).toEqual(data);
  });

  it('a row count mismatch fails the swap restore and leaves the live database untouched', async () => {
    const meta = postgresBackupMetadataSchema.parse(component.metadata);
    meta.databases[0]!.tables.find((t) => t.name === 'users')!.rows += 1;
    const tampered = { ...component, metadata: meta as unknown as Record<string, unknown> };
    const before = await databaseNames(a);
    const data = await tableChecksums(a, DB);
    const error = await source(a)
      .restore(createDirRestoreContext(backup, tampered))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringMatching(/"app"\."users": 300 rows, expected 301/) });
    expect((error as { hint: string }).hint).toMatch(/left untouched/);
    expect(await databaseNames(a)).toEqual(before);
    expect(await tableChecksums(a, DB)).toEqual(data);
  });

  it('verify() reports tables whose counts differ from the manifest', async () => {
    const res = await source(a).verify!({ component, signal: new AbortController().signal, logger: console as never });
    expect(res.ok).toBe(false);
    expect(res.mismatches).toEqual([
      'database "scholaria": "rag"."chunks": 0 rows, expected 2000',
      'database "scholaria": "rag"."contexts": 0 rows, expected 200',
    ]);
  });

  it('the stored dump restores by hand with zstd and pg_restore alone', async () => {
    const file = backup.stored.get('scholaria.dump')!.file;
    await b.createDatabase('by_hand');
    const env = { ...process.env, PGPASSWORD: b.password };
    await exec('sh', ['-c', `zstd -d < "$1" | "$2" --no-password -h 127.0.0.1 -p "$3" -U postgres --dbname=by_hand`, 'sh', file, `${b.binDir}/pg_restore`, String(b.port)], { env });
    expect(await tableChecksums(b, 'by_hand')).toEqual(originalData);
  });

  it('check() reports versions and tools', async () => {
    const res = await source(a).check();
    expect(res.problems).toEqual([]);
    expect(res.ok).toBe(true);
    expect(res.details).toMatchObject({ serverVersion: expect.any(String), databases: [DB], canReadRolePasswords: true, pg_dump: { version: expect.any(String) } });
  });
});
