import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, makeTempDir, startPostgres, startRedis, type PostgresServer, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { assertBuilt, PACKAGES, parseJson, runBin, startBin } from './helpers.js';

// The scheduler service and config files, through the built binary.

let work: TempDir;
const dist = (pkg: string) => pathToFileURL(join(PACKAGES, pkg, 'dist', 'index.js')).href;

beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('scholaria-cli-sched-');
});

afterAll(async () => {
  await work?.remove();
});

async function waitUntil(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A config file whose only source is the testkit's in-memory source, slow enough to be stopped mid-run. */
function writeSlowConfig(dir: string, backupDir: string, logDir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'backup.config.mjs');
  writeFileSync(
    path,
    `import { defineConfig } from ${JSON.stringify(dist('core'))};
import { createFsStorage } from ${JSON.stringify(dist('fs'))};
import { createTestSource } from ${JSON.stringify(dist('testkit'))};

export default defineConfig({
  sources: [createTestSource({ name: 'slow', files: { 'notes.txt': 'hello' }, generated: { 'big.bin': 64 * 1024 * 800 }, chunkDelayMs: 50 })],
  storage: createFsStorage({ root: ${JSON.stringify(backupDir)} }),
  retention: { tiers: { daily: { within: '7d' } } },
  timeZone: 'Asia/Seoul',
  logDir: ${JSON.stringify(logDir)},
  schedules: { daily: '0 2 * * *', weekly: '0 3 * * 0', monthly: '0 4 1 * *' },
});
`,
  );
  return path;
}

