import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, mkdirSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, type PostgresServer, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { cliRunner, setDirs as listSetDirs, startCliStack, stopCliStack, topicCount as countTopics } from './cli-harness.js';
import { parseJson } from './helpers.js';

// The CLI as operators use it: the built binary, configured through environment variables,
// against a real PostgreSQL and Redis and a backup folder on disk.

let pg: PostgresServer, redis: RedisServer, work: TempDir, backupDir: string, logDir: string;
const { cli, outputs } = cliRunner(() => ({ pg, redis, backupDir, logDir }));

const topicCount = () => countTopics(pg);
const redisGet = async (key: string) => {
  const value = await redis.command('GET', key);
  return value === null ? null : String(value);
};
const setDirs = () => listSetDirs(backupDir);

interface SetJson {
  id: string;
  status: string;
  tier: string | null;
  components: { name: string; status: string }[];
}

let firstSet = '';

beforeAll(async () => {
  ({ pg, redis, work, backupDir, logDir } = await startCliStack('scholaria-cli-'));
  await pg.query('scholaria', "create table topics (id serial primary key, name text not null); insert into topics (name) select 'topic ' || g from generate_series(1, 1000) g");
  await redis.command('SET', 'session:alice', 'token-a');
  await redis.command('SET', 'celery:queue', 'job-1');
});

afterAll(() => stopCliStack({ pg, redis, work }));

