import { BackupError } from '@scholaria/backup-core';
import { findTool, majorFromVersionNum, toolVersion, type PgVersion } from './pg-tools.js';
import type { Runtime } from './runtime.js';

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
  } finally {
    await session.release();
  }
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

/** Before a backup: server reachable, version known, pg_dump present and not older than the server. */
export async function preflight(rt: Runtime, signal?: AbortSignal): Promise<Preflight> {
  const warnings: string[] = [];
  const databases = await rt.databases();
  if (databases.length === 0) {
    throw new BackupError('NOT_FOUND', `${rt.name}: no database to back up`, {
      component: rt.name,
      hint: 'name the database in the url, or in database/databases',
    });
  }
  const facts = await serverFacts(rt, databases[0] as string);
  signal?.throwIfAborted();
  const pgDumpPath = findTool('pg_dump', rt.tools, rt.name);
  const pgDumpVersion = await toolVersion(pgDumpPath, rt.name);
  if (pgDumpVersion.major < facts.serverMajor) {
    throw tooOld(rt, 'pg_dump', pgDumpVersion, pgDumpPath, facts.serverVersion, facts.serverMajor);
  }
  let pgRestore: Preflight['pgRestore'];
  try {
    const path = findTool('pg_restore', rt.tools, rt.name);
    const version = await toolVersion(path, rt.name);
    if (version.major >= pgDumpVersion.major) pgRestore = { path, version };
    else warnings.push(`pg_restore ${version.text} is older than pg_dump ${pgDumpVersion.text}: it cannot list the dump, so row counts are taken over every user table`);
  } catch {
    warnings.push('pg_restore not found: row counts are taken over every user table, not from the dump\'s contents');
  }
  return {
    ...facts,
    pgDump: { path: pgDumpPath, version: pgDumpVersion },
    pgRestore,
    warnings,
  };
}
