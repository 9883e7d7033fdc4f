import { createHash } from 'node:crypto';
import type { PostgresServer, QdrantSimulator, RedisServer } from '@scholaria/backup-testkit';

/** Live data as bytes: every row of every table, every Redis key's DUMP, every Qdrant point. */
export async function fingerprint(pg: PostgresServer, redis: RedisServer, qdrant: QdrantSimulator, db: string): Promise<{ digest: string; parts: Record<string, string> }> {
  const parts: Record<string, string> = await postgresFingerprint(pg, db);
  for (let d = 0; d < 16; d++) {
    // Each command runs on a fresh connection, so the database is selected inside a script.
    const keys = ((await redis.command('EVAL', `redis.call('SELECT', ARGV[1]); return redis.call('KEYS', '*')`, '0', String(d))) as (Buffer | string)[]).map(String).sort();
    const h = createHash('sha256');
    for (const k of keys) {
      const dump = await redis.command('EVAL', `redis.call('SELECT', ARGV[1]); return redis.call('DUMP', KEYS[1])`, '1', k, String(d));
      h.update(k).update('\0').update(dump as Buffer);
    }
    parts[`redis:${d}`] = `${keys.length}:${h.digest('hex')}`;
  }
  parts.qdrant = createHash('sha256').update(JSON.stringify(qdrant.collections())).digest('hex');
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  return { digest, parts };
}

/** A PostgreSQL server as bytes: its database names and every row of every table of `db`. */
export async function postgresFingerprint(pg: PostgresServer, db: string): Promise<Record<string, string>> {
  const parts: Record<string, string> = {};
  parts.databases = (await pg.query<{ d: string }>('postgres', 'SELECT datname AS d FROM pg_database ORDER BY 1')).map((r) => r.d).join(',');
  const tables = await pg.query<{ t: string }>(db, "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
  for (const { t } of tables) {
    const rows = await pg.query<{ h: string | null }>(db, `SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h FROM ${t} x`);
    parts[`pg:${t}`] = rows[0]?.h ?? 'empty';
  }
  return parts;
}
