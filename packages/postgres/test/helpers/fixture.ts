import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { PostgresServer } from '@scholaria/backup-testkit';

const exec = promisify(execFile);

/** Roles the fixture grants to; cluster-wide, so they must exist before the fixture. */
export const FIXTURE_ROLES_SQL = `
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_owner') THEN CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw-123'; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_reader') THEN CREATE ROLE app_reader NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'Report "Team"') THEN CREATE ROLE "Report ""Team""" LOGIN; END IF;
END $$;
GRANT app_reader TO "Report ""Team""";
`;

/**
 * A Scholaria-like database with the awkward parts: several schemas, foreign keys, sequences,
 * a large object, jsonb, arrays, a materialized view, a trigger function, unicode text and
 * contrib extensions (pgcrypto, citext), owned by and granted to non-superuser roles.
 */
export const RICH_FIXTURE_SQL = `
CREATE EXTENSION pgcrypto;
CREATE EXTENSION citext;
CREATE SCHEMA app AUTHORIZATION app_owner;
CREATE SCHEMA rag;
CREATE SCHEMA "Odd Schema";

CREATE TABLE app.users (
  id bigserial PRIMARY KEY,
  email citext UNIQUE NOT NULL,
  name text NOT NULL,
  password_hash text NOT NULL DEFAULT crypt('pw', gen_salt('bf', 4)),
  tags text[] NOT NULL DEFAULT '{}',
  profile jsonb,
  created_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z',
  updated_at timestamptz
);
ALTER TABLE app.users OWNER TO app_owner;

CREATE TABLE app.topics (
  id serial PRIMARY KEY,
  owner_id bigint NOT NULL REFERENCES app.users(id) ON DELETE CASCADE,
  title text NOT NULL,
  scores int[] DEFAULT '{}'
);

CREATE TABLE rag.contexts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  topic_id int NOT NULL REFERENCES app.topics(id),
  body text NOT NULL,
  meta jsonb NOT NULL DEFAULT '{}'::jsonb,
  doc oid
);

CREATE SEQUENCE rag.chunk_seq START 1000 INCREMENT 7;
CREATE TABLE rag.chunks (
  id bigint PRIMARY KEY DEFAULT nextval('rag.chunk_seq'),
  context_id uuid NOT NULL REFERENCES rag.contexts(id) ON DELETE CASCADE,
  ord int NOT NULL,
  content text NOT NULL,
  embedding real[] NOT NULL
);
CREATE INDEX chunks_ctx ON rag.chunks (context_id, ord);

CREATE TABLE "Odd Schema"."Mixed ""Case"" Table" ("Weird Col" text, n numeric(12,4));

CREATE FUNCTION app.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  NEW.updated_at := '2026-06-01T00:00:00Z';
  RETURN NEW;
END
$f$;
CREATE TRIGGER users_touch BEFORE UPDATE ON app.users FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

INSERT INTO app.users (email, name, tags, profile)
SELECT 'user' || g || '@Example.org', '사용자 ' || g || ' — naïve café 🎓', ARRAY['t' || (g % 5), 'all'],
       jsonb_build_object('n', g, 'nested', jsonb_build_object('ok', g % 2 = 0), 'list', jsonb_build_array(g, 'x'))
FROM generate_series(1, 300) g;
UPDATE app.users SET name = name || ' (edited)' WHERE id % 50 = 0;

INSERT INTO app.topics (owner_id, title, scores)
SELECT 1 + (g % 300), '주제 ' || g || ' ∑ 𝛼', ARRAY[g, g * 2, g * 3] FROM generate_series(1, 120) g;

INSERT INTO rag.contexts (id, topic_id, body, meta)
SELECT md5('ctx' || g)::uuid, 1 + (g % 120), repeat('본문 text ', 20) || g, jsonb_build_object('source', 'doc' || g, 'page', g)
FROM generate_series(1, 200) g;

UPDATE rag.contexts SET doc = lo_from_bytea(0, convert_to('large object body ✓', 'UTF8')) WHERE id = md5('ctx1')::uuid;

INSERT INTO rag.chunks (context_id, ord, content, embedding)
SELECT md5('ctx' || (1 + g % 200))::uuid, g, 'chunk ' || g || ' – ελληνικά', ARRAY[g * 0.5, g * 0.25, -g]::real[]
FROM generate_series(1, 2000) g;

INSERT INTO "Odd Schema"."Mixed ""Case"" Table" VALUES ('a''b"c', 1.5), (NULL, NULL), ('tab\tline\nnew', -2.25);

CREATE MATERIALIZED VIEW rag.topic_stats AS
  SELECT t.id, t.title, count(c.id) AS contexts FROM app.topics t LEFT JOIN rag.contexts c ON c.topic_id = t.id GROUP BY t.id, t.title;

GRANT USAGE ON SCHEMA app, rag TO app_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA app, rag TO app_reader;
GRANT SELECT, INSERT ON rag.chunks TO "Report ""Team""";
REVOKE ALL ON SCHEMA "Odd Schema" FROM PUBLIC;
COMMENT ON TABLE rag.chunks IS 'RAG chunks — 청크';
`;

