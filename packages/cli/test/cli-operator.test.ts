import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantSimulator, startRedis, type PostgresServer, type QdrantSimulator, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { cliRunner, startCliStack, stopCliStack, topicCount as countTopics } from './cli-harness.js';
import { baseEnv, BIN, PACKAGES, parseJson, runCommand, type RunResult } from './helpers.js';

// Issue 18: the recovery path as an operator walks it during an outage. The built binary,
// configured through the environment, against PostgreSQL 15 and Redis with passwords.

let pg: PostgresServer, redis: RedisServer, work: TempDir, backupDir: string, logDir: string;
const { cli, env, outputs } = cliRunner(() => ({ pg, redis, backupDir, logDir }));

/** Runs the binary with its stdout closed by the reader at once (`... | true`). */
function runWithClosedStdout(args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: baseEnv(env()), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: '', stderr }));
  });
}

const topicCount = () => countTopics(pg);

let fullSet = '';
let redisSet = '';

beforeAll(async () => {
  ({ pg, redis, work, backupDir, logDir } = await startCliStack('scholaria-cli-operator-', { redisPassword: 'Redis-Pw-4417' }));
  await pg.query('scholaria', "create table topics (id serial primary key, name text not null); insert into topics (name) select 'topic ' || g from generate_series(1, 200) g");
  await redis.command('SET', 'session:alice', 'token-a');
});

afterAll(() => stopCliStack({ pg, redis, work }));

