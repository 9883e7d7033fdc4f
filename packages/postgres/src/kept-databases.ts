import { BackupError } from '@scholaria/backup-core';
import { quoteIdent } from './connection.js';
import type { Runtime } from './runtime.js';

/** A database a swap restore kept as `<db>_before_<YYYYMMDD_HHMMSS>`. */
export interface KeptDatabase {
  name: string;
  /** The database it was before the swap. */
  of: string;
  bytes: number;
}

const KEPT = /^(.+)_before_\d{8}_\d{6}$/;

/** The `<db>_before_<stamp>` databases of the configured databases, oldest first. */
export async function listKeptDatabases(rt: Runtime): Promise<KeptDatabase[]> {
  const dbs = new Set(await rt.databases());
  const session = await rt.connector.connect(rt.options.maintenanceDatabase);
  try {
    const r = await session.client.query<{ datname: string; bytes: string }>(
      "SELECT datname, pg_catalog.pg_database_size(datname)::text AS bytes FROM pg_catalog.pg_database WHERE datname LIKE '%\\_before\\_%' ORDER BY datname",
    );
    return r.rows
      .map((row) => ({ row, m: KEPT.exec(row.datname) }))
      .filter((x) => x.m && dbs.has(x.m[1]!))
      .map(({ row, m }) => ({ name: row.datname, of: m![1]!, bytes: Number(row.bytes) }));
  } finally {
    await session.release();
  }
}

/** Drops one kept database; refuses any name that is not one (never a live database). */
export async function dropKeptDatabase(rt: Runtime, name: string): Promise<void> {
  const kept = await listKeptDatabases(rt);
  if (!kept.some((k) => k.name === name)) {
    throw new BackupError('USAGE', `${rt.options.name}: "${name}" is not a database kept by a swap restore`, { component: rt.options.name });
  }
  const session = await rt.connector.connect(rt.options.maintenanceDatabase);
  try {
    await session.client.query(`DROP DATABASE ${quoteIdent(name)}`);
  } finally {
    await session.release();
  }
}