export async function createRichFixture(server: PostgresServer, db: string): Promise<void> {
  await server.query('postgres', FIXTURE_ROLES_SQL);
  await server.createDatabase(db);
  await server.query('postgres', `GRANT CONNECT, TEMPORARY ON DATABASE ${ident(db)} TO app_reader`);
  await server.query('postgres', `REVOKE CONNECT ON DATABASE ${ident(db)} FROM PUBLIC`);
  await server.query('postgres', `ALTER DATABASE ${ident(db)} SET work_mem = '8MB'`);
  await server.query(db, RICH_FIXTURE_SQL);
}

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `pg_dump --schema-only`, with the lines that differ between two identical databases removed. */
export async function schemaDump(server: PostgresServer, db: string): Promise<string> {
  const { stdout } = await exec(
    `${server.binDir}/pg_dump`,
    ['--schema-only', '--host=127.0.0.1', `--port=${server.port}`, '--username=postgres', `--dbname=dbname='${db.replace(/'/g, "\\'")}'`],
    { env: { ...process.env, PGPASSWORD: server.password }, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l) && !/^-- Dumped (from|by)/.test(l))
    .join('\n');
}

/** Row count and an order-independent checksum of every user table, plus sequences and large objects. */
export async function tableChecksums(server: PostgresServer, db: string): Promise<Record<string, string>> {
  const tables = await server.query<{ s: string; t: string }>(
    db,
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY 1, 2`,
  );
  const out: Record<string, string> = {};
  for (const { s, t } of tables) {
    const r = await server.query<{ n: string; h: string | null }>(
      db,
      `SELECT count(*)::text AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${ident(s)}.${ident(t)} x`,
    );
    out[`${s}.${t}`] = `${r[0]?.n}:${r[0]?.h}`;
  }
  const seqs = await server.query<{ s: string; t: string; v: string | null }>(
    db,
    `SELECT schemaname AS s, sequencename AS t, last_value::text AS v FROM pg_sequences ORDER BY 1, 2`,
  );
  for (const q of seqs) out[`seq ${q.s}.${q.t}`] = String(q.v);
  const lo = await server.query<{ h: string | null }>(
    db,
    `SELECT md5(string_agg(encode(lo_get(oid), 'hex'), '|' ORDER BY oid)) AS h FROM pg_largeobject_metadata`,
  );
  out['large objects'] = String(lo[0]?.h);
  return out;
}

/** Privileges that matter for the app: who may read what, and database-level grants. */
export async function grantsOf(server: PostgresServer, db: string): Promise<unknown> {
  const tables = await server.query(
    db,
    `SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3, 4`,
  );
  const database = await server.query(
    'postgres',
    `SELECT datacl::text AS acl, pg_get_userbyid(datdba) AS owner,
            (SELECT setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) AS settings
       FROM pg_database d WHERE datname = $1`,
    [db],
  );
  return { tables, database };
}

export async function databaseNames(server: PostgresServer): Promise<string[]> {
  const r = await server.query<{ datname: string }>('postgres', 'SELECT datname FROM pg_database ORDER BY 1');
  return r.map((x) => x.datname);
}
