import { Readable } from 'node:stream';
import { BackupError } from '@scholaria/backup-core';
import { describe, expect, it } from 'vitest';
import { artifactBaseName, createPostgresSource, parsePgVersion, postgresOptionsSchema } from '@scholaria/backup-postgres';
import { createDatabaseSql, databasePropertiesSql, parseAcl, tableDataOids, archiveVersion } from '../src/database-info.js';
import { classifyGlobalsStatement, globalsStatements } from '../src/globals-script.js';
import { fitName } from '../src/postgres-restore.js';
import { majorFromVersionNum } from '../src/pg-tools.js';
import { redactText } from '../src/redact.js';
import { resolveConnection, childEnv } from '../src/connection.js';
import { parsePostgresOptions } from '../src/postgres-options.js';

function configError(fn: () => unknown): BackupError {
  try {
    fn();
  } catch (error) {
    if (BackupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('options', () => {
  it('accepts a url and fills the defaults', () => {
    const o = postgresOptionsSchema.parse({ url: 'postgresql://u:p@h:5432/db' });
    expect(o).toMatchObject({ name: 'postgres', compression: 'zstd', jobs: 1, globals: 'auto', rowCounts: 'exact', noOwner: false });
    expect(o.restore).toMatchObject({ mode: 'swap', keepPrevious: true, verifyRowCounts: true });
  });

  it('names the field that is wrong', () => {
    const e = configError(() => createPostgresSource({ url: 'mysql://x/y' }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(/url: must start with postgres/);
    expect(e.hint).toBeTruthy();
    expect(configError(() => createPostgresSource({ url: 'postgres://h/db', compression: 'zstd', compressionLevel: 25 })).message).toMatch(
      /compressionLevel/,
    );
    expect(configError(() => createPostgresSource({ url: 'postgres://h/db', restore: { mode: 'sideways' as never } })).message).toMatch(
      /restore\.mode/,
    );
    expect(configError(() => createPostgresSource({ url: 'postgres://h/db', jobs: 0 })).message).toMatch(/jobs/);
    expect(configError(() => createPostgresSource({ url: 'postgresql://u:p@[bad/db' })).message).toMatch(/url: is not a valid URL/);
    expect(configError(() => createPostgresSource({ url: 'postgres://h/db', unknown: 1 } as never)).message).toMatch(/unknown/i);
  });

  it('needs a database', () => {
    expect(configError(() => createPostgresSource({ url: 'postgres://h' })).message).toMatch(/database/);
    expect(configError(() => createPostgresSource({})).message).toMatch(/url/);
  });

  it('does no I/O in the factory (an unreachable host is fine until used)', () => {
    const s = createPostgresSource({ url: 'postgresql://u:p@203.0.113.1:1/db' });
    expect(s.specVersion).toBe('v1');
    expect(s.name).toBe('postgres');
  });

  it('reads the connection from a url, including TLS settings and an encoded password', () => {
    const p = resolveConnection(
      parsePostgresOptions({ url: 'postgresql://app%40x:p%2Fw%3Ad@db.example:6543/my%20db?sslmode=verify-full&sslrootcert=/etc/ca.pem' }),
    );
    expect(p).toMatchObject({ host: 'db.example', port: 6543, user: 'app@x', password: 'p/w:d', database: 'my db', sslmode: 'verify-full', sslrootcert: '/etc/ca.pem' });
  });

  it('reads the connection back from a pg Pool', async () => {
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ host: 'h', port: 5555, user: 'u', password: 'pw', database: 'd' });
    const p = resolveConnection(parsePostgresOptions({ client: pool }));
    expect(p).toMatchObject({ host: 'h', port: 5555, user: 'u', password: 'pw', database: 'd' });
    await pool.end();
  });

  it('passes the password and TLS to the tools only through the environment', () => {
    const p = resolveConnection(parsePostgresOptions({ url: 'postgresql://u@h/db', sslmode: 'require', sslrootcert: '/ca.pem' }));
    const env = childEnv(p, 's3cret');
    expect(env).toMatchObject({ PGPASSWORD: 's3cret', PGSSLMODE: 'require', PGSSLROOTCERT: '/ca.pem' });
  });
});

describe('artifact names', () => {
  it('keeps plain names and encodes everything else reversibly', () => {
    expect(artifactBaseName('scholaria')).toBe('scholaria');
    expect(artifactBaseName('my_db-2.x')).toBe('my_db-2.x');
    expect(artifactBaseName('we "q" d/b')).toBe('we%20%22q%22%20d%2Fb');
    expect(artifactBaseName('..')).toBe('%2E.');
    expect(decodeURIComponent(artifactBaseName('데이터 "베이스"'))).toBe('데이터 "베이스"');
  });
});

describe('globals script', () => {
  it('splits statements, dropping comments and psql meta-commands', async () => {
    const sql = [
      '--',
      '-- PostgreSQL database cluster dump',
      '--',
      '\\restrict abc',
      'SET default_transaction_read_only = off;',
      'CREATE ROLE alice;',
      "ALTER ROLE alice WITH LOGIN PASSWORD 'SCRAM;x';",
      "COMMENT ON ROLE \"Bob \"\"B\"\"\" IS 'line one;",
      "line two';",
      'GRANT alice TO "Bob ""B""" GRANTED BY postgres;',
      "CREATE TABLESPACE fast OWNER postgres LOCATION '/ssd';",
      '\\unrestrict abc',
    ].join('\n');
    const out: string[] = [];
    for await (const s of globalsStatements(Readable.from([sql]))) out.push(s);
    expect(out).toHaveLength(6);
    expect(out[3]).toBe("COMMENT ON ROLE \"Bob \"\"B\"\"\" IS 'line one;\nline two';");
    expect(out.map((s) => classifyGlobalsStatement(s).kind)).toEqual(['other', 'create-role', 'role', 'role', 'other', 'create-tablespace']);
    expect(classifyGlobalsStatement(out[3] as string)).toMatchObject({ role: 'Bob "B"' });
    expect(classifyGlobalsStatement('CREATE ROLE MixedCase;')).toMatchObject({ role: 'mixedcase' });
  });
});

describe('database properties', () => {
  it('parses database ACLs, PUBLIC and grant options', () => {
    expect(parseAcl('{=Tc/postgres,postgres=CTc/postgres,"we ""q"" x"=c*/postgres}')).toEqual([
      { grantee: '', privileges: ['TEMPORARY', 'CONNECT'], grantable: [] },
      { grantee: 'postgres', privileges: ['CREATE', 'TEMPORARY', 'CONNECT'], grantable: [] },
      { grantee: 'we "q" x', privileges: [], grantable: ['CONNECT'] },
    ]);
  });

  it('recreates a database like the original', () => {
    expect(createDatabaseSql('a"b', { encoding: 'UTF8', collate: 'C.UTF-8', ctype: 'C.UTF-8', localeProvider: 'c', icuLocale: null }, 'app')).toBe(
      `CREATE DATABASE "a""b" WITH TEMPLATE = template0 ENCODING = 'UTF8' LC_COLLATE = 'C.UTF-8' LC_CTYPE = 'C.UTF-8' OWNER = "app"`,
    );
    expect(databasePropertiesSql('d', { acl: '{=c/app,app=CTc/app,ro=c/app}', comment: "it's" }, 'app')).toEqual([
      'REVOKE ALL ON DATABASE "d" FROM PUBLIC',
      'REVOKE ALL ON DATABASE "d" FROM "app"',
      'GRANT CONNECT ON DATABASE "d" TO PUBLIC',
      'GRANT CREATE, TEMPORARY, CONNECT ON DATABASE "d" TO "app"',
      'GRANT CONNECT ON DATABASE "d" TO "ro"',
      `COMMENT ON DATABASE "d" IS 'it''s'`,
    ]);
    expect(databasePropertiesSql('d', { acl: null, comment: null }, 'app')).toEqual([]);
  });

  it('reads table data entries and the archive version from a pg_restore listing', () => {
    const listing = [
      ';     Dump Version: 1.14-0',
      '214; 1259 16386 TABLE public t postgres',
      '3338; 0 16386 TABLE DATA public t postgres',
      '3339; 0 16390 TABLE DATA my schema with spaces postgres',
      '3340; 0 16395 MATERIALIZED VIEW DATA public mv postgres',
    ].join('\n');
    expect(tableDataOids(listing)).toEqual([16386, 16390]);
    expect(archiveVersion(listing)).toBe('1.14-0');
  });
});

describe('small helpers', () => {
  it('parses tool and server versions', () => {
    expect(parsePgVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toEqual({ major: 15, text: '15.18' });
    expect(parsePgVersion('pg_dump (PostgreSQL) 9.6.24')).toEqual({ major: 9.6, text: '9.6.24' });
    expect(parsePgVersion('pg_dump (PostgreSQL) 17devel')).toEqual({ major: 17, text: '17' });
    expect(parsePgVersion('nonsense')).toBeUndefined();
    expect(majorFromVersionNum(150018)).toBe(15);
    expect(majorFromVersionNum(90624)).toBe(9.6);
  });

  it('fits names into 63 bytes without splitting a character', () => {
    expect(fitName('short', '_x')).toBe('short_x');
    const long = 'é'.repeat(40);
    const fitted = fitName(long, '_restoring_20260101_020000');
    expect(Buffer.byteLength(fitted)).toBeLessThanOrEqual(63);
    expect(fitted.endsWith('_restoring_20260101_020000')).toBe(true);
    expect(fitted).not.toContain('\uFFFD');
  });

  it('redacts secrets and their url-encoded form', () => {
    expect(redactText('password p@ss/1 or p%40ss%2F1', ['p@ss/1'])).toBe('password *** or ***');
  });
});
