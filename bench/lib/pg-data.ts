/**
 * A Scholaria-like database (users -> topics -> contexts -> chunks with 384-dim embeddings),
 * generated on the server with generate_series so a gigabyte takes about a minute instead of
 * streaming rows from Node.
 */

export const SCHEMA_SQL = `
CREATE TABLE users (
  id bigint PRIMARY KEY,
  email text NOT NULL UNIQUE,
  display_name text NOT NULL,
  password_hash text NOT NULL,
  role text NOT NULL DEFAULT 'member',
  created_at timestamptz NOT NULL
);
CREATE TABLE topics (
  id bigint PRIMARY KEY,
  owner_id bigint NOT NULL REFERENCES users(id),
  title text NOT NULL,
  description text,
  created_at timestamptz NOT NULL
);
CREATE INDEX topics_owner_idx ON topics (owner_id);
CREATE TABLE contexts (
  id bigint PRIMARY KEY,
  topic_id bigint NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
  title text NOT NULL,
  source_type text NOT NULL,
  source_uri text NOT NULL,
  metadata jsonb NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX contexts_topic_idx ON contexts (topic_id);
CREATE TABLE chunks (
  id bigint PRIMARY KEY,
  context_id bigint NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,
  ordinal int NOT NULL,
  content text NOT NULL,
  token_count int NOT NULL,
  embedding real[] NOT NULL CHECK (cardinality(embedding) = 384),
  created_at timestamptz NOT NULL
);
CREATE INDEX chunks_context_idx ON chunks (context_id, ordinal);
`;

/** Deterministic pseudo-words (syllable soup), so the text compresses like prose rather than noise. */
export function vocabulary(count = 4096): string[] {
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'st', 'tr', 'pl', 'ch', 'sh', 'th'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ea', 'io', 'ou'];
  const codas = ['', '', 'n', 'r', 's', 't', 'l', 'nd', 'st', 'ng'];
  let seed = 0x5eed;
  const next = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const words = new Set<string>(['the', 'of', 'and', 'to', 'in', 'is', 'that', 'for', 'as', 'with', 'on', 'by', 'model', 'data', 'vector', 'query']);
  while (words.size < count) {
    const syllables = 1 + (next() % 3);
    let w = '';
    for (let s = 0; s < syllables; s++) {
      w += onsets[next() % onsets.length]! + vowels[next() % vowels.length]! + codas[next() % codas.length]!;
    }
    if (w.length <= 60) words.add(w);
  }
  return [...words];
}

/** Text value of a PostgreSQL array literal of plain lower-case words. */
function arrayLiteral(words: string[]): string {
  return `{${words.join(',')}}`;
}

// Rows per INSERT: big enough to amortise the statement, small enough to check the size often.
const CHUNK_BATCH = 20_000;
const CHUNKS_PER_CONTEXT = 40;
const CONTEXTS_PER_TOPIC = 10;
const TOPICS_PER_USER = 4;

export interface GenerateProgress {
  rows: number;
  bytes: number;
  seconds: number;
}

export interface DataShape {
  users: number;
  topics: number;
  contexts: number;
  chunks: number;
  databaseBytes: number;
  tableBytes: Record<string, number>;
}

/** Runs one statement on a fresh connection and returns the rows (the testkit's `server.query`). */
export type Query = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

export async function databaseBytes(query: Query): Promise<number> {
  const r = await query('SELECT pg_database_size(current_database())::text AS n');
  return Number(r[0]!.n);
}

export async function dataShape(query: Query): Promise<DataShape> {
  const rows = (await query(
    `SELECT t, (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I', t), false, true, '')))[1]::text AS n,
            pg_total_relation_size(t::regclass)::text AS b
       FROM unnest(ARRAY['users','topics','contexts','chunks']) AS t`,
  )) as { t: string; n: string; b: string }[];
  const by = Object.fromEntries(rows.map((r) => [r.t, { n: Number(r.n), b: Number(r.b) }]));
  return {
    users: by.users!.n,
    topics: by.topics!.n,
    contexts: by.contexts!.n,
    chunks: by.chunks!.n,
    databaseBytes: await databaseBytes(query),
    tableBytes: Object.fromEntries(Object.entries(by).map(([k, v]) => [k, v.b])),
  };
}

async function maxId(query: Query, table: string): Promise<number> {
  const r = await query(`SELECT max(id)::text AS m FROM ${table}`);
  return Number(r[0]!.m ?? 0);
}

