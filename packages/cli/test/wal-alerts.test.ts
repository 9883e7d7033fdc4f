import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startHttpCapture, startPostgres, type HttpCapture, type TempDir } from '@scholaria/backup-testkit';
import { assertBuilt, runBin } from './helpers.js';

// wal-push runs once per WAL segment: a failure is an alert (audit line + notification), once
// per streak of the same failure; the first success after it says so; other successes are quiet.
describe('wal-push failures are audited and notified, successes are not', () => {
  let temp: TempDir;
  let hook: HttpCapture;
  let env: Record<string, string>;
  let backupDir: string;
  let spool: string;

  const auditLines = () => {
    const dir = join(backupDir, '.scholaria-backup', 'audit');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .sort()
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== ''))
      .map((l) => JSON.parse(l) as { action: string; result: string; error: string | null; details?: Record<string, unknown> });
  };
  const events = () => hook.requests.map((r) => r.json as { type: string; outcome: string; error?: { code: string; message: string }; details?: string[] });

  beforeAll(async () => {
    assertBuilt();
    temp = await makeTempDir('scholaria-wal-alerts-');
    hook = await startHttpCapture();
    backupDir = join(temp.path, 'backup');
    spool = join(temp.path, 'pg_wal');
    await mkdir(backupDir);
    await mkdir(spool);
    for (const n of ['000000010000000000000001', '000000010000000000000002']) await writeFile(join(spool, n), randomBytes(256 * 1024));
    env = { BACKUP_DIR: backupDir, BACKUP_LOG_DIR: join(temp.path, 'log'), BACKUP_NOTIFY_WEBHOOK: `${hook.url}/hook`, DATABASE_URL: 'postgresql://u:pw@127.0.0.1:1/db' };
  });

  afterAll(async () => {
    await hook?.stop();
    await temp?.remove();
  });

  it('alerts once per failure streak, then once on recovery, and stays quiet on success', async () => {
    // A regular file where the archive folder should be: every push fails on the storage.
    await writeFile(join(backupDir, 'wal'), 'not a folder');
    const first = await runBin(['wal-push', join(spool, '000000010000000000000001')], { env });
    expect(first.code, first.stderr).toBe(1);
    expect(first.stderr).toMatch(/error: /);
    expect(events()).toHaveLength(1);
    expect(events()[0]).toMatchObject({ type: 'wal.failed', outcome: 'failure', error: { code: 'STORAGE_FAILED' } });
    expect(events()[0]!.details!.join('\n')).toContain('000000010000000000000001');
    expect(JSON.stringify(events()[0])).not.toContain(':pw@');
    expect(auditLines()).toEqual([expect.objectContaining({ action: 'wal-push', result: 'failed', details: expect.objectContaining({ file: '000000010000000000000001', failures: 1 }) })]);

    // PostgreSQL retries the same file: no second alert, no second audit line in the interval.
    const again = await runBin(['wal-push', join(spool, '000000010000000000000001')], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/failure 2 of 000000010000000000000001 in a row/);
    expect(events()).toHaveLength(1);
    expect(auditLines()).toHaveLength(1);

    await rm(join(backupDir, 'wal'));
    const ok = await runBin(['wal-push', join(spool, '000000010000000000000001'), '--json'], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, outcome: 'stored' });
    expect(events()).toHaveLength(2);
    expect(events()[1]).toMatchObject({ type: 'wal.recovered', outcome: 'success' });
    expect(auditLines()[1]).toMatchObject({ action: 'wal-push', result: 'ok', details: { failures: 2, failedFile: '000000010000000000000001' } });

    // An ordinary success: nothing sent, nothing audited.
    const quiet = await runBin(['wal-push', join(spool, '000000010000000000000002')], { env });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(events()).toHaveLength(2);
    expect(auditLines()).toHaveLength(2);
  });

  it('a missing backup folder is alerted without creating the folder', async () => {
    const missing = join(temp.path, 'not-mounted');
    const r = await runBin(['wal-push', join(spool, '000000010000000000000002')], { env: { ...env, BACKUP_DIR: missing } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not exist: is the volume mounted\?/);
    expect(events().at(-1)).toMatchObject({ type: 'wal.failed', error: { code: 'CONFIG_INVALID' } });
    expect(existsSync(missing)).toBe(false);
  });

  it('wal-fetch of a damaged file is an alert; a file not in the archive is not', async () => {
    const before = events().length;
    const absent = await runBin(['wal-fetch', '0000000100000000000000FF', join(temp.path, 'x')], { env });
    expect(absent.code).toBe(1);
    expect(absent.stderr).toMatch(/not in the archive/);
    expect(events()).toHaveLength(before);

    const record = JSON.parse(readFileSync(join(backupDir, 'wal', '000000010000000000000002.json'), 'utf8')) as { key: string };
    const stored = readFileSync(join(backupDir, record.key));
    const middle = stored.length >> 1;
    stored[middle] = stored[middle]! ^ 0xff;
    await writeFile(join(backupDir, record.key), stored);
    const damaged = await runBin(['wal-fetch', '000000010000000000000002', join(temp.path, 'y')], { env });
    expect(damaged.code).toBe(1);
    expect(existsSync(join(temp.path, 'y'))).toBe(false);
    expect(events()).toHaveLength(before + 1);
    expect(events().at(-1)).toMatchObject({ type: 'wal.failed', outcome: 'failure' });
    expect(auditLines().at(-1)).toMatchObject({ action: 'wal-fetch', result: 'failed', details: expect.objectContaining({ file: '000000010000000000000002' }) });
  });

  it('takes the slim entry: commander, pino and age-encryption are not loaded; other shapes get the full CLI', async () => {
    const trace = join(temp.path, 'loaded.txt');
    const hookModule = join(temp.path, 'trace-hook.mjs');
    const hookImpl = join(temp.path, 'trace-resolve.mjs');
    // A module resolve hook that writes down every URL the process loads.
    await writeFile(hookImpl, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) {\n  const r = await next(s, c);\n  appendFileSync(${JSON.stringify(trace)}, r.url + '\\n');\n  return r;\n}\n`);
    await writeFile(hookModule, `import { register } from 'node:module';\nimport { pathToFileURL } from 'node:url';\nregister(pathToFileURL(${JSON.stringify(hookImpl)}));\n`);
    const r = await runBin(['wal-push', join(spool, '000000010000000000000002')], { env: { ...env, NODE_OPTIONS: `--import ${hookModule}` } });
    expect(r.code, r.stderr).toBe(0);
    const loaded = readFileSync(trace, 'utf8');
    expect(loaded).toContain('wal-main');
    expect(loaded).toContain('/fs/');
    for (const heavy of ['/commander', '/pino', '/age-encryption', '/cli-progress', '/pg@', '/node_modules/pg/']) expect(loaded, heavy).not.toContain(heavy);

    const help = await runBin(['wal-push', '--help'], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: scholaria-backup wal-push/);
    const missingArg = await runBin(['wal-push'], { env });
    expect(missingArg.code).toBe(2);
    expect(missingArg.stderr).toMatch(/missing required argument/);
  });
});

describe('health-check alerts on the WAL archive lag', () => {
  it('sends health.failed when only the archive lag fails (the engine checks pass)', async () => {
    const temp = await makeTempDir('scholaria-wal-lag-');
    const hook = await startHttpCapture();
    const server = await startPostgres({ version: 15 });
    try {
      const backupDir = join(temp.path, 'backup');
      await mkdir(backupDir);
      await mkdir(join(temp.path, 'pg_wal'));
      const segment = join(temp.path, 'pg_wal', '000000010000000000000007');
      await writeFile(segment, randomBytes(64 * 1024));
      const env = {
        BACKUP_DIR: backupDir,
        BACKUP_LOG_DIR: join(temp.path, 'log'),
        DATABASE_URL: server.url('postgres'),
        BACKUP_PITR: 'on',
        BACKUP_WAL_MAX_LAG: '1s',
        BACKUP_NOTIFY_WEBHOOK: `${hook.url}/hook`,
      };
      expect((await runBin(['wal-push', segment], { env })).code).toBe(0);
      await new Promise((r) => setTimeout(r, 2500));
      const health = await runBin(['health-check', '--json'], { env });
      const report = JSON.parse(health.stdout) as { status: string; checks: { name: string; status: string }[] };
      expect(report.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['wal archive']);
      expect(health.code).not.toBe(0);
      const sent = hook.requests.map((r) => r.json as { type: string; details?: string[] });
      expect(sent).toHaveLength(1);
      expect(sent[0]!.type).toBe('health.failed');
      expect(sent[0]!.details!.join('\n')).toMatch(/FAIL wal archive: newest archived WAL file 000000010000000000000007 is \d+ s old \(threshold 1 s\)/);

      // Within the threshold: no alert.
      await writeFile(join(temp.path, 'pg_wal', '000000010000000000000008'), randomBytes(1024));
      expect((await runBin(['wal-push', join(temp.path, 'pg_wal', '000000010000000000000008')], { env: { ...env, BACKUP_WAL_MAX_LAG: '10m' } })).code).toBe(0);
      const fine = await runBin(['health-check', '--json'], { env: { ...env, BACKUP_WAL_MAX_LAG: '10m' } });
      expect((JSON.parse(fine.stdout) as { checks: { name: string; status: string }[] }).checks.find((c) => c.name === 'wal archive')?.status).toBe('ok');
      expect(hook.requests).toHaveLength(1);
    } finally {
      await server.stop();
      await hook.stop();
      await temp.remove();
    }
  }, 120_000);
});
