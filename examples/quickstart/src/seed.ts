import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** How much Scholaria-like data the demo writes. */
export interface SeedSize {
  users: number;
  topics: number;
  contexts: number;
  chunks: number;
  /** Dimensions of each chunk embedding (real[]). */
  embeddingDim: number;
  sessions: number;
  cacheEntries: number;
  queuedTasks: number;
}

export const DEMO_SIZE: SeedSize = {
  users: 200,
  topics: 40,
  contexts: 400,
  chunks: 4000,
  embeddingDim: 384,
  sessions: 300,
  cacheEntries: 500,
  queuedTasks: 50,
};

/** A tenth of the demo, for tests. */
export const SMALL_SIZE: SeedSize = {
  users: 20,
  topics: 5,
  contexts: 40,
  chunks: 400,
  embeddingDim: 384,
  sessions: 30,
  cacheEntries: 50,
  queuedTasks: 5,
};

export const TABLES = ['users', 'topics', 'contexts', 'chunks'] as const;

/**
 * Scholaria's relational data: users own topics, topics group contexts (uploaded documents),
 * contexts are split into chunks, each with its embedding stored as a float array. Values are
 * derived from the row number, so two runs produce the same data and the same checksums.
 */
export async function seedPostgres(url: string, size: SeedSize): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`
      CREATE TABLE users (
        id serial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name text NOT NULL,
        is_admin boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE topics (
        id serial PRIMARY KEY,
        owner_id integer NOT NULL REFERENCES users(id),
        title text NOT NULL,
        system_prompt text,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE contexts (
        id serial PRIMARY KEY,
        topic_id integer NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
        name text NOT NULL,
        source_type text NOT NULL CHECK (source_type IN ('pdf', 'markdown', 'faq', 'web')),
        processing_status text NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE chunks (
        id serial PRIMARY KEY,
        context_id integer NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,
        ordinal integer NOT NULL,
        content text NOT NULL,
        embedding real[] NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        UNIQUE (context_id, ordinal)
      );
      CREATE INDEX chunks_context_idx ON chunks (context_id);
    `);
    await client.query(
      `INSERT INTO users (email, name, is_admin, created_at)
       SELECT 'user' || g || '@scholaria.example', '사용자 ' || g, g = 1, timestamptz '2026-01-01 09:00+09' + g * interval '1 hour'
       FROM generate_series(1, $1::int) g`,
      [size.users],
    );
    await client.query(
      `INSERT INTO topics (owner_id, title, system_prompt, created_at)
       SELECT 1 + (g % $2::int), 'Topic ' || g || ': 강의 자료', 'Answer from the course material of topic ' || g, timestamptz '2026-02-01 09:00+09' + g * interval '1 day'
       FROM generate_series(1, $1::int) g`,
      [size.topics, size.users],
    );
    await client.query(
      `INSERT INTO contexts (topic_id, name, source_type, processing_status, created_at)
       SELECT 1 + (g % $2::int), 'document-' || g || '.pdf', (ARRAY['pdf', 'markdown', 'faq', 'web'])[1 + g % 4], 'COMPLETED', timestamptz '2026-03-01 09:00+09' + g * interval '10 minutes'
       FROM generate_series(1, $1::int) g`,
      [size.contexts, size.topics],
    );
    // The embedding subquery refers to the outer row, so PostgreSQL computes it per chunk.
    await client.query(
      `INSERT INTO chunks (context_id, ordinal, content, embedding, metadata)
       SELECT 1 + (g % $2::int), g / $2::int,
              'Chunk ' || g || ' — ' || repeat('Scholaria는 강의 자료로 답하는 RAG 앱입니다. ', 1 + g % 5),
              ARRAY(SELECT round(sin(g * 0.37 + d * 1.7)::numeric, 6)::real FROM generate_series(1, $3::int) d),
              jsonb_build_object('page', 1 + g % 40, 'tokens', 80 + g % 120)
       FROM generate_series(1, $1::int) g`,
      [size.chunks, size.contexts, size.embeddingDim],
    );
    await client.query('ANALYZE');
  } finally {
    await client.end();
  }
}

export interface TableFingerprint {
  rows: number;
  /** md5 over every row's text form in id order. */
  checksum: string;
}

/** Row count and checksum per table; a missing table is reported as `missing`. */
export async function postgresFingerprint(url: string): Promise<Record<string, TableFingerprint | 'missing'>> {
  // A fresh connection every time: a swap restore terminates the sessions of the old database.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, TableFingerprint | 'missing'> = {};
    for (const table of TABLES) {
      const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`public.${table}`]);
      if (!exists.rows[0]?.t) {
        out[table] = 'missing';
        continue;
      }
      const r = await client.query<{ n: number; sum: string }>(
        `SELECT count(*)::int AS n, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t.id)), '') AS sum FROM public.${table} t`,
      );
      out[table] = { rows: r.rows[0]!.n, checksum: r.rows[0]!.sum };
    }
    return out;
  } finally {
    await client.end();
  }
}

