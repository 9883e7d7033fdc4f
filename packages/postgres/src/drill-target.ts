import {
  BackupError,
  ConfigError,
  DRILL_ID_PATTERN,
  type DrillCheck,
  type DrillSweepContext,
  type DrillTarget,
  type DrillTargetContext,
  type JoinSide,
} from '@scholaria/backup-core';
import type pg from 'pg';
import { parseBackupMetadata } from './backup-metadata.js';
import { quoteIdent, resolveConnection, type DbSession } from './connection.js';
import { parsePostgresOptions, type PostgresSourceOptions, type ResolvedPostgresOptions } from './postgres-options.js';
import { createPostgresSource } from './postgres-source.js';
import { createRuntime, type Runtime } from './runtime.js';

export interface PostgresDrillOptions {
  /** Name of the throwaway databases: `<prefix>_<drill id>`. Default 'scholaria_drill'. */
  databasePrefix?: string;
  /** Run amcheck's bt_index_check on the restored B-tree indexes where the extension is available. Default true. */
  amcheck?: boolean;
  /**
   * A separate PostgreSQL server for drills (`postgresql://user:password@drill-host:5432/postgres`):
   * the drill database is created, checked and dropped there, and the live server is only read
   * by backups. Its database is the one the drill connects to for CREATE/DROP DATABASE (default
   * `postgres`). The user needs CREATEDB there. Default: the live server.
   */
  url?: string;
}

/** Both ints of the advisory lock a running drill holds on its server: 'scholaria-backup drill' and the database name. */
const LEASE_SQL = "hashtext('scholaria-backup drill'), hashtext($1)";

