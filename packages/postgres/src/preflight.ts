import { BackupError } from '@scholaria/backup-core';
import type { DbSession } from './connection.js';
import { findTool, majorFromVersionNum, toolVersion, type PgVersion, type ToolName } from './pg-tools.js';
import type { Runtime } from './runtime.js';

/** A client tool found and its version read. */
export interface FoundTool {
  path: string;
  version: PgVersion;
}

export interface Preflight {
  serverVersion: string;
  serverVersionNum: number;
  serverMajor: number;
  pgDump: { path: string; version: PgVersion };
  /** Used to list the dump's contents for the row counts; a backup works without it. */
  pgRestore: { path: string; version: PgVersion } | undefined;
  /** Superusers (and roles granted SELECT on pg_authid) can save role passwords. */
  canReadAuthid: boolean;
  warnings: string[];
  /** pg_dumpall looked up beside the others when asked for (its failure is the caller's to judge). */
  pgDumpall?: Promise<FoundTool>;
  /**
   * The connection the server facts were read on (to the first database), still open, for its
   * dump to reuse (one connection fewer before pg_dump starts). Taken at most once;
   * `release()` ends it if it was never taken.
   */
  session: ReusableSession;
}

/** A connection handed on once; whoever takes it releases it. */
export interface ReusableSession {
  /** The session when `database` is the one it is connected to and it was not taken yet. */
  take(database: string): DbSession | undefined;
  /** Ends the session unless it was taken. */
  release(): Promise<void>;
}

export interface ServerFacts {
  serverVersion: string;
  serverVersionNum: number;
  serverMajor: number;
  canReadAuthid: boolean;
}

export async function serverFacts(rt: Runtime, database: string): Promise<ServerFacts> {
  const session = await rt.connector.connect(database);
  try {
    return await readServerFacts(session);
  } finally {
    await session.release();
  }
}

async function readServerFacts(session: DbSession): Promise<ServerFacts> {
  const r = await session.client.query<{ num: string; text: string; authid: boolean }>(
    `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text,
            pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS authid`,
  );
  const row = r.rows[0] as { num: string; text: string; authid: boolean };
  const num = Number(row.num);
  return {
    serverVersion: row.text.split(' ')[0] as string,
    serverVersionNum: num,
    serverMajor: majorFromVersionNum(num),
    canReadAuthid: row.authid,
  };
}

function reusable(database: string, session: DbSession): ReusableSession {
  let held: DbSession | undefined = session;
  return {
    take(db) {
      if (db !== database || !held) return undefined;
      const s = held;
      held = undefined;
      return s;
    },
    async release() {
      const s = held;
      held = undefined;
      await s?.release();
    },
  };
}

/** Finds a tool and reads its version; a rejection (handled here) until the caller awaits it. */
function probeTool(rt: Runtime, tool: ToolName): Promise<FoundTool> {
  const probe = (async () => {
    const path = findTool(tool, rt.tools, rt.name);
    return { path, version: await toolVersion(path, rt.name) };
  })();
  probe.catch(() => undefined);
  return probe;
}

export function tooOld(rt: Runtime, tool: string, version: PgVersion, path: string, serverVersion: string, serverMajor: number): BackupError {
  return new BackupError(
    'TOOL_TOO_OLD',
    `${rt.name}: ${tool} ${version.text} (${path}) is older than the server (PostgreSQL ${serverVersion}); ${tool} cannot handle a newer server and would abort part-way`,
    {
      component: rt.name,
      hint: `install the PostgreSQL ${serverMajor} client tools or newer (e.g. apt-get install postgresql-client-${serverMajor}) and point binDir or ${tool === 'pg_dump' ? 'pgDumpPath' : 'pgRestorePath'} at them`,
      details: { tool, toolVersion: version.text, serverVersion },
    },
  );
}

/**
 * Before a backup: server reachable, version known, pg_dump present and not older than the
 * server. The tools' versions are read while the server is asked for its facts; the errors keep
 * their order (no database, then the connection, then pg_dump).
 */
export async function preflight(rt: Runtime, signal?: AbortSignal, options: { pgDumpall?: boolean } = {}): Promise<Preflight> {
  const warnings: string[] = [];
  const pgDumpProbe = probeTool(rt, 'pg_dump');
  const pgRestoreProbe = probeTool(rt, 'pg_restore');
  const pgDumpall = options.pgDumpall ? probeTool(rt, 'pg_dumpall') : undefined;
  const databases = await rt.databases();
  if (databases.length === 0) {
    throw new BackupError('NOT_FOUND', `${rt.name}: no database to back up`, {
      component: rt.name,
      hint: 'name the database in the url, or in database/databases',
    });
  }
  const database = databases[0] as string;
  const session = await rt.connector.connect(database);
  const kept = reusable(database, session);
  try {
    const facts = await readServerFacts(session);
    signal?.throwIfAborted();
    const pgDump = await pgDumpProbe;
    if (pgDump.version.major < facts.serverMajor) {
      throw tooOld(rt, 'pg_dump', pgDump.version, pgDump.path, facts.serverVersion, facts.serverMajor);
    }
    let pgRestore: Preflight['pgRestore'];
    try {
      const found = await pgRestoreProbe;
      if (found.version.major >= pgDump.version.major) pgRestore = found;
      else warnings.push(`pg_restore ${found.version.text} is older than pg_dump ${pgDump.version.text}: it cannot list the dump, so row counts are taken over every user table`);
    } catch {
      warnings.push('pg_restore not found: row counts are taken over every user table, not from the dump\'s contents');
    }
    return {
      ...facts,
      pgDump,
      pgRestore,
      warnings,
      ...(pgDumpall ? { pgDumpall } : {}),
      session: kept,
    };
  } catch (error) {
    await kept.release();
    throw error;
  }
}
