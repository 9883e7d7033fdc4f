import type { PostgresServer, RedisServer } from '@scholaria/backup-testkit';

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A Scholaria-like table of chunks with enough text to make pg_dump take a moment. */
export async function seedPostgres(pg: PostgresServer, db: string, rows: number, tag = 'v1'): Promise<void> {
  await pg.query(
    db,
    `CREATE TABLE IF NOT EXISTS chunks (id bigint PRIMARY KEY, topic text NOT NULL, body text NOT NULL, meta jsonb);
     INSERT INTO chunks
       SELECT g, 'topic-' || (g % 97), repeat(md5(g::text || '${tag}'), 8), jsonb_build_object('n', g, 'tag', '${tag}')
         FROM generate_series(1, ${rows}) g
     ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, meta = EXCLUDED.meta;`,
  );
}

/** One hash over every row, in order: equal digests = the live data did not change. */
export async function pgDigest(pg: PostgresServer, db: string): Promise<string> {
  const rows = await pg.query<{ n: string; d: string | null }>(
    db,
    `SELECT count(*)::text AS n, md5(string_agg(c::text, '|' ORDER BY id)) AS d FROM chunks c`,
  );
  return `${rows[0]!.n}:${rows[0]!.d}`;
}

export async function databaseNames(pg: PostgresServer): Promise<string[]> {
  return (await pg.query<{ datname: string }>('postgres', 'SELECT datname FROM pg_database ORDER BY datname')).map((r) => r.datname);
}

export async function dropDatabase(pg: PostgresServer, db: string): Promise<void> {
  await pg.query('postgres', `DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
}

/** Strings, a hash and a list per key group, written by a Lua script in one round trip. */
export async function seedRedis(redis: RedisServer, keys: number, tag = 'v1'): Promise<void> {
  const script = `
    for i = 1, tonumber(ARGV[1]) do
      redis.call('SET', 'session:' .. i, string.rep(ARGV[2] .. i, 40))
      if i % 10 == 0 then redis.call('HSET', 'cache:' .. i, 'a', ARGV[2], 'b', i) end
      if i % 50 == 0 then redis.call('RPUSH', 'celery:' .. i, ARGV[2], i, 'x') end
    end
    return 1`;
  const reply = await redis.command('EVAL', script, '0', String(keys), tag);
  if (reply instanceof Error) throw reply;
}

/** Key count and a hash over every key's DUMP payload, sorted by key. */
export async function redisDigest(redis: RedisServer, db = 0): Promise<string> {
  const script = `
    redis.call('SELECT', ARGV[1])
    local ks = redis.call('KEYS', '*')
    table.sort(ks)
    local acc = ''
    for _, k in ipairs(ks) do acc = redis.sha1hex(acc .. k .. redis.call('DUMP', k)) end
    return { #ks, acc }`;
  const reply = await redis.command('EVAL', script, '0', String(db));
  if (reply instanceof Error) throw reply;
  const [n, d] = reply as [number, Buffer | string];
  return `${n}:${d.toString()}`;
}
