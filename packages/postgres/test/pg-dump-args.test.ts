import { describe, expect, it } from 'vitest';
import { buildPgDumpallArgs, buildPgDumpArgs, buildPgRestoreArgs, conninfoForDatabase } from '@scholaria/backup-postgres';

describe('buildPgDumpArgs', () => {
  it('builds a custom-format dump with compression left to a codec', () => {
    expect(buildPgDumpArgs({ database: 'scholaria', host: 'db', port: 5432, user: 'backup', compressionLevel: 0 })).toEqual([
      '--format=custom',
      '--compress=0',
      '--host=db',
      '--port=5432',
      '--username=backup',
      '--no-password',
      "--dbname=dbname='scholaria'",
    ]);
  });

  it('leaves pg_dump its default compression when no level is given', () => {
    expect(buildPgDumpArgs({ database: 'x' }).some((a) => a.startsWith('--compress'))).toBe(false);
  });

  it('adds filters, ownership flags and the shared snapshot', () => {
    const args = buildPgDumpArgs({
      database: 'x',
      snapshot: '00000003-0000001B-1',
      schemas: ['public', 'app*'],
      excludeSchemas: ['audit'],
      tables: ['public.users'],
      excludeTables: ['public.sessions'],
      excludeTableData: ['public.logs'],
      noOwner: true,
      noAcl: true,
    });
    expect(args).toEqual(
      expect.arrayContaining([
        '--snapshot=00000003-0000001B-1',
        '--schema=public',
        '--schema=app*',
        '--exclude-schema=audit',
        '--table=public.users',
        '--exclude-table=public.sessions',
        '--exclude-table-data=public.logs',
        '--no-owner',
        '--no-acl',
      ]),
    );
    expect(args.at(-1)).toBe("--dbname=dbname='x'");
  });

  it('uses the directory format with jobs and an output folder', () => {
    const args = buildPgDumpArgs({ database: 'x', format: 'directory', file: '/tmp/d', jobs: 4, compressionLevel: 0 });
    expect(args.slice(0, 4)).toEqual(['--format=directory', '--compress=0', '--jobs=4', '--file=/tmp/d']);
  });

  it('refuses jobs without the directory format and a directory without a folder', () => {
    expect(() => buildPgDumpArgs({ database: 'x', jobs: 2 })).toThrow(/directory format/);
    expect(() => buildPgDumpArgs({ database: 'x', format: 'directory' })).toThrow(/file/);
  });

  it('passes a database name with quotes, spaces, "=" and backslashes as a quoted conninfo value', () => {
    const args = buildPgDumpArgs({ database: `we "quote" d'b = x\\y` });
    expect(args.at(-1)).toBe(`--dbname=dbname='we "quote" d\\'b = x\\\\y'`);
  });

  it('never puts a password in the arguments', () => {
    const args = buildPgDumpArgs({ database: 'x', host: 'h', user: 'u' });
    expect(args.join(' ')).not.toMatch(/password=|PGPASSWORD/);
    expect(args).toContain('--no-password');
  });

  it('rejects NUL bytes', () => {
    expect(() => buildPgDumpArgs({ database: 'a\0b' })).toThrow(/NUL/);
  });
});

describe('buildPgRestoreArgs', () => {
  it('restores in place from stdin in one transaction', () => {
    expect(buildPgRestoreArgs({ database: 'x', clean: true, ifExists: true, singleTransaction: true, port: 5433 })).toEqual([
      '--clean',
      '--if-exists',
      '--single-transaction',
      '--port=5433',
      '--no-password',
      "--dbname=dbname='x'",
    ]);
  });

  it('restores a file with jobs and stops at the first error', () => {
    expect(buildPgRestoreArgs({ database: 'x', file: '/tmp/a.dump', jobs: 4, exitOnError: true, noOwner: true })).toEqual([
      '--exit-on-error',
      '--jobs=4',
      '--no-owner',
      '--no-password',
      "--dbname=dbname='x'",
      '/tmp/a.dump',
    ]);
  });

  it('restores a directory archive', () => {
    expect(buildPgRestoreArgs({ database: 'x', format: 'directory', file: '/tmp/d', jobs: 2 })).toEqual([
      '--format=directory',
      '--jobs=2',
      '--no-password',
      "--dbname=dbname='x'",
      '/tmp/d',
    ]);
  });

  it('lists an archive without connecting', () => {
    expect(buildPgRestoreArgs({ list: true })).toEqual(['--list']);
    expect(buildPgRestoreArgs({ list: true, file: '/tmp/x' })).toEqual(['--list', '/tmp/x']);
  });

  it('refuses combinations pg_restore rejects', () => {
    expect(() => buildPgRestoreArgs({ database: 'x', file: 'f', jobs: 2, singleTransaction: true })).toThrow(/single-transaction/);
    expect(() => buildPgRestoreArgs({ database: 'x', jobs: 2 })).toThrow(/stdin/);
    expect(() => buildPgRestoreArgs({ database: 'x', ifExists: true })).toThrow(/--clean/);
    expect(() => buildPgRestoreArgs({})).toThrow(/database/);
  });
});

describe('buildPgDumpallArgs', () => {
  it('dumps globals, connecting to the given database', () => {
    expect(buildPgDumpallArgs({ host: 'h', user: 'u', database: 'scholaria' })).toEqual([
      '--globals-only',
      '--host=h',
      '--username=u',
      '--no-password',
      "--database=dbname='scholaria'",
    ]);
  });

  it('can leave role passwords out', () => {
    expect(buildPgDumpallArgs({ noRolePasswords: true })).toEqual(['--globals-only', '--no-role-passwords', '--no-password']);
  });
});

describe('conninfoForDatabase', () => {
  it('quotes single quotes and backslashes', () => {
    expect(conninfoForDatabase("a'b\\c")).toBe("dbname='a\\'b\\\\c'");
  });
});
