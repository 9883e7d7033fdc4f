import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError } from '@scholaria/backup-core';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createDirBackupContext, createDirRestoreContext } from './helpers/dir-context.js';

const exec = promisify(execFile);

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await exec('openssl', args, { cwd });
}

/** A CA and a server certificate for 127.0.0.1 signed by it, plus an unrelated CA. */
async function makeCertificates(dir: string): Promise<void> {
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca');
  await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName = IP:127.0.0.1\n');
  await openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext');
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=other-ca');
}

describe('postgres source over TLS (server accepts TLS connections only)', () => {
  let server: PostgresServer;
  let temp: TempDir;

  beforeAll(async () => {
    [server, temp] = await Promise.all([startPostgres(), makeTempDir('scholaria-pg-tls-')]);
    await makeCertificates(temp.path);
    await server.createDatabase('secure');
    await server.query('secure', 'CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 10)');
    for (const f of ['server.crt', 'server.key']) {
      await copyFile(join(temp.path, f), join(server.dataDir, f));
      await chmod(join(server.dataDir, f), 0o600);
      if (process.getuid?.() === 0) await exec('chown', ['postgres:postgres', join(server.dataDir, f)]);
    }
    const hba = join(server.dataDir, 'pg_hba.conf');
    const rules = (await readFile(hba, 'utf8')).replace(/^host(\s)/gm, 'hostssl$1');
    await writeFile(hba, rules);
    await server.query('postgres', 'ALTER SYSTEM SET ssl = on');
    await server.query('postgres', 'SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 300));
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), temp?.remove()]);
  });

  it('backs up and restores with sslmode verify-full and the CA file passed to pg and the tools', async () => {
    const source = createPostgresSource({ url: server.url('secure'), sslmode: 'verify-full', sslrootcert: join(temp.path, 'ca.crt') });
    expect((await source.check()).problems).toEqual([]);
    const backup = createDirBackupContext(join(temp.path, 'set'));
    const result = await source.backup(backup.ctx);
    expect(backup.stored.has('secure.dump')).toBe(true);
    const res = await source.restore(createDirRestoreContext(backup, backup.component(result), { options: { mode: 'new-database', targetDatabase: 'copy' } }));
    expect(res.metadata).toMatchObject({ databases: [{ target: 'copy', tablesVerified: 1 }] });
  });

  it('takes TLS settings from the url too', async () => {
    const url = `${server.url('secure')}?sslmode=verify-ca&sslrootcert=${encodeURIComponent(join(temp.path, 'ca.crt'))}`;
    expect((await createPostgresSource({ url }).check()).ok).toBe(true);
  });

  it('fails clearly without TLS, and with a CA that did not sign the server certificate', async () => {
    const plain = await createPostgresSource({ url: server.url('secure'), sslmode: 'disable' })
      .backup(createDirBackupContext(join(temp.path, 'plain')).ctx)
      .catch((e: unknown) => e);
    expect(BackupError.isInstance(plain)).toBe(true);
    expect((plain as BackupError).message).toMatch(/no encryption|pg_hba/);
    const wrongCa = await createPostgresSource({ url: server.url('secure'), sslmode: 'verify-full', sslrootcert: join(temp.path, 'other-ca.crt') })
      .backup(createDirBackupContext(join(temp.path, 'wrong')).ctx)
      .catch((e: unknown) => e);
    expect((wrongCa as BackupError).code).toBe('CONNECTION_FAILED');
    expect((wrongCa as BackupError).hint).toMatch(/sslrootcert/);
  });
});
