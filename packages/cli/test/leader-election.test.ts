import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startPostgres, startS3, type PostgresServer, type S3TestServer, type TempDir } from '@scholaria/backup-testkit';
import { assertBuilt, PACKAGES, parseJson, runBin, startBin, type LongRun } from './helpers.js';

// Three real `scheduler run` processes elect one leader on a real PostgreSQL (session advisory
// lock) or on s3rver (a lease object written with conditional writes); a fast 6-field cron
// gives a slot every few seconds. Everything waits on events with generous deadlines.

let work: TempDir;
let pg: PostgresServer;
let s3: S3TestServer;
const dist = (pkg: string) => pathToFileURL(join(PACKAGES, pkg, 'dist', 'index.js')).href;
const procs: LongRun[] = [];

beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('scholaria-leader-');
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  await pg.createDatabase('scholaria');
  await pg.query('scholaria', "create table chunks (id serial primary key, body text); insert into chunks (body) select repeat('x', 100) from generate_series(1, 200)");
}, 120_000);

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

afterAll(async () => {
  await Promise.allSettled([pg?.stop(), s3?.stop()]);
  await work?.remove();
});

interface RunEvent {
  event: 'run';
  tier: string;
  scheduledFor: string;
  setId: string | null;
  status: string;
  leaseLost?: boolean;
  error: { message: string } | null;
}
interface SkippedEvent {
  event: 'skipped';
  tier: string;
  scheduledFor: string;
  leader: { pid: number } | null;
}
type Event = RunEvent | SkippedEvent | { event: string };

function events(p: LongRun): Event[] {
  // Complete lines only: the last one may still be being written.
  const out = p.stdout();
  return out
    .slice(0, out.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => parseJson<Event>(l));
}
const runs = (p: LongRun) => events(p).filter((e): e is RunEvent => e.event === 'run');
const skips = (p: LongRun) => events(p).filter((e): e is SkippedEvent => e.event === 'skipped');

