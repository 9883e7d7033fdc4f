import type { SourceBackupContext } from '@scholaria/backup-core';
import type pg from 'pg';
import type { DatabaseMetadata } from './backup-metadata.js';
import type { DbSession } from './connection.js';
import type { CompressionPlan } from './compression-plan.js';
import { archiveVersion, readDatabaseInfo, type DatabaseInfo, type TableCount } from './database-info.js';
import { startDirectoryDump } from './directory-dump.js';
import { wrapFailure } from './dump-failure.js';
import { planDump, type DumpJob, type RunningDump } from './dump-plan.js';
import type { Preflight } from './preflight.js';
import { collectRowCounts, countLargeObjects } from './row-counts.js';
import type { Runtime } from './runtime.js';
import { startStreamedDump } from './streamed-dump.js';

export interface DumpOutcome {
  meta: DatabaseMetadata;
  warnings: string[];
}

/** Opens the transaction whose snapshot pg_dump shares, so counts and dump see the same data. */
async function openSnapshot(client: pg.ClientBase): Promise<string | undefined> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const r = await client.query<{ s: string }>('SELECT pg_catalog.pg_export_snapshot() AS s');
    return r.rows[0]?.s;
  } catch {
    // Exporting is not possible everywhere (e.g. some poolers, old standbys): count without it.
    await client.query('ROLLBACK');
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return undefined;
  }
}

function startDump(job: DumpJob): Promise<RunningDump> {
  return job.format === 'custom' ? startStreamedDump(job) : startDirectoryDump(job);
}

interface Counted {
  info: DatabaseInfo;
  tables: TableCount[];
  toc: string | undefined;
}

/**
 * Waits for the dump and, beside it, the database's facts and the row counts of what it holds
 * (both read in the dump's snapshot, while pg_dump runs); the dump's failure wins.
 */
async function settleDumpAndCounts(job: DumpJob, running: RunningDump, client: pg.ClientBase, snapshot: boolean, warnings: string[]): Promise<Counted> {
  const counting = (async () => {
    const info = await readDatabaseInfo(client, job.db);
    const toc = await running.listing;
    const tables = await collectRowCounts({ client, options: job.rt.options, db: job.db, toc, snapshot, warnings });
    return { info, tables, toc };
  })();
  const [dumpResult, countResult] = await Promise.allSettled([running.dumped, counting]);
  if (dumpResult.status === 'rejected') throw dumpResult.reason;
  if (countResult.status === 'rejected') throw wrapFailure(job.rt, countResult.reason, job.ctx.signal);
  return countResult.value;
}

interface DumpFacts {
  job: DumpJob;
  info: DatabaseInfo;
  tables: TableCount[];
  largeObjects: number | undefined;
  snapshot: boolean;
  toc: string | undefined;
}

/** The manifest's record of one database; field order is kept as stored by earlier versions. */
function databaseMetadata({ job, info, tables, largeObjects, snapshot, toc }: DumpFacts): DatabaseMetadata {
  const version = toc ? archiveVersion(toc) : undefined;
  return {
    name: job.db,
    artifact: job.artifact,
    format: job.format,
    sizeBytes: info.sizeBytes,
    encoding: info.encoding,
    collate: info.collate,
    ctype: info.ctype,
    localeProvider: info.localeProvider,
    icuLocale: info.icuLocale,
    owner: info.owner,
    acl: info.acl,
    settings: info.settings,
    comment: info.comment,
    extensions: info.extensions,
    tables,
    ...(largeObjects !== undefined ? { largeObjects } : {}),
    snapshot,
    ...(version ? { archiveVersion: version } : {}),
  };
}

/**
 * Dumps one database inside a read-only transaction whose snapshot pg_dump shares, counting
 * its rows alongside; the connection is released (and the transaction rolled back) on failure.
 */
export async function dumpDatabase(
  rt: Runtime,
  ctx: SourceBackupContext,
  pre: Preflight,
  env: NodeJS.ProcessEnv,
  db: string,
  plan: CompressionPlan,
  /** An open connection to `db` to use (and release) instead of a new one. */
  opened?: DbSession,
): Promise<DumpOutcome> {
  const warnings: string[] = [];
  const session = opened ?? (await rt.connector.connect(db));
  const client = session.client;
  let inTransaction = false;
  try {
    const snapshot = await openSnapshot(client);
    inTransaction = true;
    if (!snapshot) {
      warnings.push(`${db}: could not export a snapshot; row counts were taken beside the dump and are not compared on restore`);
    }
    const job = planDump({ rt, ctx, pre, env, db, plan, snapshot });
    const started = Date.now();
    const running = await startDump(job);
    const { info, tables, toc } = await settleDumpAndCounts(job, running, client, !!snapshot, warnings);
    const largeObjects = await countLargeObjects(client, toc, !!snapshot);
    await client.query('COMMIT');
    inTransaction = false;
    ctx.logger.info('pg_dump finished', { database: db, tables: tables.length, ms: Date.now() - started });
    return { meta: databaseMetadata({ job, info, tables, largeObjects, snapshot: !!snapshot, toc }), warnings };
  } finally {
    if (inTransaction) await client.query('ROLLBACK').catch(() => undefined);
    await session.release();
  }
}
