import type pg from 'pg';
import { quoteIdent, quoteLiteral } from './connection.js';

export interface TableCount {
  schema: string;
  name: string;
  rows: number;
  /** false when the count is the planner's estimate (reltuples), which restores never compare. */
  exact: boolean;
}

export interface ExtensionInfo {
  name: string;
  version: string;
  schema: string;
}

/** Database-level facts needed to recreate the database exactly (what `pg_restore --create` would do). */
export interface DatabaseInfo {
  name: string;
  sizeBytes: number;
  encoding: string;
  collate: string;
  ctype: string;
  /** 'c' libc, 'i' icu, 'b' builtin. */
  localeProvider: string;
  icuLocale: string | null;
  owner: string;
  /** aclitem[] as text, null = default privileges. */
  acl: string | null;
  /** ALTER DATABASE ... SET settings, 'name=value'. */
  settings: string[];
  comment: string | null;
  extensions: ExtensionInfo[];
}

export async function readDatabaseInfo(client: pg.ClientBase, database: string): Promise<DatabaseInfo> {
  // to_jsonb keeps this working across versions whose pg_database columns differ.
  const { rows } = await client.query<{ d: Record<string, unknown>; owner: string; encoding: string; size: string; acl: string | null; comment: string | null; settings: string[] | null }>(
    `SELECT to_jsonb(d) AS d, pg_catalog.pg_get_userbyid(d.datdba) AS owner,
            pg_catalog.pg_encoding_to_char(d.encoding) AS encoding,
            pg_catalog.pg_database_size(d.oid)::text AS size, d.datacl::text AS acl,
            pg_catalog.shobj_description(d.oid, 'pg_database') AS comment,
            (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) AS settings
       FROM pg_catalog.pg_database d WHERE d.datname = $1`,
    [database],
  );
  const row = rows[0];
  if (!row) throw new Error(`database "${database}" not found in pg_database`);
  const ext = await client.query<ExtensionInfo>(
    `SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema
       FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace ORDER BY 1`,
  );
  const d = row.d;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    name: database,
    sizeBytes: Number(row.size),
    encoding: row.encoding,
    collate: str(d.datcollate) ?? 'C',
    ctype: str(d.datctype) ?? 'C',
    localeProvider: str(d.datlocprovider) ?? 'c',
    icuLocale: str(d.daticulocale) ?? str(d.datlocale),
    owner: row.owner,
    acl: row.acl,
    settings: row.settings ?? [],
    comment: row.comment,
    extensions: ext.rows,
  };
}

/** Object ids of the tables whose data a dump holds, from `pg_restore --list` output. */
export function tableDataOids(tocListing: string): number[] {
  const oids: number[] = [];
  for (const line of tocListing.split('\n')) {
    const m = /^\d+;\s+\d+\s+(\d+)\s+TABLE DATA\s/.exec(line);
    if (m) oids.push(Number(m[1]));
  }
  return oids;
}

/** The archive version pg_dump wrote (`; Dump Version: 1.14-0`). */
export function archiveVersion(tocListing: string): string | undefined {
  return /^;\s+Dump Version:\s+(\S+)/m.exec(tocListing)?.[1];
}

export interface CountOptions {
  mode: 'exact' | 'estimate';
  /** Tables estimated above this are estimated, not counted. */
  exactCountMaxRows?: number | undefined;
}

/** Row counts of the given tables, in the caller's transaction (inside the dump's snapshot). */
export async function countTablesByOid(client: pg.ClientBase, oids: number[], o: CountOptions): Promise<TableCount[]> {
  if (oids.length === 0) return [];
  const { rows } = await client.query<{ schema: string; name: string; estimate: number }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.reltuples::float8 AS estimate
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::oid[]) AND c.relkind IN ('r', 'p')
      ORDER BY 1, 2`,
    [oids],
  );
  const out: TableCount[] = [];
  for (const t of rows) {
    const estimate = Math.max(0, Math.round(Number(t.estimate)));
    const useEstimate = o.mode === 'estimate' || (o.exactCountMaxRows !== undefined && estimate > o.exactCountMaxRows);
    if (useEstimate) {
      out.push({ schema: t.schema, name: t.name, rows: estimate, exact: false });
    } else {
      out.push({ schema: t.schema, name: t.name, rows: await countRows(client, t.schema, t.name), exact: true });
    }
  }
  return out;
}

export async function countRows(client: pg.ClientBase, schema: string, table: string): Promise<number> {
  // ONLY: a partitioned parent has no rows of its own; its partitions are counted separately.
  const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${quoteIdent(schema)}.${quoteIdent(table)}`);
  return Number(r.rows[0]?.n ?? 0);
}

export async function largeObjectCount(client: pg.ClientBase): Promise<number> {
  const r = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_catalog.pg_largeobject_metadata');
  return Number(r.rows[0]?.n ?? 0);
}

