// Child processes get only the environment they need (issue 17 F): pg_dump / pg_restore see
// PATH, HOME, locale and libpq's PG* settings, never REDIS_URL with its password, the age
// identity, S3 keys or notification URLs that the parent process holds.
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { seedPostgres } from './helpers/live-data.js';

const BIN = '/usr/lib/postgresql/15/bin';
const SECRETS: Record<string, string> = {
  REDIS_URL: 'redis://:redis-password-4c1e@127.0.0.1:6390/0',
  BACKUP_ENCRYPTION_IDENTITY: 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ',
  BACKUP_S3_SECRET_ACCESS_KEY: 's3-secret-9d2f',
  SMTP_URL: 'smtp://user:smtp-pass-77aa@mail.example:587',
};

let pg: PostgresServer;
let dir: TempDir;
const saved: Record<string, string | undefined> = {};
beforeAll(async () => {
  [pg, dir] = await Promise.all([startPostgres(), makeTempDir('faults-child-env-')]);
  await pg.query('postgres', 'CREATE DATABASE app');
  await seedPostgres(pg, 'app', 200);
  for (const [k, v] of Object.entries(SECRETS)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  process.env.LC_MESSAGES = 'C';
});
afterAll(async () => {
  for (const k of Object.keys(SECRETS)) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  await Promise.all([pg?.stop(), dir?.remove()]);
});

/** A wrapper that writes its environment to a file, then runs the real tool. */
async function wrapper(tool: string): Promise<string> {
  const path = join(dir.path, `${tool}-wrapper.sh`);
  await writeFile(path, `#!/bin/sh\nenv > "${dir.path}/env.${tool}.$$"\nexec ${BIN}/${tool} "$@"\n`);
  await chmod(path, 0o755);
  return path;
}

describe('environment of pg_dump and pg_restore', () => {
  it('holds no secret of the parent process, and still what libpq needs', async () => {
    const source = createPostgresSource({
      url: pg.url('app'),
      globals: 'off',
      pgDumpPath: await wrapper('pg_dump'),
      pgRestorePath: await wrapper('pg_restore'),
      pgDumpallPath: `${BIN}/pg_dumpall`,
    });
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: join(dir.path, 'backup') }) });
    const backup = await engine.backup();
    expect(backup.status).toBe('complete');
    const restore = await engine.restore({ ref: backup.setId });
    expect(restore.status, JSON.stringify(restore.components)).toBe('ok');
    const files = (await readdir(dir.path)).filter((f) => f.startsWith('env.'));
    expect(files.some((f) => f.startsWith('env.pg_dump.'))).toBe(true);
    expect(files.some((f) => f.startsWith('env.pg_restore.'))).toBe(true);
    for (const f of files) {
      const env = await readFile(join(dir.path, f), 'utf8');
      for (const [name, value] of Object.entries(SECRETS)) {
        expect(env, `${f} must not hold ${name}`).not.toContain(`${name}=`);
        expect(env, `${f} must not hold the value of ${name}`).not.toContain(value);
      }
      expect(env).toMatch(/^PATH=/m);
      expect(env).toMatch(/^LC_MESSAGES=C$/m);
    }
    // The runs that connect (not the --version probes) carry libpq's settings.
    const connecting = await Promise.all(files.map(async (f) => await readFile(join(dir.path, f), 'utf8')));
    expect(connecting.filter((e) => /^PGAPPNAME=scholaria-backup$/m.test(e) && /^PGCONNECT_TIMEOUT=/m.test(e)).length).toBeGreaterThanOrEqual(2);
  });
});

describe('a manifest that claims a database the configuration does not name (issue 17 item 2)', () => {
  it('is refused by set, component and field; no database is touched', async () => {
    await pg.query('postgres', 'CREATE DATABASE billing');
    await pg.query('billing', 'CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1), (2)');
    const root = join(dir.path, 'planted');
    const engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url('app'), globals: 'off' })], storage: createFsStorage({ root }) });
    const { setId } = await engine.backup();
    // The planted manifest renames the one database to "billing": a restore would replace it.
    const manifestPath = join(root, setId, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    const meta = manifest.components[0].metadata;
    meta.databases.push({ ...meta.databases[0], name: 'billing' });
    await writeFile(manifestPath, JSON.stringify(manifest));
    const result = await engine.restore({ ref: setId });
    expect(result.status).toBe('failed');
    expect(result.components[0]!.error!.message).toMatch(new RegExp(`set ${setId}, component postgres, metadata.databases names 2 databases \\("app", "billing"\\) but the configuration names one \\("app"\\)`));
    const listed = createBackupEngine({ sources: [createPostgresSource({ url: pg.url('app'), databases: ['app'], globals: 'off' })], storage: createFsStorage({ root }) });
    const again = await listed.restore({ ref: setId });
    expect(again.components[0]!.error!.message).toMatch(/names database "billing", which the configuration does not list \(databases: app\)/);
    expect(await pg.query('billing', 'SELECT count(*)::int AS n FROM invoices')).toEqual([{ n: 2 }]);
    expect((await pg.query<{ datname: string }>('postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'billing%'")).map((r) => r.datname)).toEqual(['billing']);
  });
});