describe('scheduler run', () => {
  it('SIGTERM during a backup aborts it cleanly: exit 0, no set left that looks done, no lock left', async () => {
    const dir = join(work.path, 'sigterm');
    const backupDir = join(dir, 'backup');
    const logDir = join(dir, 'logs');
    writeSlowConfig(dir, backupDir, logDir);
    const run = startBin(['scheduler', 'run', '--run-now', 'daily'], { env: {}, cwd: dir });
    await run.waitFor(/backup scholaria_backup_\d{8}_\d{6}(-\d+)? started/);
    const started = /backup (scholaria_backup_\d{8}_\d{6}(?:-\d+)?) started/.exec(run.stderr())![1]!;
    // Stop it once its first artifact is stored and the big one is being written.
    await waitUntil(() => existsSync(join(backupDir, started, 'slow', 'notes.txt')));
    // Another process sees the running job through the storage lock.
    const during = await runBin(['scheduler', 'status', '--json'], { env: {}, cwd: dir });
    const running = parseJson<{ running: { action: string; pid: number; stale: boolean }[] }>(during.stdout).running;
    expect(running).toEqual([expect.objectContaining({ action: 'backup', pid: run.child.pid, stale: false })]);
    expect(existsSync(join(backupDir, started, 'manifest.json'))).toBe(false);
    run.child.kill('SIGTERM');
    const code = await run.exited;
    expect(code, run.stderr()).toBe(0);
    expect(run.stderr()).toMatch(/stopping: aborting the daily backup/);
    expect(run.stderr()).toContain('scheduler stopped');
    const setId = started;
    expect(run.stderr()).not.toMatch(new RegExp(`backup ${setId} (complete|partial)`));

    expect(existsSync(join(backupDir, setId, 'manifest.json'))).toBe(false);
    const list = await runBin(['list', '--all', '--json'], { env: {}, cwd: dir });
    expect(list.code, list.stderr).toBe(0);
    const sets = parseJson<{ id: string; status: string }[]>(list.stdout);
    expect(sets.filter((s) => s.status !== 'incomplete')).toEqual([]);
    const locks = join(backupDir, '.scholaria-backup', 'locks');
    expect(existsSync(locks) ? readdirSync(locks).filter((f) => f.endsWith('.json')) : []).toEqual([]);
    const status = await runBin(['scheduler', 'status', '--json'], { env: {}, cwd: dir });
    expect(parseJson<{ running: unknown[] }>(status.stdout).running).toEqual([]);

    // The job logged into backup-daily-<date>.log, the service into scheduler-<date>.log.
    const day = setId.split('_')[2];
    const jobLog = readFileSync(join(logDir, `backup-daily-${day}.log`), 'utf8');
    expect(jobLog).toContain(`backup ${setId} started`);
    expect(jobLog).toMatch(/aborted/);
    expect(existsSync(join(logDir, `scheduler-${day}.log`))).toBe(true);
  });

  describe('with PostgreSQL and Redis, and the metrics endpoint', () => {
    let pg: PostgresServer;
    let redis: RedisServer;
    beforeAll(async () => {
      [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
      await pg.createDatabase('scholaria');
      await pg.query('scholaria', "create table chunks (id serial primary key, body text); insert into chunks (body) select repeat('x', 100) from generate_series(1, 500)");
      await redis.command('SET', 'k', 'v');
    });
    afterAll(async () => {
      await Promise.allSettled([pg?.stop(), redis?.stop()]);
    });

    it('serves /metrics and /healthz, runs a tier, then stops on SIGTERM with exit 0', async () => {
      const dir = join(work.path, 'metrics');
      mkdirSync(dir, { recursive: true });
      const port = await getFreePort();
      const env = { BACKUP_DIR: join(dir, 'backup'), BACKUP_LOG_DIR: join(dir, 'logs'), DATABASE_URL: pg.url('scholaria'), REDIS_URL: redis.url() };
      const run = startBin(['scheduler', 'run', '--metrics-port', String(port), '--metrics-host', '127.0.0.1', '--run-now', 'daily', '--json'], { env, cwd: dir });
      await run.waitFor(/"event":"run"/);
      const event = parseJson<{ tier: string; status: string; setId: string; components: { name: string; status: string }[] }>(
        run.stdout().split('\n').find((l) => l.includes('"event":"run"'))!,
      );
      expect(event.tier).toBe('daily');
      expect(event.status).toBe('complete');
      expect(event.components.map((c) => c.name)).toEqual(['postgres', 'redis']);

      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      const text = await metrics.text();
      expect(text).toContain('scholaria_backup_runs_total{tier="daily",status="complete"} 1');
      expect(text).toContain('scholaria_backup_failures_total{tier="daily"} 0');
      expect(text).toMatch(/^scholaria_backup_last_success_timestamp_seconds\{tier="daily"\} \d+(\.\d+)?$/m);
      expect(text).toMatch(/^scholaria_backup_component_last_success_timestamp_seconds\{tier="daily",component="postgres"\} \d/m);
      expect(text).toMatch(/^scholaria_backup_component_last_success_size_bytes\{tier="daily",component="redis"\} [1-9]/m);
      expect(text).toMatch(/^scholaria_backup_last_success_duration_seconds\{tier="daily"\} /m);
      expect(text).toMatch(/^scholaria_backup_next_run_timestamp_seconds\{tier="weekly"\} \d+/m);
      expect(text).toContain('# TYPE scholaria_backup_runs_total counter');
      const lastSuccess = Number(/^scholaria_backup_last_success_timestamp_seconds\{tier="daily"\} (\S+)$/m.exec(text)![1]);
      expect(lastSuccess * 1000).toBeGreaterThan(Date.now() - 10 * 60_000);

      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      expect(((await health.json()) as { status: string }).status).toBe('ok');
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);

      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      expect(run.stdout()).toContain('"event":"stopped"');
      expect(run.stdout() + run.stderr()).not.toContain(pg.password);
      // the run pruned after its backup and the set is there, complete
      const list = await runBin(['list', '--json'], { env, cwd: dir });
      expect(parseJson<{ id: string; status: string }[]>(list.stdout).map((s) => [s.id, s.status])).toEqual([[event.setId, 'complete']]);
    });

    it('a failed run turns /healthz to 503 and counts the failure', async () => {
      const dir = join(work.path, 'metrics-fail');
      mkdirSync(dir, { recursive: true });
      const port = await getFreePort();
      const closed = await getFreePort();
      const env = { BACKUP_DIR: join(dir, 'backup'), BACKUP_LOG_DIR: join(dir, 'logs'), REDIS_URL: `redis://127.0.0.1:${closed}`, BACKUP_METRICS_PORT: String(port) };
      const run = startBin(['scheduler', 'run', '--metrics-host', '127.0.0.1', '--run-now', 'daily', '--json'], { env, cwd: dir });
      await run.waitFor(/"event":"run"/, 90_000);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(503);
      expect(((await health.json()) as { failingTiers: string[] }).failingTiers).toEqual(['daily']);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('scholaria_backup_runs_total{tier="daily",status="failed"} 1');
      expect(text).toContain('scholaria_backup_failures_total{tier="daily"} 1');
      expect(text).toContain('scholaria_backup_component_failures_total{tier="daily",component="redis"} 1');
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    });
  });
});