/** The connection options of a separate drill server: its URL, with the live source's tools and timeouts. */
function drillServerOptions(live: ResolvedPostgresOptions, url: string): PostgresSourceOptions {
  const problems: string[] = [];
  if (!/^postgres(ql)?:\/\//.test(url) || !URL.canParse(url)) problems.push('url: must be a postgres:// or postgresql:// URL (percent-encode special characters in the password)');
  if (problems.length) throw new ConfigError('createPostgresDrillTarget: invalid options', problems, { component: live.name });
  const pick = <K extends keyof ResolvedPostgresOptions>(...keys: K[]) => Object.fromEntries(keys.filter((k) => live[k] !== undefined).map((k) => [k, live[k]]));
  const database = new URL(url).pathname.replace(/^\//, '');
  return {
    name: live.name,
    url,
    maintenanceDatabase: database ? decodeURIComponent(database) : 'postgres',
    ...pick('binDir', 'pgDumpPath', 'pgRestorePath', 'pgDumpallPath', 'tempDir', 'connectTimeoutSeconds'),
  };
}

/** `schema.table` or `table` as a quoted SQL name. */
export function qualifiedName(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new BackupError('USAGE', `table "${name}" is not a table name or schema.table`, { hint: 'Name the join table as "chunks" or "public.chunks".' });
  }
  return parts.map(quoteIdent).join('.');
}

const BATCH = 5000;

/**
 * Restore drills for the PostgreSQL source: the set is restored with the source's own
 * new-database mode into `scholaria_drill_<id>` on the same server (or on a separate drill
 * server, `url`), checked, and dropped.
 * Takes the same connection options as `createPostgresSource` (the component it drills).
 */
export function createPostgresDrillTarget(sourceOptions: PostgresSourceOptions, drillOptions: PostgresDrillOptions = {}): DrillTarget {
  const live = parsePostgresOptions(sourceOptions);
  const serverOptions = drillOptions.url ? drillServerOptions(live, drillOptions.url) : undefined;
  const resolved = serverOptions ? parsePostgresOptions(serverOptions) : live;
  const rt: Runtime = createRuntime(resolved);
  const prefix = drillOptions.databasePrefix ?? 'scholaria_drill';
  if (!/^[a-z_][a-z0-9_]{0,30}$/.test(prefix)) {
    throw new ConfigError('createPostgresDrillTarget: invalid options', [`databasePrefix: "${prefix}" must be 1-31 lower-case letters, digits and "_"`]);
  }
  const component = live.name;
  const server = `${rt.params.host}:${rt.params.port}`;
  if (serverOptions) {
    const l = resolveConnection(live);
    if (!live.client && `${l.host}:${l.port}` === server) {
      throw new ConfigError('createPostgresDrillTarget: invalid options', [`url: ${server} is the live server; give a separate drill server, or leave url unset to drill beside the live databases`], { component });
    }
  }
  /** The restore goes through a source of its own when the drill server is not the live one. */
  const drillSource = serverOptions ? createPostgresSource(serverOptions) : undefined;
  /** Sessions holding the advisory lock of a running drill: the sweep of another process leaves its database alone. */
  const leases = new Map<string, DbSession>();
  const dbName = (drillId: string) => `${prefix}_${drillId}`;
  const namePattern = new RegExp(`^${prefix}_(\\d{8}_\\d{6}_[0-9a-f]{4})$`);

  async function maintenance(): Promise<DbSession> {
    return await rt.connector.connect(resolved.maintenanceDatabase);
  }

  async function drop(names: string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const s = await maintenance();
    try {
      const major = Math.floor(Number((await s.client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v ?? 0) / 10000);
      const dropped: string[] = [];
      for (const name of names) {
        if (!namePattern.test(name)) throw new BackupError('INTERNAL', `${component}: refusing to drop "${name}": not a drill database`);
        if (major < 13) {
          await s.client.query('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()', [name]);
        }
        const r = await s.client.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [name]);
        if ((r.rowCount ?? 0) === 0) continue;
        await s.client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${major >= 13 ? ' WITH (FORCE)' : ''}`);
        dropped.push(`postgres database "${name}"${serverOptions ? ` on drill server ${server}` : ''}`);
      }
      return dropped;
    } finally {
      await s.release();
    }
  }

  async function withDrillDb<T>(drillId: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const s = await rt.connector.connect(dbName(drillId));
    try {
      return await fn(s.client);
    } finally {
      await s.release();
    }
  }

  async function countCheck(ctx: DrillTargetContext): Promise<DrillCheck> {
    const meta = parseBackupMetadata(ctx.component.metadata, component);
    const db = meta.databases[0]!;
    const exact = db.tables.filter((t) => t.exact);
    if (exact.length === 0) {
      return { name: 'counts', component, status: 'skipped', message: `the manifest has no exact row counts for "${db.name}"` };
    }
    return await withDrillDb(ctx.drillId, async (c) => {
      const mismatches: string[] = [];
      let bad = 0;
      let expectedRows = 0;
      let restoredRows = 0;
      for (const t of exact) {
        ctx.signal.throwIfAborted();
        expectedRows += t.rows;
        let n: number | undefined;
        try {
          n = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`)).rows[0]?.n);
          restoredRows += n;
        } catch (error) {
          bad++;
          if (mismatches.length < ctx.maxMismatches) mismatches.push(`${t.schema}.${t.name}: ${(error as Error).message}`);
          continue;
        }
        if (n !== t.rows) {
          bad++;
          if (mismatches.length < ctx.maxMismatches) mismatches.push(`${t.schema}.${t.name}: ${n} rows restored, the manifest has ${t.rows}`);
        }
      }
      return {
        name: 'counts',
        component,
        status: bad === 0 ? 'pass' : 'fail',
        message: bad === 0
          ? `${exact.length} tables, ${restoredRows} rows: every count matches the manifest`
          : `${bad} of ${exact.length} tables differ from the manifest (${restoredRows} rows restored, ${expectedRows} recorded)`,
        figures: { tables: exact.length, mismatchedTables: bad, expectedRows, restoredRows },
        ...(bad ? { mismatches } : {}),
      };
    });
  }

  async function amcheck(ctx: DrillTargetContext): Promise<DrillCheck> {
    return await withDrillDb(ctx.drillId, async (c) => {
      const available = (await c.query("SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'amcheck'")).rowCount ?? 0;
      if (!available) return { name: 'amcheck', component, status: 'skipped', message: 'the amcheck extension is not installed on this server (postgresql-contrib)' };
      try {
        // The drill database is throwaway: the extension goes away with it.
        await c.query('CREATE EXTENSION IF NOT EXISTS amcheck');
      } catch (error) {
        return { name: 'amcheck', component, status: 'skipped', message: `amcheck cannot be enabled by this user: ${(error as Error).message}` };
      }
      const indexes = (
        await c.query<{ oid: number; name: string }>(
          `SELECT c.oid::int AS oid, n.nspname || '.' || c.relname AS name
             FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_am am ON am.oid = c.relam
            WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
              AND c.relpersistence <> 't'
            ORDER BY 2`,
        )
      ).rows;
      const mismatches: string[] = [];
      let corrupt = 0;
      for (const ix of indexes) {
        ctx.signal.throwIfAborted();
        try {
          await c.query('SELECT bt_index_check($1::regclass, true)', [ix.oid]);
        } catch (error) {
          corrupt++;
          if (mismatches.length < ctx.maxMismatches) mismatches.push(`${ix.name}: ${(error as Error).message}`);
        }
      }
      return {
        name: 'amcheck',
        component,
        status: corrupt ? 'fail' : 'pass',
        message: corrupt ? `${corrupt} of ${indexes.length} B-tree indexes fail bt_index_check` : `${indexes.length} B-tree indexes pass bt_index_check (heapallindexed)`,
        figures: { indexes: indexes.length, corrupt },
        ...(corrupt ? { mismatches } : {}),
      };
    });
  }

  return {
    specVersion: 'v1',
    component,
    ...(drillSource ? { source: drillSource } : {}),
    describe: (ctx) => `postgres database "${dbName(ctx.drillId)}"${serverOptions ? ` on drill server ${server}` : ''}`,
    async prepare(ctx) {
      if (!DRILL_ID_PATTERN.test(ctx.drillId)) throw new BackupError('INTERNAL', `${component}: drill id "${ctx.drillId}" is malformed`);
      const meta = parseBackupMetadata(ctx.component.metadata, component);
      if (meta.databases.length > 1) {
        throw new BackupError('USAGE', `${component}: set ${ctx.setId} holds ${meta.databases.length} databases; a drill restores one`, {
          component,
          hint: 'Back up the Scholaria database on its own (one database per postgres component) to drill it.',
        });
      }
      // The lease: a session holding an advisory lock named after the drill database, until
      // cleanup. The server frees it when this process dies, which is how a sweep tells a killed
      // drill's leftovers from the database of a drill still running elsewhere.
      if (!leases.has(ctx.drillId)) {
        const s = await maintenance();
        try {
          const ok = (await s.client.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${LEASE_SQL}) AS ok`, [dbName(ctx.drillId)])).rows[0]?.ok === true;
          if (!ok) throw new BackupError('LOCKED', `${component}: another session holds the drill lease of "${dbName(ctx.drillId)}"`, { component, hint: 'Run the drill again: it takes a new drill id.' });
        } catch (error) {
          await s.release();
          throw error;
        }
        leases.set(ctx.drillId, s);
      }
      // new-database refuses a name that exists, so the live databases are never written.
      return { mode: 'new-database', targetDatabase: dbName(ctx.drillId), globals: false, keepPrevious: true, verifyRowCounts: false };
    },
    async check(ctx) {
      const checks = [await countCheck(ctx)];
      if (drillOptions.amcheck ?? true) checks.push(await amcheck(ctx));
      return checks;
    },
    async *joinKeys(ctx: DrillTargetContext, side: JoinSide) {
      if (!side.table) throw new BackupError('USAGE', `${component}: the join needs a table (and column) on the postgres side`);
      const sql = `SELECT ${quoteIdent(side.column ?? 'id')}::text AS k FROM ${qualifiedName(side.table)} WHERE ${quoteIdent(side.column ?? 'id')} IS NOT NULL`;
      const s = await rt.connector.connect(dbName(ctx.drillId));
      try {
        // A cursor keeps memory flat however many chunks there are.
        await s.client.query('BEGIN READ ONLY');
        await s.client.query(`DECLARE drill_keys NO SCROLL CURSOR FOR ${sql}`);
        for (;;) {
          const rows = (await s.client.query<{ k: string }>(`FETCH ${BATCH} FROM drill_keys`)).rows;
          for (const r of rows) yield r.k;
          if (rows.length < BATCH) break;
        }
        await s.client.query('COMMIT');
      } finally {
        await s.release();
      }
    },
    async cleanup(ctx) {
      try {
        return await drop([dbName(ctx.drillId)]);
      } finally {
        const lease = leases.get(ctx.drillId);
        leases.delete(ctx.drillId);
        await lease?.release();
      }
    },
    async sweep(ctx: DrillSweepContext) {
      const s = await maintenance();
      const dropped: string[] = [];
      try {
        const names = (await s.client.query<{ datname: string }>('SELECT datname FROM pg_catalog.pg_database ORDER BY 1')).rows
          .map((r) => r.datname)
          .filter((n) => namePattern.test(n) && n !== (ctx.except ? dbName(ctx.except) : undefined));
        for (const name of names) {
          ctx.signal.throwIfAborted();
          // Only a database whose drill is gone: its owner's session no longer holds the lease.
          const free = (await s.client.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${LEASE_SQL}) AS ok`, [name])).rows[0]?.ok === true;
          if (!free) {
            ctx.logger.info(`${component}: drill database "${name}" belongs to a drill that is still running; left alone`);
            continue;
          }
          try {
            dropped.push(...(await drop([name])));
          } finally {
            await s.client.query(`SELECT pg_catalog.pg_advisory_unlock(${LEASE_SQL})`, [name]);
          }
        }
      } finally {
        await s.release();
      }
      return dropped;
    },
    async close() {
      for (const lease of leases.values()) await lease.release();
      leases.clear();
      await drillSource?.close?.();
    },
  };
}