async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n${procs.map((p) => `--- pid ${p.child.pid}\n${p.stdout()}\n${p.stderr().slice(-3000)}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(args: string[], env: Record<string, string>, cwd: string): LongRun {
  const p = startBin(['scheduler', 'run', '--json', ...args], { env, cwd });
  procs.push(p);
  return p;
}

/** Slots every replica reported on (run or skipped): each must have exactly one run. */
function slotsSeenByAll(replicas: LongRun[]): Map<string, { runs: number; skips: number; runners: number[] }> {
  const bySlot = new Map<string, { runs: number; skips: number; runners: number[]; seenBy: Set<number> }>();
  replicas.forEach((p, i) => {
    for (const e of events(p)) {
      if (e.event !== 'run' && e.event !== 'skipped') continue;
      const slot = (e as RunEvent).scheduledFor;
      const entry = bySlot.get(slot) ?? { runs: 0, skips: 0, runners: [], seenBy: new Set<number>() };
      entry.seenBy.add(i);
      if (e.event === 'run') {
        entry.runs++;
        entry.runners.push(i);
      } else entry.skips++;
      bySlot.set(slot, entry);
    }
  });
  return new Map([...bySlot].filter(([, v]) => v.seenBy.size === replicas.length).map(([k, v]) => [k, { runs: v.runs, skips: v.skips, runners: v.runners }]));
}

/** A config file: the testkit's in-memory source, slow enough to be killed mid-run, fs storage, the given elector. */
function writeConfig(dir: string, options: { elector: string; backupDir: string; chunks: number; cron: string }): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'backup.config.mjs'),
    `import { defineConfig } from ${JSON.stringify(dist('core'))};
import { createFsStorage } from ${JSON.stringify(dist('fs'))};
import { createTestSource } from ${JSON.stringify(dist('testkit'))};
import { createPostgresLeaderElector } from ${JSON.stringify(dist('postgres'))};
import { createS3LeaderElector } from ${JSON.stringify(dist('s3'))};

export default defineConfig({
  sources: [createTestSource({ name: 'slow', files: { 'notes.txt': 'hello' }, generated: { 'big.bin': 64 * 1024 * ${options.chunks} }, chunkDelayMs: 50 })],
  storage: createFsStorage({ root: ${JSON.stringify(options.backupDir)} }),
  retention: { tiers: { daily: { within: '7d' } } },
  logDir: ${JSON.stringify(join(dir, 'logs'))},
  schedules: { daily: ${JSON.stringify(options.cron)} },
  leaderElection: ${options.elector},
});
`,
  );
}

/** The set a backup is writing now (its first artifact stored, no manifest yet) and the pid holding the storage lock. */
function runningBackup(backupDir: string): { setId: string; pid: number } | undefined {
  const locks = join(backupDir, '.scholaria-backup', 'locks');
  if (!existsSync(locks)) return undefined;
  const lock = readdirSync(locks)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      try {
        return JSON.parse(readFileSync(join(locks, f), 'utf8')) as { action: string; pid: number; acquired?: boolean };
      } catch {
        return undefined; // being written
      }
    })
    .find((l) => l?.action === 'backup' && l.acquired);
  if (!lock) return undefined;
  const setId = readdirSync(backupDir).find(
    (d) => d.startsWith('scholaria_backup_') && existsSync(join(backupDir, d, 'slow', 'notes.txt')) && !existsSync(join(backupDir, d, 'manifest.json')),
  );
  return setId ? { setId, pid: lock.pid } : undefined;
}

const completeSets = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith('scholaria_backup_') && existsSync(join(dir, d, 'manifest.json'))) : [];

describe('BACKUP_LEADER_ELECTION settings', () => {
  it('names what is wrong: an engine no adapter offers, postgres without DATABASE_URL, auto with nothing to elect on', async () => {
    const dir = join(work.path, 'settings');
    mkdirSync(join(dir, 'backup'), { recursive: true });
    const base = { BACKUP_DIR: join(dir, 'backup'), BACKUP_LOG_DIR: join(dir, 'logs'), REDIS_URL: 'redis://127.0.0.1:1' };
    for (const [value, message] of [
      ['etcd', /BACKUP_LEADER_ELECTION: "etcd" is not one of off, auto, s3, postgres/],
      ['postgres', /BACKUP_LEADER_ELECTION: postgres needs DATABASE_URL to be set/],
      ['auto', /BACKUP_LEADER_ELECTION: auto found nothing to elect a leader on: set BACKUP_S3_\* or DATABASE_URL/],
    ] as const) {
      const r = await runBin(['scheduler', 'status'], { env: { ...base, BACKUP_LEADER_ELECTION: value }, cwd: dir });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const off = await runBin(['scheduler', 'status'], { env: base, cwd: dir });
    expect(off.stdout).toContain('leader election: off');
  }, 120_000);
});

describe('leader election on PostgreSQL (session advisory lock)', () => {
  it('three replicas: exactly one runs each slot, the others skip it, and status names the leader', async () => {
    const dir = join(work.path, 'pg-three');
    mkdirSync(dir, { recursive: true });
    const backupDir = join(dir, 'backup');
    const env = {
      BACKUP_DIR: backupDir,
      BACKUP_LOG_DIR: join(dir, 'logs'),
      DATABASE_URL: pg.url('scholaria'),
      BACKUP_DAILY_SCHEDULE: '*/4 * * * * *',
      BACKUP_LEADER_ELECTION: 'postgres',
      BACKUP_LEADER_TTL: '3s',
      BACKUP_DRILL_SCHEDULE: 'off',
    };
    const replicas = [start([], env, dir), start([], env, dir), start([], env, dir)];
    await waitUntil('three slots every replica reported on', () => slotsSeenByAll(replicas).size >= 3, 180_000);
    const slots = slotsSeenByAll(replicas);
    for (const [slot, s] of slots) expect({ slot, runs: s.runs, skips: s.skips }).toEqual({ slot, runs: 1, skips: 2 });
    // One leader keeps leading while it lives.
    expect(new Set([...slots.values()].flatMap((s) => s.runners)).size).toBe(1);
    const leader = replicas[[...slots.values()][0]!.runners[0]!]!;
    for (const p of replicas.filter((r) => r !== leader)) {
      expect(skips(p).every((e) => e.leader?.pid === leader.child.pid)).toBe(true);
    }

    const status = await runBin(['scheduler', 'status', '--json'], { env, cwd: dir });
    const leaderRow = parseJson<{ leader: { elector: string; holder: { pid: number } | null } }>(status.stdout).leader;
    expect(leaderRow.elector).toMatch(/^postgres advisory lock -?\d+ .* on scholaria@/);
    expect(leaderRow.holder?.pid).toBe(leader.child.pid);
    const text = await runBin(['scheduler', 'status'], { env, cwd: dir });
    expect(text.stdout).toContain(`pid ${leader.child.pid}`);
    expect(text.stdout + text.stderr).not.toContain(pg.password);

    for (const p of replicas) p.child.kill('SIGTERM');
    for (const p of replicas) expect(await p.exited).toBe(0);
    // The storage holds one set per run, never two for one slot; the audit log one backup per run.
    const ran = replicas.flatMap(runs).filter((r) => r.status === 'complete');
    expect(ran.length).toBeGreaterThanOrEqual(3);
    const sets = completeSets(backupDir);
    expect(sets.sort()).toEqual(ran.map((r) => r.setId!).sort());
    const audit = readdirSync(join(backupDir, '.scholaria-backup', 'audit')).flatMap((f) =>
      readFileSync(join(backupDir, '.scholaria-backup', 'audit', f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; setId: string | null; result: string }),
    );
    expect(audit.filter((a) => a.action === 'backup' && a.result === 'ok').map((a) => a.setId).sort()).toEqual(ran.map((r) => r.setId).sort());
  }, 240_000);

  it('kill -9 of the leader mid-run: another replica takes the next slot; the killed set never looks done', async () => {
    const dir = join(work.path, 'pg-kill');
    const backupDir = join(dir, 'backup');
    writeConfig(dir, { elector: `createPostgresLeaderElector({ connection: { url: ${JSON.stringify(pg.url('scholaria'))} }, name: 'kill-test', ttlMs: 3000 })`, backupDir, chunks: 120, cron: '*/3 * * * * *' });
    const replicas = [start([], {}, dir), start([], {}, dir), start([], {}, dir)];
    // The leader's first run is under way once its first artifact is stored.
    let leader: LongRun | undefined;
    let killedSet = '';
    await waitUntil('a run under way', () => {
      const now = runningBackup(backupDir);
      leader = replicas.find((p) => p.child.pid === now?.pid);
      killedSet = now?.setId ?? '';
      return leader !== undefined;
    });
    leader!.child.kill('SIGKILL');
    await leader!.exited;
    const killedAt = Date.now();
    const survivors = replicas.filter((p) => p !== leader);
    await waitUntil('a survivor completing a later slot', () => survivors.some((p) => runs(p).some((r) => r.status === 'complete' && Date.parse(r.scheduledFor) > killedAt - 1000)), 180_000);
    // Exactly one survivor leads after the kill.
    const after = survivors.map((p) => runs(p).filter((r) => Date.parse(r.scheduledFor) > killedAt - 1000));
    expect(after.filter((r) => r.length > 0)).toHaveLength(1);
    expect(existsSync(join(backupDir, killedSet, 'manifest.json'))).toBe(false);
    const list = await runBin(['list', '--json'], { env: {}, cwd: dir });
    const listed = parseJson<{ id: string; status: string }[]>(list.stdout);
    expect(listed.map((s) => s.id)).not.toContain(killedSet);
    expect(listed.every((s) => s.status === 'complete')).toBe(true);
    expect(listed.length).toBeGreaterThanOrEqual(1);
  }, 240_000);

  it('a leader whose lock session is terminated aborts its run: nothing of it is published', async () => {
    const dir = join(work.path, 'pg-lost');
    const backupDir = join(dir, 'backup');
    writeConfig(dir, { elector: `createPostgresLeaderElector({ connection: { url: ${JSON.stringify(pg.url('scholaria'))} }, name: 'lost-test', ttlMs: 3000 })`, backupDir, chunks: 400, cron: '0 0 0 1 1 *' });
    const p = start(['--run-now', 'daily'], {}, dir);
    await waitUntil('a run under way', () => runningBackup(backupDir)?.pid === p.child.pid);
    const setId = runningBackup(backupDir)!.setId;
    // The leader's lock session (named after the process); ending it ends the lease at once.
    const killed = await pg.query('scholaria', "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name like $1", [`scholaria-backup leader %:${p.child.pid}:%`]);
    expect(killed).toEqual([{ ok: true }]);
    await waitUntil('the aborted run', () => runs(p).length > 0);
    const run = runs(p)[0]!;
    expect(run.leaseLost).toBe(true);
    expect(run.status).toBe('failed');
    expect(run.error?.message).toMatch(/lost the scheduler leadership/);
    const logs = readdirSync(join(dir, 'logs')).map((f) => readFileSync(join(dir, 'logs', f), 'utf8')).join('\n');
    expect(logs).toMatch(/leadership lost .*the connection holding the lock/);
    expect(existsSync(join(backupDir, setId, 'manifest.json'))).toBe(false);
    expect(p.child.exitCode).toBe(null);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const list = await runBin(['list', '--json'], { env: {}, cwd: dir });
    expect(parseJson<unknown[]>(list.stdout)).toEqual([]);
  }, 180_000);
});

describe('leader election on S3 (conditional writes on a lease object)', () => {
  const s3Env = (dir: string, prefix: string) => ({
    BACKUP_DIR: join(dir, 'local'),
    BACKUP_LOG_DIR: join(dir, 'logs'),
    BACKUP_S3_BUCKET: s3.bucket,
    BACKUP_S3_PREFIX: prefix,
    BACKUP_S3_ENDPOINT: s3.endpoint,
    BACKUP_S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    DATABASE_URL: pg.url('scholaria'),
    BACKUP_LEADER_ELECTION: 's3',
    BACKUP_LEADER_TTL: '3s',
    BACKUP_LEADER_NAME: prefix,
    BACKUP_DRILL_SCHEDULE: 'off',
  });
  const client = () => new S3Client(s3.clientConfig);

  it('three replicas: exactly one runs each slot; kill -9 of the leader hands the next slots to one other replica', async () => {
    const dir = join(work.path, 's3-three');
    mkdirSync(dir, { recursive: true });
    const env = { ...s3Env(dir, 'three'), BACKUP_DAILY_SCHEDULE: '*/4 * * * * *' };
    // Each replica keeps its own local folder (like a pod's emptyDir); S3 is the shared storage.
    const replicas = [0, 1, 2].map((i) => start([], { ...env, BACKUP_DIR: join(dir, `local-${i}`) }, dir));
    await waitUntil('three slots every replica reported on', () => slotsSeenByAll(replicas).size >= 3, 180_000);
    const slots = slotsSeenByAll(replicas);
    for (const [slot, s] of slots) expect({ slot, runs: s.runs, skips: s.skips }).toEqual({ slot, runs: 1, skips: 2 });
    const leaderIndex = [...slots.values()][0]!.runners[0]!;
    const leader = replicas[leaderIndex]!;
    expect(new Set([...slots.values()].flatMap((s) => s.runners))).toEqual(new Set([leaderIndex]));

    const lease = await client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'three/.scholaria-backup/leader/three.json' }));
    const body = JSON.parse(await lease.Body!.transformToString()) as { pid: number; expiresAt: string };
    expect(body.pid).toBe(leader.child.pid);

    leader.child.kill('SIGKILL');
    await leader.exited;
    const killedAt = Date.now();
    const survivors = replicas.filter((p) => p !== leader);
    // The lease lapses after its TTL (3 s) as the survivors see it; one of them takes it.
    await waitUntil('a survivor running a slot', () => survivors.some((p) => runs(p).some((r) => r.status === 'complete' && Date.parse(r.scheduledFor) > killedAt)), 120_000);
    await waitUntil('two more slots both survivors reported on', () => [...slotsSeenByAll(survivors).keys()].filter((s) => Date.parse(s) > killedAt).length >= 2, 120_000);
    const later = [...slotsSeenByAll(survivors)].filter(([s]) => Date.parse(s) > killedAt);
    // Slots before the lease lapsed are skipped by both; after it, exactly one survivor runs each.
    for (const [, s] of later) expect(s.runs + s.skips).toBe(2);
    for (const [, s] of later) expect(s.runs).toBeLessThanOrEqual(1);
    expect(later.filter(([, s]) => s.runs === 1).length).toBeGreaterThanOrEqual(1);
    expect(new Set(later.flatMap(([, s]) => s.runners)).size).toBe(1);

    for (const p of survivors) p.child.kill('SIGTERM');
    for (const p of survivors) expect(await p.exited).toBe(0);
    const ran = replicas.flatMap(runs).filter((r) => r.status === 'complete').map((r) => r.setId!);
    // Every complete run is one set on S3, and S3 holds no other: no slot made two.
    const c = client();
    const listed = await c.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'three/' }));
    c.destroy();
    const manifests = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('/manifest.json')).map((k) => k.split('/')[1]!);
    expect(manifests.sort()).toEqual([...ran].sort());
  }, 300_000);

  it('a leader whose lease is taken over aborts its run; the S3 lease refuses stale writers (If-Match)', async () => {
    const dir = join(work.path, 's3-lost');
    mkdirSync(dir, { recursive: true });
    const backupDir = join(dir, 'backup');
    writeConfig(dir, {
      elector: `createS3LeaderElector({ storage: ${JSON.stringify({ bucket: s3.bucket, prefix: 'lost', endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' })}, name: 'lost', ttlMs: 9000 })`,
      backupDir,
      chunks: 400,
      cron: '0 0 0 1 1 *',
    });
    const p = start(['--run-now', 'daily'], {}, dir);
    await waitUntil('a run under way', () => runningBackup(backupDir)?.pid === p.child.pid);
    const setId = runningBackup(backupDir)!.setId;
    // Someone else writes the lease (as a replica that took it over would): the leader's next
    // renewal, conditional on the ETag it wrote, is refused with 412.
    const key = 'lost/.scholaria-backup/leader/lost.json';
    const c = client();
    const stolen = { formatVersion: 1, name: 'lost', owner: 'elsewhere:1:ffff', host: 'elsewhere', pid: 1, acquiredAt: new Date().toISOString(), renewedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString(), ttlMs: 60_000, generation: 999 };
    await c.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: JSON.stringify(stolen) }));
    await waitUntil('the aborted run', () => runs(p).length > 0, 60_000);
    const run = runs(p)[0]!;
    expect(run.leaseLost).toBe(true);
    expect(run.status).toBe('failed');
    expect(existsSync(join(backupDir, setId, 'manifest.json'))).toBe(false);
    // The lease still names the other holder: the aborted leader did not overwrite it.
    const now = JSON.parse(await (await c.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body!.transformToString()) as { owner: string };
    expect(now.owner).toBe('elsewhere:1:ffff');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    c.destroy();
  }, 180_000);
});