/** Compares a live database with the counts recorded at backup (exact counts only). */
export async function compareCounts(
  client: pg.ClientBase,
  expected: TableCount[],
  expectedLargeObjects: number | undefined,
): Promise<string[]> {
  const mismatches: string[] = [];
  for (const t of expected) {
    if (!t.exact) continue;
    const exists = await client.query(
      `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [t.schema, t.name],
    );
    const label = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
    if (exists.rowCount === 0) {
      mismatches.push(`${label}: table missing (expected ${t.rows} rows)`);
      continue;
    }
    const n = await countRows(client, t.schema, t.name);
    if (n !== t.rows) mismatches.push(`${label}: ${n} rows, expected ${t.rows}`);
  }
  if (expectedLargeObjects !== undefined) {
    const n = await largeObjectCount(client);
    if (n !== expectedLargeObjects) mismatches.push(`large objects: ${n}, expected ${expectedLargeObjects}`);
  }
  return mismatches;
}

/** CREATE DATABASE matching the original's encoding and locale; template0 so nothing leaks in from template1. */
export function createDatabaseSql(name: string, info: Pick<DatabaseInfo, 'encoding' | 'collate' | 'ctype' | 'localeProvider' | 'icuLocale'>, owner?: string): string {
  const parts = [`CREATE DATABASE ${quoteIdent(name)} WITH TEMPLATE = template0`, `ENCODING = ${quoteLiteral(info.encoding)}`];
  if (info.localeProvider === 'i' && info.icuLocale) {
    parts.push(`LOCALE_PROVIDER = icu ICU_LOCALE = ${quoteLiteral(info.icuLocale)}`);
  }
  parts.push(`LC_COLLATE = ${quoteLiteral(info.collate)}`, `LC_CTYPE = ${quoteLiteral(info.ctype)}`);
  if (owner) parts.push(`OWNER = ${quoteIdent(owner)}`);
  return parts.join(' ');
}

const DB_PRIVILEGES: Record<string, string> = { C: 'CREATE', T: 'TEMPORARY', c: 'CONNECT' };

/** Parses a database aclitem[] such as '{=Tc/postgres,alice=CTc/postgres}' into grantee (''=PUBLIC) and privileges ('*' marks grant option). */
export function parseAcl(acl: string): { grantee: string; privileges: string[]; grantable: string[] }[] {
  const inner = acl.replace(/^\{/, '').replace(/\}$/, '');
  if (!inner) return [];
  const items: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i] as string;
    if (ch === '"') {
      quoted = !quoted;
      cur += ch;
    } else if (ch === '\\' && quoted) {
      cur += ch + (inner[i + 1] ?? '');
      i++;
    } else if (ch === ',' && !quoted) {
      items.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) items.push(cur);
  return items.map((raw) => {
    // An item is itself double-quoted when it holds special characters.
    let item = raw;
    if (item.startsWith('"') && item.endsWith('"')) item = item.slice(1, -1).replace(/\\(.)/g, '$1');
    const slash = item.lastIndexOf('/');
    const body = slash >= 0 ? item.slice(0, slash) : item;
    const eq = body.lastIndexOf('=');
    let grantee = body.slice(0, eq);
    if (grantee.startsWith('"') && grantee.endsWith('"')) grantee = grantee.slice(1, -1).replace(/""/g, '"');
    const privs = body.slice(eq + 1);
    const privileges: string[] = [];
    const grantable: string[] = [];
    for (let i = 0; i < privs.length; i++) {
      const p = DB_PRIVILEGES[privs[i] as string];
      if (!p) continue;
      if (privs[i + 1] === '*') {
        grantable.push(p);
        i++;
      } else privileges.push(p);
    }
    return { grantee, privileges, grantable };
  });
}

/** Statements that give a new database the original's privileges, settings and comment. */
export function databasePropertiesSql(name: string, info: Pick<DatabaseInfo, 'acl' | 'comment'>, owner: string): string[] {
  const db = quoteIdent(name);
  const out: string[] = [];
  if (info.acl !== null) {
    // Start from nothing, as the saved ACL lists every grant including the owner's own.
    out.push(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`, `REVOKE ALL ON DATABASE ${db} FROM ${quoteIdent(owner)}`);
    for (const item of parseAcl(info.acl)) {
      const to = item.grantee === '' ? 'PUBLIC' : quoteIdent(item.grantee);
      if (item.privileges.length) out.push(`GRANT ${item.privileges.join(', ')} ON DATABASE ${db} TO ${to}`);
      if (item.grantable.length) out.push(`GRANT ${item.grantable.join(', ')} ON DATABASE ${db} TO ${to} WITH GRANT OPTION`);
    }
  }
  if (info.comment !== null) out.push(`COMMENT ON DATABASE ${db} IS ${quoteLiteral(info.comment)}`);
  return out;
}
