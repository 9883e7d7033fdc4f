import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeTempDir,
  startPostgres,
  startQdrantSimulator,
  startRedis,
  type PostgresServer,
  type QdrantSimulator,
  type RedisServer,
  type TempDir,
} from '@scholaria/backup-testkit';
import { assertCliBuilt, exampleDir, repoRoot, run } from './helpers.js';

/**
 * Runs the "Manual recovery with standard tools only" blocks of docs/disaster-recovery.md,
 * exactly as written, on an encrypted set made by ./scripts/backup.sh, into fresh servers.
 */
async function manualRecoveryScript(page = 'disaster-recovery.md'): Promise<{ names: string[]; script: string }> {
  const doc = await readFile(join(repoRoot, 'docs', page), 'utf8');
  const re = /<!-- manual-recovery: ([a-z-]+) -->\s*```bash\n([\s\S]*?)```/g;
  const names: string[] = [];
  const blocks: string[] = [];
  for (const m of doc.matchAll(re)) {
    names.push(m[1]!);
    blocks.push(m[2]!);
  }
  return { names, script: ['set -euo pipefail', ...blocks].join('\n') };
}

describe('docs/disaster-recovery.md: manual recovery with standard tools only', () => {
  let source: { pg: PostgresServer; redis: RedisServer; qdrant: QdrantSimulator };
  let target: { pg: PostgresServer; redis: RedisServer; qdrant: QdrantSimulator };
  let temp: TempDir;

  beforeAll(async () => {
    assertCliBuilt();
    const [pg1, pg2, r1, r2, q1, q2, t] = await Promise.all([
      startPostgres(),
      startPostgres(),
      startRedis(),
      startRedis(),
      startQdrantSimulator({ apiKey: 'source-qdrant-key' }),
      startQdrantSimulator({ apiKey: 'target-qdrant-key' }),
      makeTempDir('scholaria-manual-'),
    ]);
    source = { pg: pg1, redis: r1, qdrant: q1 };
    target = { pg: pg2, redis: r2, qdrant: q2 };
    temp = t;
    await pg1.createDatabase('scholaria');
    await pg1.query(
      'scholaria',
      `CREATE ROLE scholaria_app LOGIN;
       CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
       CREATE TABLE chunks (id serial PRIMARY KEY, user_id int REFERENCES users(id), embedding real[]);
       ALTER TABLE users OWNER TO scholaria_app;
       INSERT INTO users (email) SELECT 'user' || g || '@scholaria.example' FROM generate_series(1, 40) g;
       INSERT INTO chunks (user_id, embedding) SELECT 1 + g % 40, ARRAY[g, g * 0.5]::real[] FROM generate_series(1, 300) g;`,
    );
    await r1.command('SET', 'session:abc', 'user-1', 'EX', '3600');
    await r1.command('RPUSH', 'celery', 'task-1', 'task-2');
    const headers = { 'content-type': 'application/json', 'api-key': 'source-qdrant-key' };
    await fetch(`${q1.url}/collections/chunks`, { method: 'PUT', headers, body: JSON.stringify({ vectors: { size: 4, distance: 'Cosine' } }) });
    await fetch(`${q1.url}/collections/chunks/points?wait=true`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ points: Array.from({ length: 12 }, (_, i) => ({ id: i + 1, vector: [1, 2, i, 4], payload: { chunk_id: i + 1 } })) }),
    });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([source?.pg.stop(), source?.redis.stop(), source?.qdrant.stop(), target?.pg.stop(), target?.redis.stop(), target?.qdrant.stop()]);
    await temp?.remove();
  });

  it('the documented commands restore an encrypted set into empty servers', async () => {
    const { names, script } = await manualRecoveryScript();
    expect(names).toEqual(['verify', 'postgres-globals', 'postgres-database', 'redis', 'qdrant']);

    const keyFile = join(temp.path, 'age-key.txt');
    expect((await run('age-keygen', ['-o', keyFile])).code).toBe(0);
    const recipient = (await run('age-keygen', ['-y', keyFile])).stdout.trim();
    const backupDir = join(temp.path, 'backup');
    const backup = await run(join(exampleDir, 'scripts', 'backup.sh'), [], {
      env: {
        DATABASE_URL: source.pg.url('scholaria'),
        REDIS_URL: source.redis.url(),
        QDRANT_URL: source.qdrant.url,
        QDRANT_API_KEY: 'source-qdrant-key',
        BACKUP_DIR: backupDir,
        BACKUP_LOG_DIR: join(temp.path, 'log'),
        BACKUP_ENCRYPTION_RECIPIENTS: recipient,
      },
    });
    expect(backup.stderr + backup.stdout).toMatch(/COMPLETE/);
    const [setId] = (await readdir(backupDir)).filter((d) => d.startsWith('scholaria_backup_'));
    const setDir = join(backupDir, setId!);
    expect((await readdir(join(setDir, 'postgres'))).sort()).toEqual(['globals.sql.zst.age', 'scholaria.dump.zst.age']);

    const result = await run('bash', ['-c', script], {
      cwd: temp.path,
      env: {
        SET_DIR: setDir,
        KEY_FILE: keyFile,
        PGHOST: '127.0.0.1',
        PGPORT: String(target.pg.port),
        PGUSER: 'postgres',
        PGPASSWORD: target.pg.password,
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(target.redis.port),
        QDRANT_URL: target.qdrant.url,
        QDRANT_API_KEY: 'target-qdrant-key',
      },
    });
    expect(result.stderr).not.toMatch(/FAILED|error:/i);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/postgres\/scholaria\.dump\.zst\.age: OK/);
    expect(result.stdout).toContain('snapshot checksum matches the manifest');
    expect(result.stdout).toMatch(/errors: 0, replies: \d+/);

    // PostgreSQL: data, owner role, and the target's own superuser password untouched.
    const counts = await target.pg.query<{ users: number; chunks: number; owner: string }>(
      'scholaria',
      `SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM chunks) AS chunks,
              (SELECT tableowner FROM pg_tables WHERE tablename = 'users') AS owner`,
    );
    expect(counts[0]).toEqual({ users: 40, chunks: 300, owner: 'scholaria_app' });
    // Redis: values and the session's expiry.
    expect(String(await target.redis.command('GET', 'session:abc'))).toBe('user-1');
    expect(Number(await target.redis.command('TTL', 'session:abc'))).toBeGreaterThan(3000);
    expect(((await target.redis.command('LRANGE', 'celery', '0', '-1')) as Buffer[]).map(String)).toEqual(['task-1', 'task-2']);
    // Qdrant: the collection with every point.
    expect(target.qdrant.collections().find((c) => c.name === 'chunks')?.points.length).toBe(12);
  }, 180_000);

  it('the Korean runbook shows exactly the same commands', async () => {
    expect(await manualRecoveryScript('ko/disaster-recovery.md')).toEqual(await manualRecoveryScript());
  });

  it('the same commands fail when an artifact was damaged', async () => {
    const { script } = await manualRecoveryScript();
    const backupDir = join(temp.path, 'backup');
    const [setId] = (await readdir(backupDir)).filter((d) => d.startsWith('scholaria_backup_'));
    const setDir = join(backupDir, setId!);
    // Flip one byte in the middle of the Redis artifact.
    const path = join(setDir, 'redis', 'dump.resp.zst.age');
    const bytes = await readFile(path);
    const middle = bytes.length >> 1;
    bytes[middle] = bytes[middle]! ^ 0xff;
    await writeFile(path, bytes);
    const result = await run('bash', ['-c', script], { cwd: temp.path, env: { SET_DIR: setDir, KEY_FILE: '/nonexistent' } });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toMatch(/redis\/dump\.resp\.zst\.age: FAILED/);
  }, 60_000);
});
