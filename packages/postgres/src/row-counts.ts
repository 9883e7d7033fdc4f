import type pg from 'pg';
import { countTablesByOid, largeObjectCount, tableDataOids, type TableCount } from './database-info.js';
import type { ResolvedPostgresOptions } from './postgres-options.js';

/** Ordinary tables outside system schemas and extensions: the fallback when the TOC cannot be read. */
async function userTableOids(client: pg.ClientBase): Promise<number[]> {
  const r = await client.query<{ oid: number }>(
    `SELECT c.oid::int8 AS oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`,
  );
  return r.rows.map((x) => Number(x.oid));
}

function hasFilters(o: ResolvedPostgresOptions): boolean {
  return o.schemas.length > 0 || o.tables.length > 0 || o.excludeSchemas.length > 0 || o.excludeTables.length > 0 || o.excludeTableData.length > 0;
}

export interface RowCountInput {
  client: pg.ClientBase;
  options: ResolvedPostgresOptions;
  db: string;
  /** pg_restore --list output of this dump, when it could be read. */
  toc: string | undefined;
  /** Whether pg_dump shares the counting transaction's snapshot (counts are exact only then). */
  snapshot: boolean;
  warnings: string[];
}

/**
 * Counts the rows of the tables whose data is in the dump (from its TOC), or of every user
 * table when the TOC could not be read and no filter narrows the dump.
 */
export async function collectRowCounts({ client, options: o, db, toc, snapshot, warnings }: RowCountInput): Promise<TableCount[]> {
  if (o.rowCounts === 'off') return [];
  let oids: number[];
  if (toc !== undefined) oids = tableDataOids(toc);
  else {
    if (hasFilters(o)) {
      warnings.push(`${db}: could not list the dump's contents with pg_restore; row counts skipped because filters are set`);
      return [];
    }
    warnings.push(`${db}: could not list the dump's contents with pg_restore; row counts cover every user table`);
    oids = await userTableOids(client);
  }
  const tables = await countTablesByOid(client, oids, { mode: o.rowCounts, exactCountMaxRows: o.exactCountMaxRows });
  return snapshot ? tables : tables.map((t) => ({ ...t, exact: false }));
}

/** Large objects are counted only when the dump holds some and the count shares its snapshot. */
export async function countLargeObjects(client: pg.ClientBase, toc: string | undefined, snapshot: boolean): Promise<number | undefined> {
  if (toc && /^\d+;\s+\d+\s+\d+\s+(BLOB|LARGE OBJECT)\s/m.test(toc) && snapshot) return largeObjectCount(client);
  return undefined;
}