/** Users, topics and contexts for chunk ids up to `chunkIdEnd` (each context holds ~40 chunks). */
async function ensureParents(query: Query, words: string, chunkIdEnd: number): Promise<void> {
  const contextsNeeded = Math.ceil(chunkIdEnd / CHUNKS_PER_CONTEXT);
  const topicsNeeded = Math.ceil(contextsNeeded / CONTEXTS_PER_TOPIC);
  const usersNeeded = Math.ceil(topicsNeeded / TOPICS_PER_USER);
  const [u, t, c] = [await maxId(query, 'users'), await maxId(query, 'topics'), await maxId(query, 'contexts')];
  if (usersNeeded > u) {
    await query(
      `INSERT INTO users (id, email, display_name, password_hash, role, created_at)
       SELECT g, 'user' || g || '@example.edu', initcap(w.v[1 + (g % 4000)]) || ' ' || initcap(w.v[1 + ((g * 7) % 4000)]),
              '$argon2id$v=19$m=65536,t=3,p=4$' || md5(g::text) || md5((g * 31)::text),
              CASE WHEN g % 50 = 0 THEN 'admin' ELSE 'member' END,
              timestamptz '2024-01-01' + (g % 600) * interval '1 day'
         FROM generate_series($1::bigint, $2::bigint) g, (SELECT $3::name[] AS v) w`,
      [u + 1, usersNeeded, words],
    );
  }
  if (topicsNeeded > t) {
    await query(
      `INSERT INTO topics (id, owner_id, title, description, created_at)
       SELECT g, 1 + (g - 1) / ${TOPICS_PER_USER}, initcap(w.v[1 + (g % 4000)] || ' ' || w.v[1 + ((g * 13) % 4000)]),
              'Notes and sources about ' || w.v[1 + ((g * 17) % 4000)] || ' and ' || w.v[1 + ((g * 19) % 4000)],
              timestamptz '2024-02-01' + (g % 500) * interval '1 day'
         FROM generate_series($1::bigint, $2::bigint) g, (SELECT $3::name[] AS v) w`,
      [t + 1, topicsNeeded, words],
    );
  }
  if (contextsNeeded > c) {
    await query(
      `INSERT INTO contexts (id, topic_id, title, source_type, source_uri, metadata, created_at)
       SELECT g, 1 + (g - 1) / ${CONTEXTS_PER_TOPIC}, initcap(w.v[1 + (g % 4000)] || ' ' || w.v[1 + ((g * 23) % 4000)]),
              (ARRAY['pdf','web','markdown','docx'])[1 + g % 4],
              'https://docs.example.edu/' || w.v[1 + ((g * 29) % 4000)] || '/' || g || '.pdf',
              jsonb_build_object('pages', 1 + g % 300, 'language', 'en', 'checksum', md5(g::text), 'tags', jsonb_build_array(w.v[1 + (g % 97)], w.v[1 + (g % 89)])),
              timestamptz '2024-03-01' + (g % 400) * interval '1 day'
         FROM generate_series($1::bigint, $2::bigint) g, (SELECT $3::name[] AS v) w`,
      [c + 1, contextsNeeded, words],
    );
  }
}

/**
 * One batch of chunks: 1-2 KB of words drawn from the vocabulary (skewed like prose) and a
 * 384-dim embedding of small floats, as an embedding model would give.
 */
async function insertChunks(query: Query, words: string, from: number, to: number): Promise<void> {
  await query(
    `INSERT INTO chunks (id, context_id, ordinal, content, token_count, embedding, created_at)
     SELECT g, 1 + (g - 1) / ${CHUNKS_PER_CONTEXT}, (g - 1) % ${CHUNKS_PER_CONTEXT},
            t.content, length(t.content) / 4,
            ARRAY(SELECT ((random() - 0.5) * 0.2)::real FROM generate_series(1, 384 + 0 * g)),
            timestamptz '2024-03-01' + (g % 400) * interval '1 day' + (g % 86400) * interval '1 second'
       FROM (SELECT $3::name[] AS v) w,
            generate_series($1::bigint, $2::bigint) g,
            LATERAL (SELECT array_to_string(ARRAY(
                SELECT w.v[1 + floor(4096 * random() ^ 2)::int]
                  FROM generate_series(1, 150 + (random() * 140)::int + 0 * g)), ' ')::text AS content) t`,
    [from, to, words],
  );
}

/**
 * Adds chunks (and their parents) until the database holds at least `targetBytes`. Two
 * connections insert disjoint id ranges at once, one per core.
 */
export async function growDatabase(
  query: Query,
  targetBytes: number,
  onProgress?: (p: GenerateProgress) => void,
): Promise<DataShape> {
  const words = arrayLiteral(vocabulary());
  const workers = 2;
  const t0 = performance.now();
  let next = (await maxId(query, 'chunks')) + 1;
  let bytes = await databaseBytes(query);
  let rows = 0;
  while (bytes < targetBytes) {
    const end = next + CHUNK_BATCH * workers - 1;
    await ensureParents(query, words, end);
    const from = next;
    await Promise.all(
      Array.from({ length: workers }, (_, i) => insertChunks(query, words, from + i * CHUNK_BATCH, from + (i + 1) * CHUNK_BATCH - 1)),
    );
    rows += end - next + 1;
    next = end + 1;
    bytes = await databaseBytes(query);
    onProgress?.({ rows, bytes, seconds: (performance.now() - t0) / 1000 });
  }
  await query('VACUUM ANALYZE');
  await query('CHECKPOINT');
  return await dataShape(query);
}

export async function createSchema(query: Query): Promise<void> {
  await query(SCHEMA_SQL);
}
