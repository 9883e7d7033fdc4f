import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { registerCleanup } from './cleanup.js';
import { getFreePort } from './free-port.js';
import { makeTempDir } from './temp-dir.js';

export interface StartPostgresOptions {
  /** Major version under /usr/lib/postgresql; default the highest installed. */
  version?: number;
  /** Password of the `postgres` superuser; default a random one. */
  superuserPassword?: string;
  /**
   * postgresql.conf settings that replace the defaults below (e.g. wal_level = 'replica' and
   * archive_command for point-in-time recovery tests). Values are written as given.
   */
  settings?: Record<string, string>;
}

export interface PostgresServer {
  host: '127.0.0.1';
  port: number;
  user: 'postgres';
  password: string;
  /** Major version of the running server. */
  version: number;
  /** Connection URL with the password, for `pg` and the source's `url` option. */
  url(db?: string): string;
  /** Folder with initdb, pg_ctl, pg_dump, pg_restore... of this version. */
  binDir: string;
  dataDir: string;
  createDatabase(name: string): Promise<void>;
  query<R extends Record<string, unknown> = Record<string, unknown>>(db: string, sql: string, params?: unknown[]): Promise<R[]>;
  stop(): Promise<void>;
}

const PG_ROOT = '/usr/lib/postgresql';

/** Installed PostgreSQL major versions, highest first. */
export function installedPostgresVersions(): number[] {
  if (!existsSync(PG_ROOT)) return [];
  return readdirSync(PG_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .map(Number)
    .sort((a, b) => b - a);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** initdb and the postmaster refuse to run as root, so as root they run as the `postgres` user. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

async function run(cmd: string, args: string[], what: string): Promise<string> {
  const [c, a] = asPostgres(cmd, args);
  return await new Promise((resolve, reject) => {
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${what} failed (exit ${code}): ${out.trim()}`));
    });
  });
}

/**
 * Starts a throwaway PostgreSQL server from the system binaries: initdb in a temp dir with
 * SCRAM auth, listening on 127.0.0.1 at a free port, durability off for speed. It is stopped
 * and removed by `stop()`, or at process exit when a test failed before reaching it.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const versions = installedPostgresVersions();
  const wanted = options.version ?? versions[0];
  if (wanted === undefined) throw new Error(`no PostgreSQL installed under ${PG_ROOT}`);
  const version: number = wanted;
  const binDir = join(PG_ROOT, String(version), 'bin');
  if (!existsSync(join(binDir, 'initdb'))) {
    throw new Error(`PostgreSQL ${version} is not installed (no ${binDir}/initdb); installed: ${versions.join(', ')}`);
  }
  const password = options.superuserPassword ?? randomBytes(12).toString('hex');
  const temp = await makeTempDir('scholaria-pg-');
  const dataDir = join(temp.path, 'data');
  const socketDir = join(temp.path, 'sock');
  const pwFile = join(temp.path, 'pwfile');
  const logFile = join(temp.path, 'server.log');
  await mkdir(socketDir, { mode: 0o700 });
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  await chmod(temp.path, 0o700);
  if (isRoot) spawnSync('chown', ['-R', 'postgres:postgres', temp.path]);

  let pid: number | undefined;
  let stopped = false;
  const unregister = registerCleanup(() => {
    // Runs synchronously at exit: signal the postmaster directly (SIGQUIT = immediate
    // shutdown) since the temp dir's own cleanup may already have removed the data dir.
    if (pid !== undefined && !stopped) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    rmSync(temp.path, { recursive: true, force: true });
  });

  try {
    await run(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwFile}`, '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions'],
      'initdb',
    );
    rmSync(pwFile, { force: true });

    let lastError: unknown;
    for (let attempt = 0; attempt < 4; attempt++) {
      const port = await getFreePort();
      const settings: Record<string, string> = {
        port: String(port),
        listen_addresses: `'127.0.0.1'`,
        unix_socket_directories: `'${socketDir}'`,
        fsync: 'off',
        synchronous_commit: 'off',
        full_page_writes: 'off',
        wal_level: 'minimal',
        max_wal_senders: '0',
        max_connections: '40',
        shared_buffers: '32MB',
        log_min_messages: 'warning',
        ...options.settings,
      };
      await writeFile(
        join(dataDir, 'postgresql.auto.conf'),
        `${Object.entries(settings)
          .map(([k, v]) => `${k} = ${v}`)
          .join('\n')}\n`,
      );
      try {
        await run(join(binDir, 'pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60'], 'pg_ctl start');
        const pidText = await readFile(join(dataDir, 'postmaster.pid'), 'utf8');
        pid = Number(pidText.split('\n')[0]);
        return makeServer(port);
      } catch (error) {
        lastError = error;
        const log = await readFile(logFile, 'utf8').catch(() => '');
        // Another process took the port between getFreePort and bind: try another.
        if (!/could not bind|Address already in use/i.test(log)) break;
        await appendFile(logFile, '\n-- retrying on another port --\n').catch(() => undefined);
      }
    }
    throw lastError;
  } catch (error) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await shutdown();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`could not start PostgreSQL ${version}: ${message}${log ? `\nserver log:\n${log}` : ''}`);
  }

  async function shutdown(): Promise<void> {
    if (stopped) return;
    stopped = true;
    if (pid !== undefined && existsSync(dataDir)) {
      await run(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w'], 'pg_ctl stop').catch(() => {
        try {
          process.kill(pid as number, 'SIGQUIT');
        } catch {
          // already gone
        }
      });
    }
    unregister();
    await temp.remove();
  }

  function makeServer(port: number): PostgresServer {
    const url = (db = 'postgres') =>
      `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`;
    return {
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password,
      version,
      url,
      binDir,
      dataDir,
      async createDatabase(name: string) {
        await this.query('postgres', `CREATE DATABASE ${quoteIdent(name)}`);
      },
      async query<R extends Record<string, unknown>>(db: string, sql: string, params?: unknown[]): Promise<R[]> {
        const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: db });
        await client.connect();
        try {
          const result = await client.query(sql, params);
          // A multi-statement string yields one result per statement: return the last one's rows.
          const last = Array.isArray(result) ? result[result.length - 1] : result;
          return (last?.rows ?? []) as R[];
        } finally {
          await client.end();
        }
      },
      stop: shutdown,
    };
  }
}
