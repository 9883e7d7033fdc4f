import { readFile } from 'node:fs/promises';
import { BackupError, childProcessEnv } from '@scholaria/backup-core';
import pg from 'pg';
import type { PgQueryable, ResolvedPostgresOptions, SslMode } from './postgres-options.js';
import { redactText } from './redact.js';

type PasswordSource = string | (() => string | Promise<string>);

/** Where and as whom to connect; the password stays a value or a function until call time. */
export interface ConnectionParams {
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
  /** Database named by the url/fields/client (may be undefined with `databases`). */
  database: string | undefined;
  password: PasswordSource | undefined;
  sslmode: SslMode | undefined;
  sslrootcert: string | undefined;
  sslcert: string | undefined;
  sslkey: string | undefined;
  connectTimeoutSeconds: number;
}

function fromUrl(url: string): Partial<ConnectionParams> {
  const u = new URL(url);
  const q = u.searchParams;
  const dec = (s: string) => (s ? decodeURIComponent(s) : undefined);
  const path = u.pathname.replace(/^\//, '');
  const sslmode = q.get('sslmode') ?? undefined;
  return {
    host: q.get('host') ?? (u.hostname ? decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1') : undefined),
    port: q.get('port') ? Number(q.get('port')) : u.port ? Number(u.port) : undefined,
    user: q.get('user') ?? dec(u.username),
    password: q.get('password') ?? dec(u.password),
    database: q.get('dbname') ?? dec(path),
    sslmode: sslmode as SslMode | undefined,
    sslrootcert: q.get('sslrootcert') ?? undefined,
    sslcert: q.get('sslcert') ?? undefined,
    sslkey: q.get('sslkey') ?? undefined,
  };
}

/** Reads connection settings back from a pg Pool (`options`) or Client (`connectionParameters`). */
function fromClient(client: PgQueryable): Partial<ConnectionParams> {
  const c = client as unknown as {
    options?: Record<string, unknown>;
    connectionParameters?: Record<string, unknown>;
  };
  const o = c.options ?? c.connectionParameters ?? {};
  const base = typeof o.connectionString === 'string' ? fromUrl(o.connectionString) : {};
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const pw = o.password;
  return {
    ...base,
    host: str(o.host) ?? base.host,
    port: typeof o.port === 'number' ? o.port : typeof o.port === 'string' ? Number(o.port) : base.port,
    user: str(o.user) ?? base.user,
    database: str(o.database) ?? base.database,
    password: typeof pw === 'string' || typeof pw === 'function' ? (pw as PasswordSource) : base.password,
  };
}

export function resolveConnection(o: ResolvedPostgresOptions): ConnectionParams {
  const base: Partial<ConnectionParams> = o.url ? fromUrl(o.url) : o.client ? fromClient(o.client) : {};
  const fieldPassword = o.password as PasswordSource | undefined;
  return {
    host: o.host ?? base.host ?? 'localhost',
    port: o.port ?? base.port ?? 5432,
    user: o.user ?? base.user,
    database: o.database ?? base.database,
    password: fieldPassword ?? base.password,
    sslmode: o.sslmode ?? base.sslmode,
    sslrootcert: o.sslrootcert ?? base.sslrootcert,
    sslcert: o.sslcert ?? base.sslcert,
    sslkey: o.sslkey ?? base.sslkey,
    connectTimeoutSeconds: o.connectTimeoutSeconds,
  };
}

export async function readPassword(p: ConnectionParams): Promise<string | undefined> {
  if (p.password === undefined) return undefined;
  return typeof p.password === 'function' ? await p.password() : p.password;
}

/**
 * Environment for pg_dump/pg_restore/pg_dumpall: the password and TLS settings travel here, so
 * argv (visible in `ps`) never holds a secret.
 */
export function childEnv(p: ConnectionParams, password: string | undefined): NodeJS.ProcessEnv {
  // Only what the tools need plus libpq's own PG* settings: never our other secrets.
  const env: NodeJS.ProcessEnv = childProcessEnv(['PG']);
  // Inherited libpq settings could silently redirect the tools elsewhere.
  for (const key of ['PGSERVICE', 'PGSERVICEFILE', 'PGOPTIONS', 'PGDATABASE', 'PGHOSTADDR', 'PGREQUIRESSL']) delete env[key];
  if (password !== undefined) env.PGPASSWORD = password;
  if (p.sslmode) env.PGSSLMODE = p.sslmode;
  if (p.sslrootcert) env.PGSSLROOTCERT = p.sslrootcert;
  if (p.sslcert) env.PGSSLCERT = p.sslcert;
  if (p.sslkey) env.PGSSLKEY = p.sslkey;
  env.PGCONNECT_TIMEOUT = String(p.connectTimeoutSeconds);
  env.PGAPPNAME = 'scholaria-backup';
  return env;
}

async function sslConfig(p: ConnectionParams): Promise<pg.ClientConfig['ssl']> {
  const mode = p.sslmode;
  if (!mode || mode === 'disable' || mode === 'allow' || mode === 'prefer') return false;
  const ssl: Record<string, unknown> = { rejectUnauthorized: mode === 'verify-ca' || mode === 'verify-full' };
  if (p.sslrootcert) ssl.ca = await readFile(p.sslrootcert, 'utf8');
  if (p.sslcert) ssl.cert = await readFile(p.sslcert, 'utf8');
  if (p.sslkey) ssl.key = await readFile(p.sslkey, 'utf8');
  // verify-ca checks the chain but not the host name, as libpq does.
  if (mode === 'verify-ca') ssl.checkServerIdentity = () => undefined;
  return ssl as pg.ClientConfig['ssl'];
}

/** A connection to one database; `release()` ends it (or gives a pooled one back). */
export interface DbSession {
  client: pg.ClientBase;
  release(): Promise<void>;
}

export interface Connector {
  params: ConnectionParams;
  connect(database: string): Promise<DbSession>;
  /** Every secret value known so far, for redaction. */
  secrets(): string[];
}

export function createConnector(params: ConnectionParams, component: string, readyClient?: PgQueryable): Connector {
  const known = new Set<string>();
  if (typeof params.password === 'string') known.add(params.password);
  return {
    params,
    secrets: () => [...known],
    async connect(database: string): Promise<DbSession> {
      try {
        // A ready client is used for its own database; any other database gets a fresh
        // connection with the same settings.
        if (readyClient && database === params.database) {
          const rc = readyClient as unknown as {
            connect: () => Promise<unknown>;
            release?: () => void;
            totalCount?: number;
            _connected?: boolean;
            _connecting?: boolean;
          };
          if (typeof rc.totalCount === 'number') {
            const pooled = (await rc.connect()) as pg.PoolClient;
            return { client: pooled, release: async () => pooled.release() };
          }
          if (!rc._connected && !rc._connecting) await rc.connect();
          return { client: readyClient as unknown as pg.ClientBase, release: async () => undefined };
        }
        const password = await readPassword(params);
        if (password) known.add(password);
        const client = new pg.Client({
          host: params.host,
          port: params.port,
          user: params.user,
          password,
          database,
          ssl: await sslConfig(params),
          connectionTimeoutMillis: params.connectTimeoutSeconds * 1000,
          application_name: 'scholaria-backup',
        });
        // A server-side termination of an idle connection must not crash the process.
        client.on('error', () => undefined);
        await client.connect();
        return { client, release: async () => void (await client.end().catch(() => undefined)) };
      } catch (error) {
        throw connectionError(error, { database, host: params.host, port: params.port, user: params.user }, component, [
          ...known,
        ]);
      }
    },
  };
}

interface Target {
  database: string;
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
}

/** Turns a pg/socket error into a BackupError that says what was wrong and what to do. */
export function connectionError(error: unknown, t: Target, component: string, secrets: string[]): BackupError {
  const e = error as { code?: string; message?: string };
  const raw = redactText(e?.message ?? String(error), secrets);
  const where = `${t.user ?? '(default user)'}@${t.host}:${t.port}/${t.database}`;
  if (BackupError.isInstance(error)) return error;
  if (e?.code === '28P01' || e?.code === '28000' || /SASL|client password must be a string/.test(raw)) {
    return new BackupError('AUTH_FAILED', `${component}: authentication failed for ${where}: ${raw}`, {
      cause: error,
      component,
      hint: 'check the user and password (url, password option or PGPASSWORD) and pg_hba.conf on the server',
    });
  }
  if (e?.code === '3D000') {
    return new BackupError('NOT_FOUND', `${component}: database "${t.database}" does not exist on ${t.host}:${t.port}`, {
      cause: error,
      component,
      hint: 'fix the database name in the url/database option, or create the database first',
    });
  }
  const network = ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'ENETUNREACH'];
  if ((e?.code && network.includes(e.code)) || /timeout|terminated|Connection terminated/i.test(raw)) {
    return new BackupError('CONNECTION_FAILED', `${component}: cannot reach PostgreSQL at ${t.host}:${t.port}: ${raw}`, {
      cause: error,
      component,
      retryable: true,
      hint: 'check that the server runs and that host and port are right (and that a firewall lets the connection through)',
    });
  }
  if (/SSL|certificate/i.test(raw)) {
    return new BackupError('CONNECTION_FAILED', `${component}: TLS connection to ${t.host}:${t.port} failed: ${raw}`, {
      cause: error,
      component,
      hint: 'check sslmode and sslrootcert (the CA file) against the server certificate',
    });
  }
  return new BackupError('CONNECTION_FAILED', `${component}: cannot connect to ${where}: ${raw}`, {
    cause: error,
    component,
    hint: 'check the connection settings',
  });
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Same escaping as pg's escapeLiteral: E'' form when backslashes occur, whatever the server's settings. */
export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}