describe('scholaria-backup against PostgreSQL and Redis (env configuration)', () => {
  it('backup writes a complete set, a 0600 JSON-lines log in a 0700 folder, and prints JSON', async () => {
    const r = await cli(['backup', '--tier', 'daily', '--json']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const result = parseJson<{ setId: string; status: string; tier: string; components: { name: string; status: string; bytes: number }[]; logFile: string }>(r.stdout);
    expect(result.status).toBe('complete');
    expect(result.tier).toBe('daily');
    expect(result.components.map((c) => [c.name, c.status])).toEqual([
      ['postgres', 'ok'],
      ['redis', 'ok'],
    ]);
    expect(result.components.every((c) => c.bytes > 0)).toBe(true);
    firstSet = result.setId;
    expect(existsSync(join(backupDir, firstSet, 'manifest.json'))).toBe(true);

    // Set ids and log names follow the configured zone (Asia/Seoul).
    const day = firstSet.split('_')[2];
    expect(result.logFile).toBe(join(logDir, `backup-daily-${day}.log`));
    expect(statSync(logDir).mode & 0o777).toBe(0o700);
    expect(statSync(result.logFile).mode & 0o777).toBe(0o600);
    const lines = readFileSync(result.logFile, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(lines.some((l) => JSON.parse(l).msg === `backup ${firstSet} complete`)).toBe(true);
    expect(readFileSync(result.logFile, 'utf8')).not.toContain(pg.password);
  });

  it('the stored set passes `sha256sum -c SHA256SUMS`', () => {
    const out = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(backupDir, firstSet) }).toString();
    expect(out).toMatch(/postgres\/.*: OK/);
    expect(out).toMatch(/redis\/.*: OK/);
  });

  it('list shows the set as text and as JSON', async () => {
    const text = await cli(['list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(firstSet);
    expect(text.stdout).toMatch(/daily\s+complete/);
    const json = await cli(['list', '--json']);
    const sets = parseJson<SetJson[]>(json.stdout);
    expect(sets.map((s) => s.id)).toEqual([firstSet]);
    expect(sets[0]!.components).toEqual([
      { name: 'postgres', status: 'ok' },
      { name: 'redis', status: 'ok' },
    ]);
  });

  it('verify checks latest, a set id and --all', async () => {
    const latest = await cli(['verify']);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toContain(`OK     ${firstSet}`);
    const byId = await cli(['verify', firstSet, '--json']);
    expect(byId.code).toBe(0);
    const result = parseJson<{ ok: boolean; sets: { id: string; ok: boolean; files: unknown[] }[] }>(byId.stdout);
    expect(result.ok).toBe(true);
    expect(result.sets[0]!.files.length).toBeGreaterThanOrEqual(2);
    expect((await cli(['verify', '--all'])).code).toBe(0);
  });

  it('restore --dry-run verifies and plans, asks nothing and leaves the targets unchanged', async () => {
    await pg.query('scholaria', "insert into topics (name) values ('after backup')");
    await redis.command('SET', 'session:alice', 'changed');
    const r = await cli(['restore', 'latest', '--dry-run']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stdout).toMatch(/verification: \d+\/\d+ artifacts match/);
    expect(r.stdout).toContain('dry run: nothing was written');
    expect(r.stdout).toMatch(/postgres: planned/);
    expect(r.stdout).toMatch(/redis: planned/);
    expect(await topicCount()).toBe(1001);
    expect(await redisGet('session:alice')).toBe('changed');
  });

  it('restore refuses live data without --yes when not on a terminal', async () => {
    const r = await cli(['restore', 'latest']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('without confirmation');
    expect(r.stderr).toContain('--yes');
    expect(await topicCount()).toBe(1001);
    expect(await redisGet('session:alice')).toBe('changed');
  });

  it('restore --component postgres restores PostgreSQL only', async () => {
    const r = await cli(['restore', 'latest', '--component', 'postgres', '--yes']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stdout).toMatch(/postgres: ok/);
    expect(r.stdout).not.toMatch(/^redis:/m);
    expect(await topicCount()).toBe(1000);
    expect(await redisGet('session:alice')).toBe('changed');
  });

  it('restore latest --yes restores every component', async () => {
    await pg.query('scholaria', 'delete from topics where id <= 10');
    await redis.command('DEL', 'celery:queue');
    const r = await cli(['restore', 'latest', '--yes', '--json']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const result = parseJson<{ status: string; setId: string; verified: { ok: boolean }[]; components: { name: string; status: string }[] }>(r.stdout);
    expect(result.status).toBe('ok');
    expect(result.setId).toBe(firstSet);
    expect(result.verified.every((v) => v.ok)).toBe(true);
    expect(result.components.map((c) => [c.name, c.status])).toEqual([
      ['postgres', 'ok'],
      ['redis', 'ok'],
    ]);
    expect(await topicCount()).toBe(1000);
    expect(await redisGet('session:alice')).toBe('token-a');
    expect(await redisGet('celery:queue')).toBe('job-1');
  });

  it('restore --target-database restores PostgreSQL beside the live database', async () => {
    await pg.query('scholaria', "insert into topics (name) values ('live only')");
    const r = await cli(['restore', 'latest', '--component', 'postgres', '--target-database', 'scholaria_copy', '--yes']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(Number((await pg.query<{ n: string }>('scholaria_copy', 'select count(*)::text as n from topics'))[0]!.n)).toBe(1000);
    expect(await topicCount()).toBe(1001);
    const wrong = await cli(['restore', 'latest', '--component', 'redis', '--mode', 'in-place', '--yes']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('apply to the postgres component');
    await pg.query('scholaria', "delete from topics where name = 'live only'");
  });

  it('prune --dry-run explains its decisions and deletes nothing', async () => {
    // A leftover of a killed run, old enough for prune to remove.
    const leftover = join(backupDir, 'scholaria_backup_20200101_000000');
    mkdirSync(join(leftover, 'postgres'), { recursive: true });
    writeFileSync(join(leftover, 'postgres', 'scholaria.dump.zst'), 'partial');
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(join(leftover, 'postgres', 'scholaria.dump.zst'), old, old);
    const r = await cli(['prune', '--dry-run', '--json']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const result = parseJson<{ dryRun: boolean; keep: { id: string; reasons: string[] }[]; remove: { id: string; reasons: string[] }[] }>(r.stdout);
    expect(result.dryRun).toBe(true);
    expect(result.keep.map((k) => k.id)).toContain(firstSet);
    expect(result.keep.find((k) => k.id === firstSet)!.reasons.join(' ')).toMatch(/within 7d/);
    expect(result.remove.map((k) => k.id)).toEqual(['scholaria_backup_20200101_000000']);
    expect(result.remove[0]!.reasons.join(' ')).toMatch(/incomplete/);
    expect(existsSync(join(leftover, 'postgres', 'scholaria.dump.zst'))).toBe(true);
    const text = await cli(['prune', '--dry-run']);
    expect(text.stdout).toMatch(/would remove 1/);
    expect(setDirs()).toContain('scholaria_backup_20200101_000000');
  });

  it('health-check reports each check; weekly/monthly not due since the first set are pending, an incomplete set is a warning', async () => {
    const r = await cli(['health-check', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const report = parseJson<{ status: string; checks: { name: string; status: string; message: string }[] }>(r.stdout);
    expect(report.status).toBe('warn');
    expect(report.checks.filter((c) => c.status !== 'ok').map((c) => c.name)).toEqual(['incomplete sets']);
    const byName = new Map(report.checks.map((c) => [c.name, c]));
    expect(byName.get(`storage fs:${backupDir}`)?.status).toBe('ok');
    expect(byName.get('recent daily backup')?.status).toBe('ok');
    expect(byName.get('recent weekly backup')).toMatchObject({ status: 'ok', message: expect.stringContaining('first scheduled run has not come') });
    expect(byName.get('source postgres')?.status).toBe('ok');
    expect(byName.get('source redis')?.status).toBe('ok');
    expect(byName.get('tool zstd')?.status).toBe('ok');
    expect(byName.get('log directory')?.status).toBe('ok');
    const table = await cli(['health-check']);
    expect(table.stdout).toMatch(/^STATUS\s+CHECK\s+DETAIL/m);
    expect(table.stdout).toContain('overall: WARN');
  });

  it('health-check fails (exit 1) when a source is unreachable', async () => {
    const closedPort = await getFreePort();
    const r = await cli(['health-check', '--json'], { REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${closedPort}` });
    expect(r.code).toBe(1);
    const report = parseJson<{ status: string; checks: { name: string; status: string }[] }>(r.stdout);
    expect(report.status).toBe('fail');
    expect(report.checks.find((c) => c.name === 'source redis')?.status).toBe('fail');
    expect(r.stdout + r.stderr).not.toContain('hunter2-secret');
  });

  it('scheduler status shows each tier, the last set from the manifests and no running job', async () => {
    const r = await cli(['scheduler', 'status', '--json']);
    const status = parseJson<{
      timeZone: string;
      tiers: { tier: string; cron: string; nextRun: string; previousScheduled: string; missed: boolean; pending: boolean; lastSet: { id: string } | null }[];
      running: unknown[];
    }>(r.stdout);
    expect(status.timeZone).toBe('Asia/Seoul');
    expect(status.tiers.map((t) => [t.tier, t.cron])).toEqual([
      ['daily', '0 2 * * *'],
      ['weekly', '0 3 * * 0'],
      ['monthly', '0 4 1 * *'],
    ]);
    const [daily, weekly, monthly] = status.tiers;
    expect(daily!.lastSet?.id).toBe(firstSet);
    expect(daily!.missed).toBe(false);
    expect(Date.parse(daily!.nextRun)).toBeGreaterThan(Date.now());
    // weekly and monthly never ran, and no slot of theirs came since the first daily set
    // (the service start, for a storage without the scheduler's marker): pending, not missed.
    expect(weekly!.lastSet).toBeNull();
    expect(weekly).toMatchObject({ missed: false, pending: true });
    expect(monthly).toMatchObject({ missed: false, pending: true });
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(status.running).toEqual([]);
    const text = await cli(['scheduler', 'status']);
    expect(text.stdout).toContain('running: nothing');
    expect(text.stdout).toMatch(/^daily\s+0 2 \* \* \*\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+09:00\s+scholaria_backup_/m);
  });

  it('audit prints every operation and audit verify checks the hash chain', async () => {
    const r = await cli(['audit', '--json']);
    expect(r.code).toBe(0);
    const records = parseJson<{ action: string; setId: string | null; result: string; hash: string }[]>(r.stdout);
    const actions = records.map((x) => x.action);
    expect(actions).toContain('backup');
    expect(actions).toContain('verify');
    // restore --component postgres, restore latest, restore --target-database (dry runs are not audited)
    expect(actions.filter((a) => a === 'restore')).toHaveLength(3);
    const ok = await cli(['audit', 'verify']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/intact: \d+ lines/);

    // Tamper with a copy of the storage: verify names the first broken line.
    const copy = join(work.path, 'tampered');
    cpSync(backupDir, copy, { recursive: true });
    const auditDir = join(copy, '.scholaria-backup', 'audit');
    const file = readdirSync(auditDir)[0]!;
    const lines = readFileSync(join(auditDir, file), 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"result":"ok"', '"result":"failed"');
    writeFileSync(join(auditDir, file), lines.join('\n'));
    const broken = await cli(['audit', 'verify', '--json'], { BACKUP_DIR: copy });
    expect(broken.code).toBe(1);
    const result = parseJson<{ ok: boolean; firstBroken: { file: string; line: number; reason: string } }>(broken.stdout);
    expect(result.ok).toBe(false);
    expect(result.firstBroken.line).toBe(2);
    expect(result.firstBroken.file).toContain(file);
    const text = await cli(['audit', 'verify'], { BACKUP_DIR: copy });
    expect(text.stdout).toContain(`line 2`);
  });

  it('backup --component redis backs up one component; list shows the sets newest first', async () => {
    const r = await cli(['backup', '--tier', 'weekly', '--component', 'redis', '--json']);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const result = parseJson<{ setId: string; components: { name: string }[] }>(r.stdout);
    expect(result.components.map((c) => c.name)).toEqual(['redis']);
    const list = parseJson<SetJson[]>((await cli(['list', '--json'])).stdout);
    expect(list.map((s) => s.id)).toEqual([result.setId, firstSet]);
  });
});

describe('a component that fails', () => {
  it('makes a partial set: exit 3, the other components stored, the failure named', async () => {
    const closedPort = await getFreePort();
    const partialDir = join(work.path, 'partial');
    const r = await cli(['backup', '--tier', 'daily', '--json'], { BACKUP_DIR: partialDir, REDIS_URL: `redis://127.0.0.1:${closedPort}` });
    expect(r.code, r.stderr).toBe(3);
    const result = parseJson<{ setId: string; status: string; components: { name: string; status: string; error: { code: string; message: string } | null }[] }>(r.stdout);
    expect(result.status).toBe('partial');
    expect(result.components.map((c) => [c.name, c.status])).toEqual([
      ['postgres', 'ok'],
      ['redis', 'failed'],
    ]);
    expect(result.components[1]!.error?.message).toMatch(/redis/i);
    const sets = parseJson<SetJson[]>((await cli(['list', '--json'], { BACKUP_DIR: partialDir })).stdout);
    expect(sets.map((s) => [s.id, s.status])).toEqual([[result.setId, 'partial']]);
    const text = await cli(['list'], { BACKUP_DIR: partialDir });
    expect(text.stdout).toContain('redis:FAILED');
  });
});

describe('bad input: clear message, the right exit code, nothing written', () => {
  it('unknown command: exit 2 with the --help hint', async () => {
    const before = setDirs();
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toContain('hint: run `scholaria-backup --help` for the usage');
    const group = await cli(['scheduler']);
    expect(group.code).toBe(2);
    expect(group.stderr).toContain('Usage: scholaria-backup scheduler');
    expect(setDirs()).toEqual(before);
  });

  it('unknown flag: exit 2 with the --help hint, no backup taken', async () => {
    const before = setDirs();
    const r = await cli(['backup', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--frobnicate'");
    expect(r.stderr).toContain('hint: run `scholaria-backup backup --help` for the usage');
    expect(setDirs()).toEqual(before);
  });

  it('invalid --tier value: exit 2', async () => {
    const before = setDirs();
    const r = await cli(['backup', '--tier', 'hourly']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hourly.*invalid|invalid.*hourly/i);
    expect(setDirs()).toEqual(before);
  });

  it('unknown set id: exit 2 naming the set, nothing restored, no log written', async () => {
    const logsBefore = readdirSync(logDir).map((f) => `${f}:${statSync(join(logDir, f)).size}`);
    await redis.command('SET', 'session:alice', 'changed-again');
    const r = await cli(['restore', 'scholaria_backup_20990101_000000', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: backup set scholaria_backup_20990101_000000 does not exist');
    expect(r.stderr).toContain('hint: Run `scholaria-backup list`');
    const malformed = await cli(['restore', 'not-a-set', '--yes']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('"not-a-set" is not a backup set id');
    expect(await redisGet('session:alice')).toBe('changed-again');
    expect(readdirSync(logDir).map((f) => `${f}:${statSync(join(logDir, f)).size}`)).toEqual(logsBefore);
  });

  it('unknown component: exit 2 naming it, for backup and restore', async () => {
    const before = setDirs();
    const b = await cli(['backup', '--component', 'mysql']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('unknown component "mysql"');
    expect(b.stderr).toContain('configured components: postgres, redis');
    expect(setDirs()).toEqual(before);
    const r = await cli(['restore', firstSet, '--component', 'qdrant', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has no component "qdrant"');
    expect(await redisGet('session:alice')).toBe('changed-again');
  });

  it('invalid environment variables: one message listing each, no secret, exit 2, nothing written', async () => {
    const fresh = join(work.path, 'never-created');
    const freshLogs = join(work.path, 'never-created-logs');
    const r = await cli(['backup'], {
      BACKUP_DIR: fresh,
      BACKUP_LOG_DIR: freshLogs,
      BACKUP_DAILY_RETENTION: 'seven',
      BACKUP_DAILY_SCHEDULE: 'at two',
      DATABASE_URL: 'mysql://app:Sup3rSecretPw@db:3306/scholaria',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: Invalid environment configuration: 3 variables to fix');
    expect(r.stderr).toContain('BACKUP_DAILY_RETENTION="seven"');
    expect(r.stderr).toContain('BACKUP_DAILY_SCHEDULE="at two"');
    expect(r.stderr).toMatch(/DATABASE_URL=.*postgres:\/\//);
    expect(r.stderr).toMatch(/^hint: /m);
    expect(r.stdout + r.stderr).not.toContain('Sup3rSecretPw');
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(freshLogs)).toBe(false);

    const json = await cli(['list', '--json'], { BACKUP_DIR: fresh, BACKUP_LOG_DIR: freshLogs, BACKUP_CONCURRENCY: '0' });
    expect(json.code).toBe(2);
    const doc = parseJson<{ ok: boolean; error: { code: string; message: string } }>(json.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe('CONFIG_INVALID');
    expect(doc.error.message).toContain('BACKUP_CONCURRENCY');
    expect(existsSync(fresh)).toBe(false);
  });

  it('no output of any run above carried the database password', () => {
    for (const r of outputs) expect(r.stdout + r.stderr).not.toContain(pg.password);
  });
});
