import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getFreePort,
  makeTempDir,
  startHttpCapture,
  startPostgres,
  startQdrantSimulator,
  startRedis,
  startSmtp,
  type HttpCapture,
  type PostgresServer,
  type QdrantSimulator,
  type RedisServer,
  type SmtpServerHandle,
  type TempDir,
} from '@scholaria/backup-testkit';
import { assertCliBuilt, cliBin, exampleDir, run, runOnTerminal } from './helpers.js';

/**
 * The strategy document's commands, verbatim, through the wrapper scripts and the built CLI,
 * against real PostgreSQL and Redis and the Qdrant simulator. Stdin is never a terminal here,
 * as under cron.
 */
describe('examples/scholaria scripts: every command of the strategy document', () => {
  let pg: PostgresServer;
  let redis: RedisServer;
  let qdrant: QdrantSimulator;
  let smtp: SmtpServerHandle;
  let hook: HttpCapture;
  let temp: TempDir;
  let env: Record<string, string>;

  const script = (name: string, args: string[] = [], extra: Record<string, string> = {}) =>
    run(join(exampleDir, 'scripts', name), args, { env: { ...env, ...extra } });
  const users = async () => (await pg.query<{ n: number }>('scholaria', 'SELECT count(*)::int AS n FROM users'))[0]!.n;
  const hasChunks = async () =>
    (await pg.query<{ t: string | null }>('scholaria', "SELECT to_regclass('public.chunks')::text AS t"))[0]!.t !== null;
  const get = async (key: string) => String(await redis.command('GET', key));
  const points = () => qdrant.collections().find((c) => c.name === 'chunks')?.points.length ?? 0;
  const sets = async () => (await readdir(join(temp.path, 'backup'))).filter((d) => d.startsWith('scholaria_backup_')).sort();

  beforeAll(async () => {
    assertCliBuilt();
    [pg, redis, qdrant, smtp, hook, temp] = await Promise.all([
      startPostgres(),
      startRedis(),
      startQdrantSimulator(),
      startSmtp(),
      startHttpCapture(),
      makeTempDir('scholaria-scripts-'),
    ]);
    await pg.createDatabase('scholaria');
    await pg.query(
      'scholaria',
      `CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
       CREATE TABLE chunks (id serial PRIMARY KEY, user_id int REFERENCES users(id), embedding real[]);
       INSERT INTO users (email) SELECT 'user' || g || '@scholaria.example' FROM generate_series(1, 50) g;
       INSERT INTO chunks (user_id, embedding) SELECT 1 + g % 50, ARRAY[g * 0.5, g * 0.25]::real[] FROM generate_series(1, 500) g;`,
    );
    await redis.command('SET', 'session:abc', '{"user_id":1}', 'EX', '3600');
    await redis.command('RPUSH', 'celery', '{"task":"embed"}', '{"task":"index"}');
    await fetch(`${qdrant.url}/collections/chunks`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ vectors: { size: 4, distance: 'Cosine' } }),
    });
    await fetch(`${qdrant.url}/collections/chunks/points?wait=true`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ points: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, vector: [1, i, 2, 3], payload: { chunk_id: i + 1 } })) }),
    });
    // The POSTGRES_* route of backup.config.ts (no DATABASE_URL), as in Scholaria's compose file.
    env = {
      POSTGRES_HOST: '127.0.0.1',
      POSTGRES_PORT: String(pg.port),
      POSTGRES_USER: 'postgres',
      POSTGRES_PASSWORD: pg.password,
      POSTGRES_DB: 'scholaria',
      REDIS_URL: redis.url(),
      QDRANT_URL: qdrant.url,
      BACKUP_DIR: join(temp.path, 'backup'),
      BACKUP_LOG_DIR: join(temp.path, 'log'),
      BACKUP_NOTIFY_EMAIL: 'ops@scholaria.example',
      SMTP_URL: smtp.url,
      BACKUP_NOTIFY_WEBHOOK: `${hook.url}/backup-events`,
    };
  });

  afterAll(async () => {
    await Promise.all([pg?.stop(), redis?.stop(), qdrant?.stop(), smtp?.stop(), hook?.stop()]);
    await temp?.remove();
  });

  it('./scripts/backup.sh makes a complete, sha256sum-checkable set in Seoul time and notifies', async () => {
    const r = await script('backup.sh');
    expect(r.stderr + r.stdout).toMatch(/COMPLETE/);
    expect(r.code).toBe(0);
    const [setId] = await sets();
    const setDir = join(temp.path, 'backup', setId!);
    const manifest = JSON.parse(await readFile(join(setDir, 'manifest.json'), 'utf8'));
    expect(manifest.timeZone).toBe('Asia/Seoul');
    expect(manifest.startedAt).toMatch(/\+09:00$/);
    expect(manifest.components.map((c: { name: string }) => c.name).sort()).toEqual(['postgres', 'qdrant', 'redis']);
    const sums = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: setDir });
    expect(sums.code).toBe(0);
    expect(sums.stdout).toMatch(/postgres\/scholaria\.dump\.zst: OK/);
    expect(sums.stdout).toMatch(/qdrant\/chunks\.snapshot: OK/);
    // One log file per run, named as the strategy document's troubleshooting section expects.
    expect(await readdir(join(temp.path, 'log'))).toContainEqual(expect.stringMatching(/^backup-manual-\d{8}\.log$/));
    const [mail] = await smtp.waitForMessages(1, 15_000);
    expect(mail!.subject).toMatch(/scholaria_backup_|backup/i);
    const [event] = await hook.waitForRequests(1);
    expect(event!.path).toBe('/backup-events');
    expect(event!.body.toString()).toContain(setId!);
    // The database password never reaches argv-visible output, logs or notifications.
    const log = await readFile(join(temp.path, 'log', (await readdir(join(temp.path, 'log')))[0]!), 'utf8');
    for (const text of [r.stdout, r.stderr, log, event!.body.toString(), mail!.text ?? '']) expect(text).not.toContain(pg.password);
  }, 180_000);

  it('./scripts/restore.sh --dry-run latest checks the set and changes nothing', async () => {
    await pg.query('scholaria', "INSERT INTO users (email) VALUES ('after-backup@scholaria.example')");
    const r = await script('restore.sh', ['--dry-run', 'latest']);
    expect(r.stdout).toMatch(/dry run: nothing was written/);
    expect(r.code).toBe(0);
    expect(await users()).toBe(51);
  }, 120_000);

  it('./scripts/restore.sh latest without a terminal refuses unless confirmed', async () => {
    const r = await script('restore.sh', ['latest']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to restore/);
    expect(r.stderr).toMatch(/RESTORE_CONFIRM=yes/);
    expect(await users()).toBe(51);
    const bad = await script('restore.sh', ['latest'], { RESTORE_CONFIRM: 'maybe' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/RESTORE_CONFIRM must be "yes"/);
  }, 120_000);

  it('./scripts/restore.sh latest on a terminal asks: anything but "yes" cancels, "yes" restores', async () => {
    await redis.command('SET', 'session:abc', 'changed-on-a-terminal');
    // The strategy document's command exactly, typed on a terminal.
    const command = `${join(exampleDir, 'scripts', 'restore.sh')} latest`;
    const cancelled = await runOnTerminal(command, 'no\r', { env });
    expect(cancelled.stdout).toMatch(/This overwrites the live data of: postgres, redis, qdrant/);
    expect(cancelled.stdout).toMatch(/restore cancelled: nothing was changed/);
    expect(cancelled.code).toBe(1);
    expect(await get('session:abc')).toBe('changed-on-a-terminal');
    const confirmed = await runOnTerminal(command, 'yes\r', { env });
    expect(confirmed.stdout).toMatch(/redis: ok/);
    expect(confirmed.code).toBe(0);
    expect(await get('session:abc')).toBe('{"user_id":1}');
    expect(await users()).toBe(50);
  }, 120_000);

  it('./scripts/restore.sh --component postgres latest restores PostgreSQL only', async () => {
    await pg.query('scholaria', 'DROP TABLE chunks');
    await redis.command('SET', 'session:abc', 'changed-after-backup');
    const r = await script('restore.sh', ['--component', 'postgres', 'latest'], { RESTORE_CONFIRM: 'yes' });
    expect(r.stdout).toMatch(/postgres: ok/);
    expect(r.code).toBe(0);
    expect(await hasChunks()).toBe(true);
    expect(await users()).toBe(50);
    expect(await get('session:abc')).toBe('changed-after-backup');
  }, 120_000);

  it('./scripts/restore.sh latest brings back all three after a total loss', async () => {
    await pg.query('scholaria', 'DROP TABLE chunks; DELETE FROM users');
    await redis.command('FLUSHALL');
    await fetch(`${qdrant.url}/collections/chunks`, { method: 'DELETE' });
    expect(points()).toBe(0);
    const r = await script('restore.sh', ['latest'], { RESTORE_CONFIRM: 'yes' });
    expect(r.stdout).toMatch(/OK/);
    expect(r.code).toBe(0);
    expect(await users()).toBe(50);
    expect((await pg.query<{ n: number }>('scholaria', 'SELECT count(*)::int AS n FROM chunks'))[0]!.n).toBe(500);
    expect(await get('session:abc')).toBe('{"user_id":1}');
    expect(((await redis.command('LRANGE', 'celery', '0', '-1')) as Buffer[]).map(String)).toEqual(['{"task":"embed"}', '{"task":"index"}']);
    expect(Number(await redis.command('TTL', 'session:abc'))).toBeGreaterThan(0);
    expect(points()).toBe(20);
  }, 120_000);

  it('./scripts/backup-scheduler.sh status shows the three tiers in Asia/Seoul', async () => {
    const r = await script('backup-scheduler.sh', ['status']);
    // 3: no daily/weekly/monthly set exists yet, so the last scheduled runs count as missed.
    expect([0, 3]).toContain(r.code);
    expect(r.stdout).toMatch(/Asia\/Seoul/);
    for (const [tier, cron] of [
      ['daily', '0 2 \\* \\* \\*'],
      ['weekly', '0 3 \\* \\* 0'],
      ['monthly', '0 4 1 \\* \\*'],
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^${tier}\\s+${cron}\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:00:00 \\+09:00`, 'm'));
    }
  }, 120_000);

  it('./scripts/backup-scheduler.sh health-check runs the strategy document checks', async () => {
    const r = await script('backup-scheduler.sh', ['health-check']);
    expect(r.stdout).toMatch(/OK\s+storage fs:\S+\s+reachable and writable/);
    expect(r.stdout).toMatch(/OK\s+disk space/);
    for (const source of ['postgres', 'redis', 'qdrant']) expect(r.stdout).toMatch(new RegExp(`OK\\s+source ${source}`));
    // Only manual sets exist and the scheduler never ran: the daily tier is pending, not a
    // warning, so alerting on the exit code does not fire on day one (issue 18).
    expect(r.stdout).toMatch(/OK\s+recent daily backup\s+no daily backup yet: its first scheduled run has not come/);
    expect(r.stdout).not.toMatch(/WARN\s+recent/);
  }, 120_000);

  it('backup --tier daily then health-check no longer misses the daily backup', async () => {
    const b = await script('backup.sh', ['--tier', 'daily', '--prune']);
    expect(b.code).toBe(0);
    const r = await script('backup-scheduler.sh', ['health-check', '--json']);
    const report = JSON.parse(r.stdout) as { status: string; checks: { name: string; status: string }[] };
    expect(report.checks.find((c) => c.name === 'recent daily backup')?.status).toBe('ok');
    // No weekly slot came since the first scheduled-tier set: pending, not a warning.
    expect(report.checks.find((c) => c.name === 'recent weekly backup')).toMatchObject({ status: 'ok', message: expect.stringContaining('first scheduled run has not come') });
  }, 180_000);

  it('./scripts/backup-scheduler.sh run (the container command) serves /healthz and stops on SIGTERM', async () => {
    const port = await getFreePort();
    const child = spawn(join(exampleDir, 'scripts', 'backup-scheduler.sh'), ['run', '--metrics-host', '127.0.0.1'], {
      cwd: exampleDir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env, BACKUP_METRICS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      let health: { status: string } | undefined;
      for (let i = 0; i < 600 && !health && child.exitCode === null; i++) {
        health = await fetch(`http://127.0.0.1:${port}/healthz`)
          .then(async (r) => (r.ok ? ((await r.json()) as { status: string }) : undefined))
          .catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 100));
      }
      expect({ health, output: health ? '' : output }).toMatchObject({ health: { status: 'ok' } });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^# (HELP|TYPE) /m);
      // The script exec'd the CLI, so SIGTERM reaches it directly, as from `docker stop`.
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);

  it('health-check fails when a wrapper script is not executable', async () => {
    const copy = join(temp.path, 'scripts-copy');
    await mkdir(copy);
    for (const name of ['_common.sh', 'backup.sh', 'restore.sh', 'backup-scheduler.sh']) {
      await copyFile(join(exampleDir, 'scripts', name), join(copy, name));
      await chmod(join(copy, name), name === 'restore.sh' ? 0o644 : 0o755);
    }
    const r = await run(join(copy, 'backup-scheduler.sh'), ['health-check'], {
      env: { ...env, BACKUP_CONFIG: join(exampleDir, 'backup.config.ts'), SCHOLARIA_BACKUP_BIN: cliBin },
    });
    expect(r.stderr).toMatch(/FAIL\s+script permissions\s+not executable: restore\.sh/);
    expect(r.code).toBe(1);
  }, 120_000);

  it('bad usage: unknown scheduler command, unknown set, invalid variable -> exit 2 and nothing written', async () => {
    const before = await sets();
    const unknown = await script('backup-scheduler.sh', ['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const noSet = await script('restore.sh', ['--dry-run', 'scholaria_backup_19990101_000000']);
    expect(noSet.code).toBe(2);
    const badEnv = await script('backup.sh', [], { BACKUP_DAILY_RETENTION: 'seven' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/BACKUP_DAILY_RETENTION/);
    expect(await sets()).toEqual(before);
  }, 120_000);
});