/** Redis logical databases the demo uses: sessions and cache in 0, the Celery broker in 1. */
export const REDIS_DBS = [0, 1] as const;

/**
 * Scholaria's Redis: login sessions with a TTL, an LLM answer and embedding cache (some with a
 * TTL, some without), and a Celery broker (the `celery` list of JSON task messages plus kombu's
 * binding set) in database 1, as Celery is often pointed at `redis://.../1`.
 */
export async function seedRedis(url: string, size: SeedSize): Promise<void> {
  const db0 = new Redis(`${url}/0`, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const db1 = new Redis(`${url}/1`, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await Promise.all([db0.connect(), db1.connect()]);
  try {
    const p0 = db0.pipeline();
    for (let i = 1; i <= size.sessions; i++) {
      const id = createHash('sha1').update(`session-${i}`).digest('hex');
      p0.set(
        `session:${id}`,
        JSON.stringify({ user_id: 1 + (i % size.users), csrf: id.slice(0, 16), created: `2026-11-26T0${i % 10}:00:00+09:00` }),
        'EX',
        3600 + i,
      );
    }
    for (let i = 1; i <= size.cacheEntries; i++) {
      const key = `cache:answer:${createHash('sha1').update(`question-${i}`).digest('hex')}`;
      if (i % 2 === 0) p0.set(key, `답변 ${i}: ${'근거 문단을 인용한 답변입니다. '.repeat(1 + (i % 4))}`, 'EX', 86_400);
      else p0.hset(`cache:embedding:${i}`, { model: 'bge-m3', dim: '1024', vector: Buffer.alloc(64, i % 256).toString('base64') });
    }
    p0.zadd('ratelimit:api', ...Array.from({ length: 20 }, (_, i) => [i * 10, `user:${i + 1}`]).flat());
    p0.set('feature:flags', JSON.stringify({ hybrid_search: true, reranker: 'bge-reranker-v2' }));
    await p0.exec();

    const p1 = db1.pipeline();
    for (let i = 1; i <= size.queuedTasks; i++) {
      const body = Buffer.from(JSON.stringify([[i], {}, { callbacks: null, errbacks: null, chain: null, chord: null }])).toString('base64');
      p1.lpush(
        'celery',
        JSON.stringify({
          body,
          'content-encoding': 'utf-8',
          'content-type': 'application/json',
          headers: { lang: 'py', task: 'backend.tasks.embed_context', id: `task-${i}`, retries: 0, root_id: `task-${i}` },
          properties: { delivery_tag: `tag-${i}`, delivery_info: { exchange: '', routing_key: 'celery' }, body_encoding: 'base64', priority: 0 },
        }),
      );
    }
    p1.sadd('_kombu.binding.celery', 'celery\x06\x16\x06\x16celery');
    p1.set('celery-task-meta-task-0', JSON.stringify({ status: 'SUCCESS', result: 42 }), 'EX', 86_400);
    await p1.exec();
  } finally {
    db0.disconnect();
    db1.disconnect();
  }
}

export interface KeyFingerprint {
  type: string;
  /** sha256 of the value's content, in a canonical order (fields and members sorted). */
  sha256: string;
  /** Whether the key expires (PTTL >= 0). */
  expires: boolean;
}

/**
 * The content of a key, independent of its internal encoding: DUMP bytes are not used because
 * a hash or set stored as a hash table serialises in bucket order, which may differ between two
 * copies holding the same data.
 */
async function valueOf(client: Redis, key: string, type: string): Promise<unknown> {
  switch (type) {
    case 'string':
      return (await client.getBuffer(key))?.toString('base64');
    case 'hash':
      return Object.entries(await client.hgetall(key)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    case 'list':
      return await client.lrange(key, 0, -1);
    case 'set':
      return (await client.smembers(key)).sort();
    case 'zset':
      return await client.zrange(key, 0, -1, 'WITHSCORES');
    case 'stream':
      return await client.xrange(key, '-', '+');
    default:
      return 'gone';
  }
}

/** Every key of the demo's databases, as `<db>/<key>`. */
export async function redisFingerprint(url: string): Promise<Map<string, KeyFingerprint>> {
  const out = new Map<string, KeyFingerprint>();
  for (const db of REDIS_DBS) {
    const client = new Redis(`${url}/${db}`, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      for (const key of keys) {
        const [type, pttl] = await Promise.all([client.type(key), client.pttl(key)]);
        const value = await valueOf(client, key, type);
        out.set(`${db}/${key}`, {
          type,
          sha256: createHash('sha256').update(JSON.stringify(value)).digest('hex'),
          expires: pttl >= 0,
        });
      }
    } finally {
      client.disconnect();
    }
  }
  return out;
}

export async function flushRedis(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    await client.flushall();
  } finally {
    client.disconnect();
  }
}

export async function dropTable(url: string, table: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP TABLE public.${table} CASCADE`);
  } finally {
    await client.end();
  }
}