describe('config files', () => {
  it('finds backup.config.ts in the working directory (an ES module package) and loads it with tsx', async () => {
    const dir = join(work.path, 'ts-config');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ops', private: true, type: 'module' }));
    const backupDir = join(dir, 'backup');
    writeFileSync(
      join(dir, 'backup.config.ts'),
      `import { defineConfig, type ScholariaBackupConfig } from ${JSON.stringify(dist('core'))};
import { createFsStorage } from ${JSON.stringify(dist('fs'))};
import { createTestSource } from ${JSON.stringify(dist('testkit'))};

const root: string = ${JSON.stringify(backupDir)};
const config: ScholariaBackupConfig = defineConfig({
  sources: [createTestSource({ name: 'notes', files: { 'a.txt': 'typed config' } })],
  storage: createFsStorage({ root }),
  setPrefix: 'typed',
  logDir: ${JSON.stringify(join(dir, 'logs'))},
});
export default config;
`,
    );
    const r = await runBin(['backup', '--json'], { env: {}, cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const result = parseJson<{ setId: string; status: string; tier: string; components: { name: string }[] }>(r.stdout);
    expect(result.setId).toMatch(/^typed_\d{8}_\d{6}$/);
    expect(result.tier).toBe('manual');
    expect(result.components.map((c) => c.name)).toEqual(['notes']);
    expect(existsSync(join(backupDir, result.setId, 'notes', 'a.txt'))).toBe(true);

    // Outside a "type": "module" package a .ts file is CommonJS: the error says what to do.
    const cjs = join(work.path, 'ts-config-cjs');
    mkdirSync(cjs, { recursive: true });
    writeFileSync(join(cjs, 'backup.config.ts'), readFileSync(join(dir, 'backup.config.ts')));
    const refused = await runBin(['list'], { env: {}, cwd: cjs });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`error: cannot load config file ${join(cjs, 'backup.config.ts')}`);
    expect(refused.stderr).toContain('rename it to backup.config.mts');
    // ... and as .mts it loads.
    writeFileSync(join(cjs, 'backup.config.mts'), readFileSync(join(dir, 'backup.config.ts')));
    const mts = await runBin(['list', '--json', '--config', 'backup.config.mts'], { env: {}, cwd: cjs });
    expect(mts.code, mts.stderr).toBe(0);
    expect(parseJson<{ id: string }[]>(mts.stdout).map((s) => s.id)).toEqual([result.setId]);
  });

  it('--config with a missing file, or a file with invalid options: exit 2 listing the problems', async () => {
    const dir = join(work.path, 'bad-config');
    mkdirSync(dir, { recursive: true });
    const missing = await runBin(['list', '--config', 'nope.mjs'], { env: {}, cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`config file ${join(dir, 'nope.mjs')} does not exist`);

    writeFileSync(
      join(dir, 'broken.mjs'),
      `export default { sources: [{ specVersion: 'v0', name: 'x' }], storage: [], setPrefix: 'bad prefix', schedules: { daily: 'every night' }, metricsPort: 99999 };\n`,
    );
    const bad = await runBin(['list', '--config', 'broken.mjs'], { env: {}, cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: Invalid configuration');
    expect(bad.stderr).toContain('storage: at least one Storage is required');
    expect(bad.stderr).toContain("specVersion \"v0\"");
    expect(bad.stderr).toContain('setPrefix "bad prefix"');
    expect(bad.stderr).toContain('schedules.daily');
    expect(bad.stderr).toContain('metricsPort');
  });
});