describe('2. a storage root that does not exist is an error, not "no backups yet"', () => {
  it('list, restore, verify, prune, show, drill, health-check, scheduler status, audit and unlock exit 2 naming the path; none creates it', async () => {
    const commands = [
      ['list'], ['restore', 'latest', '--dry-run'], ['restore', 'latest', '--yes'], ['verify'], ['health-check'], ['prune', '--dry-run'], ['prune'],
      ['scheduler', 'status'], ['show', 'latest'], ['drill'], ['audit'], ['unlock', '--yes'],
    ];
    for (const args of commands) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`the backup folder ${backupDir} does not exist: is the volume mounted?`);
      expect(r.stderr).not.toContain('Run a backup first');
      expect(existsSync(backupDir)).toBe(false);
    }
    const json = await cli(['list', '--json']);
    expect(json.code).toBe(2);
    expect(parseJson<{ ok: boolean; error: { code: string; message: string } }>(json.stdout)).toMatchObject({ ok: false, error: { message: expect.stringContaining(backupDir) } });
  });

  it('backup creates the folder and says so', async () => {
    const r = await cli(['backup', '--tier', 'daily', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`created the backup folder ${backupDir}`);
    fullSet = parseJson<{ setId: string }>(r.stdout).setId;
    expect(existsSync(join(backupDir, fullSet, 'manifest.json'))).toBe(true);
    // The folder exists now: list works and shows the set.
    const list = await cli(['list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(fullSet);
  });
});

describe('1. latest with --component is the newest set that holds those components', () => {
  it('restore --component postgres latest after a redis-only backup restores the newest set with postgres', async () => {
    const r = await cli(['backup', '--component', 'redis', '--json']);
    expect(r.code, r.stderr).toBe(0);
    redisSet = parseJson<{ setId: string }>(r.stdout).setId;
    expect(redisSet).not.toBe(fullSet);

    await pg.query('scholaria', 'delete from topics where id > 50');
    expect(await topicCount()).toBe(50);
    const restore = await cli(['restore', '--component', 'postgres', 'latest', '--yes', '--mode', 'in-place']);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stderr).toContain(`latest with postgres: ${fullSet}`);
    expect(restore.stderr).toContain(redisSet);
    expect(await topicCount()).toBe(200);

    // Without --component, latest is still the newest complete set (the redis-only one).
    const dry = await cli(['restore', 'latest', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(parseJson<{ setId: string }>(dry.stdout).setId).toBe(redisSet);
  });

  it('a component no set holds: exit 2 saying so', async () => {
    const r = await cli(['restore', '--component', 'qdrant', 'latest', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no backup set holds a successful qdrant backup');
  });
});

describe('5. a closed stdout ends the command quietly', () => {
  it('prune --dry-run --json and audit --json into a closed pipe: no EPIPE stack trace', async () => {
    for (const args of [['prune', '--dry-run', '--json'], ['audit', '--json'], ['list', '--json']]) {
      const r = await runWithClosedStdout(args);
      expect(r.stderr, args.join(' ')).not.toMatch(/EPIPE|Error:|at .*\(.*\.js:\d+/);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });
});

describe('8. usage errors: one line, a suggestion, JSON with --json', () => {
  it('a typo prints the suggestion and the --help hint, not the whole help', async () => {
    const r = await cli(['bakup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown command 'bakup'");
    expect(r.stderr).toContain('hint: did you mean `backup`?');
    expect(r.stderr).toContain('hint: run `scholaria-backup --help` for the usage');
    expect(r.stderr).not.toContain('Usage:');
    expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(3);
  });

  it('`status` suggests `scheduler status`', async () => {
    const r = await cli(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean `scholaria-backup scheduler status`?');
  });

  it('--json covers usage errors: { ok: false, error } on stdout', async () => {
    const r = await cli(['list', '--json', '--frobnicate']);
    expect(r.code).toBe(2);
    const doc = parseJson<{ ok: boolean; error: { code: string; message: string; hint: string } }>(r.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe('USAGE');
    expect(doc.error.message).toContain("unknown option '--frobnicate'");
    expect(doc.error.hint).toContain('scholaria-backup list --help');
    const tier = await cli(['backup', '--tier', 'hourly', '--json']);
    expect(tier.code).toBe(2);
    expect(parseJson<{ ok: boolean; error: { message: string } }>(tier.stdout).error.message).toContain('hourly');
  });
});

describe('3. a fresh install is not all warnings', () => {
  it('before the scheduler ever ran: every tier pending, health-check OK (exit 0), the non-superuser note shown once as a fact', async () => {
    const fresh = join(work.path, 'fresh-backup');
    mkdirSync(fresh);
    await pg.query('postgres', "create role app_user login password 'App-Pw-9921'");
    await pg.query('postgres', 'grant connect on database scholaria to app_user');
    await pg.query('scholaria', 'grant select on all tables in schema public to app_user');
    const appUrl = pg.url('scholaria').replace(/\/\/[^@]*@/, '//app_user:App-Pw-9921@');
    const status = await cli(['scheduler', 'status', '--json'], { BACKUP_DIR: fresh });
    expect(status.code, status.stderr).toBe(0);
    const doc = parseJson<{ tiers: { tier: string; missed: boolean; pending: boolean }[] }>(status.stdout);
    expect(doc.tiers.map((t) => [t.tier, t.missed, t.pending])).toEqual([
      ['daily', false, true],
      ['weekly', false, true],
      ['monthly', false, true],
    ]);
    const text = await cli(['scheduler', 'status'], { BACKUP_DIR: fresh });
    expect(text.stdout).not.toContain('MISSED');
    expect(text.stdout).toContain('pending');

    const health = await cli(['health-check', '--json'], { BACKUP_DIR: fresh, DATABASE_URL: appUrl });
    expect(health.code, health.stdout + health.stderr).toBe(0);
    const report = parseJson<{ status: string; checks: { name: string; status: string; message: string }[] }>(health.stdout);
    expect(report.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    const pgCheck = report.checks.find((c) => c.name === 'source postgres')!;
    expect(pgCheck.message).toContain('cannot read role passwords');
    expect(pgCheck.message).toContain('superuser');
    // health-check created nothing in the empty folder.
    expect(readdirSync(fresh).filter((f) => !f.startsWith('.'))).toEqual([]);
    expect(existsSync(join(fresh, '.scholaria-backup', 'scheduler'))).toBe(false);
  });

  it('once the service has been running, a slot that left no set is MISSED (exit 3)', async () => {
    const old = join(work.path, 'old-service');
    mkdirSync(join(old, '.scholaria-backup', 'scheduler'), { recursive: true });
    writeFileSync(join(old, '.scholaria-backup', 'scheduler', 'service.json'), JSON.stringify({ firstStartedAt: '2020-01-01T00:00:00.000Z' }));
    const status = await cli(['scheduler', 'status', '--json'], { BACKUP_DIR: old });
    expect(status.code).toBe(3);
    const doc = parseJson<{ tiers: { tier: string; missed: boolean; pending: boolean }[] }>(status.stdout);
    expect(doc.tiers.every((t) => t.missed && !t.pending)).toBe(true);
    const health = await cli(['health-check'], { BACKUP_DIR: old });
    expect(health.code).toBe(3);
    expect(health.stdout).toMatch(/WARN\s+schedule daily/);
  });
});

describe('7 and 10. hints name what a command-line user can change', () => {
  it('a swap restore by a user without CREATEDB: the dry run says so and names both ways out as flags', async () => {
    const appUrl = pg.url('scholaria').replace(/\/\/[^@]*@/, '//app_user:App-Pw-9921@');
    const r = await cli(['restore', 'latest', '--component', 'postgres', '--dry-run'], { DATABASE_URL: appUrl });
    expect(r.code).toBe(1);
    const all = r.stdout + r.stderr;
    expect(all).toContain('CREATEDB');
    expect(all).toContain('`--mode in-place`');
    expect(all).not.toContain('mode "in-place"');
    expect(all).not.toContain('App-Pw-9921');
  });

  it('PG_DUMP_PATH and PG_BIN_DIR problems name the variables, not the library options', async () => {
    const dump = await cli(['backup', '--component', 'postgres'], { PG_DUMP_PATH: '/nonexistent/pg_dump' });
    expect(dump.code).toBe(1);
    expect(dump.stdout + dump.stderr).toContain('PG_DUMP_PATH');
    expect(dump.stdout + dump.stderr).not.toMatch(/pgDumpPath|binDir/);
    const bin = await cli(['backup', '--component', 'postgres'], { PG_BIN_DIR: join(work.path, 'no-such-bin') });
    expect(bin.code).toBe(1);
    expect(bin.stdout + bin.stderr).toContain('PG_BIN_DIR');
    expect(bin.stdout + bin.stderr).not.toMatch(/pgDumpPath|pgRestorePath|binDir/);
  });
});

describe('restore targets for Redis, like --target-database', () => {
  let other: RedisServer;
  beforeAll(async () => {
    other = await startRedis({ password: 'Other-Redis-Pw-77' });
  });
  afterAll(async () => {
    await other?.stop();
  });

  it('--target-redis-db restores into another database index of the same server, the live one untouched', async () => {
    await redis.command('SET', 'session:alice', 'live-value');
    const r = await cli(['restore', fullSet, '--component', 'redis', '--target-redis-db', '5', '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(String(await redis.command('GET', 'session:alice'))).toBe('live-value');
    // A script can SELECT for itself: read database 5 without a session.
    const inDb5 = await redis.command('EVAL', "redis.call('SELECT', '5'); return redis.call('GET', KEYS[1])", '1', 'session:alice');
    expect(String(inDb5)).toBe('token-a');
  });

  it('--target-redis-url restores into another server; its password is never printed', async () => {
    const r = await cli(['restore', fullSet, '--component', 'redis', '--target-redis-url', other.url(), '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(String(await other.command('GET', 'session:alice'))).toBe('token-a');
    expect(String(await redis.command('GET', 'session:alice'))).toBe('live-value');
    expect(r.stdout + r.stderr).not.toContain('Other-Redis-Pw-77');
  });

  it('the redis flags without the redis component: exit 2', async () => {
    const r = await cli(['restore', fullSet, '--component', 'postgres', '--target-redis-db', '5', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('apply to the redis component');
  });
});

describe('restore targets for Qdrant: another collection name', () => {
  let sim: QdrantSimulator;
  let qdrantDir: string;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${sim.url}${path}`, { method, headers: { 'content-type': 'application/json', 'api-key': 'Qd-Key-5150' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return (await res.json()) as { result: unknown };
  };
  const qenv = () => ({ BACKUP_DIR: qdrantDir, QDRANT_URL: sim.url, QDRANT_API_KEY: 'Qd-Key-5150', BACKUP_COMPONENTS: 'qdrant' });
  beforeAll(async () => {
    sim = await startQdrantSimulator({ apiKey: 'Qd-Key-5150' });
    qdrantDir = join(work.path, 'qdrant-backup');
    await call('PUT', '/collections/chunks', { vectors: { size: 2, distance: 'Dot' } });
    await call('PUT', '/collections/chunks/points?wait=true', { points: [{ id: 1, vector: [0.1, 0.2], payload: { k: 'one' } }, { id: 2, vector: [0.3, 0.4] }] });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('--target-collection and --target-collection-suffix restore beside the live collection', async () => {
    const b = await cli(['backup', '--json'], qenv());
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const r = await cli(['restore', 'latest', '--component', 'qdrant', '--target-collection', 'chunks_check', '--yes'], qenv());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const names = () => sim.collections().map((c) => c.name).sort();
    expect(names()).toEqual(['chunks', 'chunks_check']);
    expect(sim.collections().find((c) => c.name === 'chunks_check')!.pointsCount).toBe(2);
    const s = await cli(['restore', 'latest', '--component', 'qdrant', '--target-collection-suffix', '_restored', '--yes'], qenv());
    expect(s.code, s.stdout + s.stderr).toBe(0);
    expect(names()).toEqual(['chunks', 'chunks_check', 'chunks_restored']);
    const wrong = await cli(['restore', 'latest', '--component', 'qdrant', '--target-collection', 'nope=x', '--dry-run'], qenv());
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('has no Qdrant collection "nope"');
    expect(outputs.every((o) => !(o.stdout + o.stderr).includes('Qd-Key-5150'))).toBe(true);
  });
});

describe('show, list filters, ad-hoc prune', () => {
  it('show <set> prints components, artifacts, sizes, codecs, counts and versions; --json too', async () => {
    const r = await cli(['show', fullSet]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`set ${fullSet}`);
    expect(r.stdout).toMatch(/postgres\s+ok\s+.*server 15\.\d+, pg_dump 15\.\d+.*scholaria: 1 table, 200 rows/);
    expect(r.stdout).toMatch(/redis\s+ok\s+.*1 key \(db0: 1\)/);
    expect(r.stdout).toMatch(/postgres\/scholaria\.dump\.zst\s+\S+ \S+\s+\S+ \S+\s+zstd/);
    const json = await cli(['show', 'latest', '--json']);
    const doc = parseJson<{ id: string; components: { name: string; counts: Record<string, unknown>; versions: Record<string, string>; artifacts: { sha256: string; codecs: string[] }[] }[] }>(json.stdout);
    expect(doc.id).toBe(redisSet);
    expect(doc.components.map((c) => c.name)).toEqual(['redis']);
    expect(doc.components[0]!.counts).toMatchObject({ keys: 1, keysPerDatabase: { 0: 1 } });
    expect(doc.components[0]!.versions.server).toMatch(/^\d+\.\d+/);
    expect(doc.components[0]!.artifacts[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    const missing = await cli(['show', 'scholaria_backup_20990101_000000']);
    expect(missing.code).toBe(2);
  });

  it('list --tier, --component and --last N filter the sets', async () => {
    const daily = parseJson<{ id: string }[]>((await cli(['list', '--tier', 'daily', '--json'])).stdout).map((s) => s.id);
    expect(daily).toEqual([fullSet]);
    const withPg = parseJson<{ id: string }[]>((await cli(['list', '--component', 'postgres', '--json'])).stdout).map((s) => s.id);
    expect(withPg).toContain(fullSet);
    expect(withPg).not.toContain(redisSet);
    const last = parseJson<{ id: string }[]>((await cli(['list', '--last', '1', '--json'])).stdout).map((s) => s.id);
    expect(last).toEqual([redisSet]);
    const none = await cli(['list', '--tier', 'monthly']);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('no backup sets match');
  });

  it('prune --keep-last 1 --dry-run plans from the command-line policy and deletes nothing', async () => {
    const before = readdirSync(backupDir).sort();
    const r = await cli(['prune', '--keep-last', '1', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = parseJson<{ dryRun: boolean; keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }>(r.stdout);
    expect(plan.dryRun).toBe(true);
    expect(plan.keep.map((k) => k.id)).toContain(redisSet);
    expect(plan.remove.map((k) => k.id)).toContain(fullSet);
    expect(readdirSync(backupDir).sort()).toEqual(before);
    // Without the flags, the configured tier policies keep both.
    const configured = parseJson<{ remove: { id: string }[] }>((await cli(['prune', '--dry-run', '--json'])).stdout);
    expect(configured.remove.map((k) => k.id)).not.toContain(fullSet);
    const bad = await cli(['prune', '--keep-daily', 'seven', '--dry-run']);
    expect(bad.code).toBe(2);
  });
});

describe('9. one time zone where a person reads; unlock for a stale lock', () => {
  const lockDir = () => join(backupDir, '.scholaria-backup', 'locks');
  it('a lock from another host blocks with its times in the configured zone; unlock shows the owner and removes it after confirmation', async () => {
    mkdirSync(lockDir(), { recursive: true });
    const now = new Date();
    const lock = { id: '000001700000000-abcdefabcdef', action: 'backup', host: 'db-host-2', pid: 4242, actor: 'root@db-host-2', createdAt: now.toISOString(), heartbeatAt: now.toISOString(), ttlMs: 600_000, acquired: true };
    writeFileSync(join(lockDir(), `${lock.id}.json`), JSON.stringify(lock));
    const blocked = await cli(['backup', '--component', 'redis']);
    expect(blocked.code).toBe(1);
    expect(blocked.stdout + blocked.stderr).toContain('pid 4242 on db-host-2');
    expect(blocked.stdout + blocked.stderr).toMatch(/since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+09:00/);
    expect(blocked.stdout + blocked.stderr).not.toContain(now.toISOString());
    expect(blocked.stdout + blocked.stderr).toContain('scholaria-backup unlock');

    const refused = await cli(['unlock']);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain('backup on fs:');
    expect(refused.stdout).toContain('by root@db-host-2 (pid 4242 on db-host-2)');
    expect(refused.stderr).toContain('--yes');
    expect(existsSync(join(lockDir(), `${lock.id}.json`))).toBe(true);

    const done = await cli(['unlock', '--yes']);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('removed 1 lock(s)');
    expect(existsSync(join(lockDir(), `${lock.id}.json`))).toBe(false);
    const none = await cli(['unlock']);
    expect(none.stdout).toContain('no locks');
  });

  it('the database kept by a swap restore is named in the configured zone, like set ids', async () => {
    const r = await cli(['restore', fullSet, '--component', 'postgres', '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const names = (await pg.query<{ datname: string }>('postgres', "select datname from pg_database where datname like 'scholaria_before_%'")).map((x) => x.datname);
    expect(names.length).toBeGreaterThan(0);
    const stamp = /_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(names.sort().at(-1)!)!;
    const asSeoul = Date.parse(`${stamp[1]}-${stamp[2]}-${stamp[3]}T${stamp[4]}:${stamp[5]}:${stamp[6]}+09:00`);
    expect(Math.abs(Date.now() - asSeoul)).toBeLessThan(10 * 60_000);
  });
});

describe('7. databases kept by swap restores are shown and can be cleaned up', () => {
  it('health-check lists them with their size; restore cleanup drops them after confirmation', async () => {
    const kept = async () => (await pg.query<{ datname: string }>('postgres', "select datname from pg_database where datname like 'scholaria_before_%'")).map((x) => x.datname);
    const before = await kept();
    expect(before.length).toBeGreaterThan(0);
    const health = await cli(['health-check', '--json']);
    const pgCheck = parseJson<{ checks: { name: string; status: string; message: string }[] }>(health.stdout).checks.find((c) => c.name === 'source postgres')!;
    expect(pgCheck.status).toBe('ok');
    expect(pgCheck.message).toMatch(new RegExp(`${before[0]} \\(\\d+\\.\\d MiB\\)`));
    expect(pgCheck.message).toContain('scholaria-backup restore cleanup');

    // scheduler status lists them too, with their size, and its exit code does not change.
    const statusJson = await cli(['scheduler', 'status', '--json']);
    expect(statusJson.code, statusJson.stderr).toBe(0);
    const listed = parseJson<{ keptDatabases: { component: string; name: string; of: string; bytes: number }[] }>(statusJson.stdout).keptDatabases;
    expect(listed.map((k) => k.name)).toEqual(before);
    for (const k of listed) {
      expect(k).toMatchObject({ component: 'postgres', of: 'scholaria' });
      expect(k.bytes).toBeGreaterThan(1024 * 1024);
    }
    const statusText = await cli(['scheduler', 'status']);
    expect(statusText.code).toBe(0);
    expect(statusText.stdout).toMatch(new RegExp(`kept database: ${before[0]} \\(postgres, was "scholaria", \\d+(\\.\\d+)? MiB\\)`));
    expect(statusText.stdout).toContain('scholaria-backup restore cleanup');

    const dry = await cli(['restore', 'cleanup', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`kept: ${before[0]} (postgres, was "scholaria"`);
    const refused = await cli(['restore', 'cleanup']);
    expect(refused.code).toBe(2);
    expect(await kept()).toEqual(before);
    const done = await cli(['restore', 'cleanup', '--yes']);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(`dropped ${before.length} database(s)`);
    expect(await kept()).toEqual([]);
    const after = await cli(['scheduler', 'status', '--json']);
    expect(parseJson<{ keptDatabases: unknown[] }>(after.stdout).keptDatabases).toEqual([]);
    expect((await cli(['scheduler', 'status'])).stdout).not.toContain('kept database:');
    // The live database is untouched.
    expect(await topicCount()).toBe(200);
  });
});

/** Runs the binary under a pseudo-terminal (util-linux `script`), as an operator's shell would. */
function runInTerminal(args: string[], extra: Record<string, string> = {}): Promise<RunResult> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', `stty cols 160 2>/dev/null; ${quoted}`, '/dev/null'], { env: baseEnv({ ...env(extra), TERM: 'xterm' }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
    child.stdin.end();
  });
}

describe('4. progress', () => {
  it('a dump that outgrew the previous set shows bytes and rate, never "100% ETA done"', async () => {
    await pg.query('scholaria', "create table grown (id serial primary key, body text); insert into grown (body) select md5(g::text) || repeat('x', 200) from generate_series(1, 20000) g");
    const r = await runInTerminal(['backup', '--component', 'postgres']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/postgres backup\s+[\d.]+ \S+ [\d.]+ \S+\/s/);
    expect(r.stdout).not.toMatch(/100% .*ETA done/);
    expect(r.stdout).toMatch(/done in/);
    outputs.push(r);
  });

  it('--no-progress and --quiet: no progress lines; --quiet also no info lines; the result is still printed', async () => {
    const plain = await cli(['backup', '--component', 'redis']);
    expect(plain.stderr).toMatch(/redis: backup dump\.resp done/);
    const noProgress = await cli(['backup', '--component', 'redis', '--no-progress']);
    expect(noProgress.code).toBe(0);
    expect(noProgress.stderr).not.toMatch(/backup dump\.resp done/);
    expect(noProgress.stderr).toMatch(/INFO/);
    const quiet = await cli(['--quiet', 'backup', '--component', 'redis']);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toMatch(/INFO|done,/);
    expect(quiet.stdout).toMatch(/COMPLETE/);
  });
});

describe('6. restore output says what happened, once', () => {
  it('no "restore ... done" before the restore (nor in a dry run); Redis shows only databases with keys', async () => {
    const dry = await cli(['restore', fullSet, '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stderr).not.toMatch(/restore \S+ done/);
    expect(dry.stdout).not.toContain('db1: 0');
    expect(dry.stdout).toMatch(/db0: 1, 15 empty databases/);
    expect(dry.stdout).toMatch(/would FLUSHDB database\(s\) 0-15/);
    const real = await cli(['restore', fullSet, '--component', 'postgres', '--mode', 'in-place', '--yes']);
    expect(real.code, real.stdout + real.stderr).toBe(0);
    expect(real.stderr).not.toMatch(/restore \S+ done/);
    expect(real.stdout).toMatch(/postgres: ok/);
  });

  it('an error is printed once, its component named once', async () => {
    const appUrl = pg.url('scholaria').replace(/\/\/[^@]*@/, '//app_user:App-Pw-9921@');
    const r = await cli(['restore', fullSet, '--component', 'postgres', '--yes'], { DATABASE_URL: appUrl });
    expect(r.code).toBe(1);
    const all = r.stdout + r.stderr;
    expect(all.split('may not create databases').length - 1).toBe(1);
    const b = await cli(['backup', '--component', 'postgres,redis'], { PG_DUMP_PATH: '/nonexistent/pg_dump' });
    expect(b.code).toBe(3);
    expect(b.stdout + b.stderr).not.toContain('postgres: postgres:');
    expect((b.stdout + b.stderr).split('pg_dump not found').length - 1).toBe(1);
    const audit = await cli(['audit']);
    expect(audit.stdout).toContain('pg_dump not found');
    expect(audit.stdout).not.toContain('postgres: postgres:');
  });
});

describe('the scholaria-backup binary on PATH after the set-up', () => {
  it('`pnpm exec scholaria-backup` works from the repository root', async () => {
    const root = join(PACKAGES, '..');
    const r = await runCommand('pnpm', ['exec', 'scholaria-backup', '--version'], { cwd: root, env: {} });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('no secret in any output', () => {
  it('no run above printed the PostgreSQL or Redis password', () => {
    for (const r of outputs) {
      expect(r.stdout + r.stderr).not.toContain(pg.password);
      expect(r.stdout + r.stderr).not.toContain('Redis-Pw-4417');
      expect(r.stdout + r.stderr).not.toContain('App-Pw-9921');
    }
  });
});
