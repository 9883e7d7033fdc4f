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
  // xorshift32: exact in 32-bit integer arithmetic, so the list is the same on every run.
  let seed = 0x5eed1234;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const words = new Set<string>(['the', 'of', 'and', 'to', 'in', 'is', 'that', 'for', 'as', 'with', 'on', 'by', 'model', 'data', 'vector', 'query']);
  for (let attempt = 0; words.size < count; attempt++) {
    if (attempt > count * 100) throw new Error('vocabulary: the syllable lists are too small for the word count');
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

/** mulberry32: a small seeded PRNG, so every run generates the same data (and the same dump sizes). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const FLOAT4_OID = 700;
const DIMENSIONS = 384;

/**
 * Rows of `chunks` in PostgreSQL's binary COPY format: 1-2 KB of words drawn from the
 * vocabulary (skewed like prose) and a 384-dim embedding of small floats, as an embedding
 * model gives. Binary COPY skips float parsing on the server, which is what made a
 * generate_series() build of the embeddings cost ~0.3 ms a row.
 */
export function* chunkCopyData(from: number, to: number, seed: number): Generator<Buffer> {
  const words = vocabulary().map((w) => Buffer.from(w));
  const random = prng(seed);
  const rowMax = 2 + 7 * 4 + 8 + 8 + 4 + 4096 + 4 + 12 + 8 + DIMENSIONS * 8 + 8;
  const size = 1 << 20;
  let buf = Buffer.allocUnsafe(size);
  let off = 0;
  const header = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
  header.copy(buf, 0);
  off = header.length;
  for (let id = from; id <= to; id++) {
    if (off + rowMax > size) {
      yield buf.subarray(0, off);
      buf = Buffer.allocUnsafe(size);
      off = 0;
    }
    buf.writeInt16BE(7, off);
    off += 2;
    // id, context_id
    buf.writeInt32BE(8, off);
    buf.writeBigInt64BE(BigInt(id), off + 4);
    buf.writeInt32BE(8, off + 12);
    buf.writeBigInt64BE(BigInt(1 + Math.floor((id - 1) / CHUNKS_PER_CONTEXT)), off + 16);
    off += 24;
    // ordinal
    buf.writeInt32BE(4, off);
    buf.writeInt32BE((id - 1) % CHUNKS_PER_CONTEXT, off + 4);
    off += 8;
    // content: 120-230 words, about 1-2 KB
    const lenAt = off;
    off += 4;
    const start = off;
    const count = 120 + Math.floor(random() * 110);
    for (let i = 0; i < count; i++) {
      const r = random();
      const w = words[Math.floor(words.length * r * r)]!;
      if (i > 0) buf[off++] = 0x20;
      w.copy(buf, off);
      off += w.length;
    }
    const contentLength = off - start;
    buf.writeInt32BE(contentLength, lenAt);
    // token_count
    buf.writeInt32BE(4, off);
    buf.writeInt32BE(Math.round(contentLength / 4), off + 4);
    off += 8;
    // embedding real[384]: ndim, has-nulls, element oid, (size, lower bound), then elements
    buf.writeInt32BE(20 + DIMENSIONS * 8, off);
    buf.writeInt32BE(1, off + 4);
    buf.writeInt32BE(0, off + 8);
    buf.writeInt32BE(FLOAT4_OID, off + 12);
    buf.writeInt32BE(DIMENSIONS, off + 16);
    buf.writeInt32BE(1, off + 20);
    off += 24;
    for (let d = 0; d < DIMENSIONS; d++) {
      buf.writeInt32BE(4, off);
      buf.writeFloatBE((random() - 0.5) * 0.2, off + 4);
      off += 8;
    }
    // created_at: microseconds since 2000-01-01
    const ms = Date.UTC(2024, 2, 1) + (id % 400) * 86_400_000 + (id % 86_400) * 1000 - PG_EPOCH_MS;
    buf.writeInt32BE(8, off);
    buf.writeBigInt64BE(BigInt(ms) * 1000n, off + 4);
    off += 12;
  }
  buf.writeInt16BE(-1, off);
  off += 2;
  yield buf.subarray(0, off);
}

/** Streams `COPY chunks FROM STDIN (FORMAT binary)` through psql; the caller supplies how to run it. */
export type CopyIn = (sql: string, data: Iterable<Buffer>) => Promise<void>;

// Rows per COPY: big enough to amortise it, small enough to check the size often.
const COPY_BATCH = 50_000;

/**
 * Adds chunks (and their parents) until the database holds at least `targetBytes`. Node builds
 * binary COPY data on one core while the server inserts on the other.
 */
export async function growDatabase(
  query: Query,
  copyIn: CopyIn,
  targetBytes: number,
  onProgress?: (p: GenerateProgress) => void,
): Promise<DataShape> {
  const words = arrayLiteral(vocabulary());
  const t0 = performance.now();
  let next = (await maxId(query, 'chunks')) + 1;
  let bytes = await databaseBytes(query);
  const startBytes = bytes;
  let rows = 0;
  while (bytes < targetBytes) {
    // Size the batch from the bytes per row seen so far, so the last one does not overshoot much.
    const perRow = rows > 0 ? Math.max(1, (bytes - startBytes) / rows) : 4500;
    const want = Math.ceil((targetBytes - bytes) / perRow);
    const count = Math.max(1000, Math.min(COPY_BATCH, want));
    const end = next + count - 1;
    await ensureParents(query, words, end);
    await copyIn('COPY chunks FROM STDIN (FORMAT binary)', chunkCopyData(next, end, next));
    rows += count;
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
