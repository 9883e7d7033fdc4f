import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { BIN, assertBuilt, runBin, startBin } from './helpers.js';

// Point-in-time recovery against real PostgreSQL 15 servers: archive_command runs the built
// binary as the postgres user, restores start new servers from new data directories.
const isRoot = process.getuid?.() === 0;
const asPg = (args: string[]) => (isRoot ? ['runuser', ['-u', 'postgres', '--', ...args]] : [args[0]!, args.slice(1)]) as [string, string[]];

/** Shell quoting for the commands PostgreSQL runs through /bin/sh (the paths here have no `"`, `$` or backslash). */
function shellQuote(s: string): string {
  if (/["$`\\]/.test(s)) throw new Error(`unexpected character in ${s}`);
  return `"${s}"`;
}

function pgLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let psqlPath = '/usr/lib/postgresql/15/bin/psql';

/** psql -At: the CLI package does not depend on the pg driver. */
function psql(port: number, password: string, sql: string, db = 'app'): string[] {
  const r = spawnSync(psqlPath, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    env: { ...process.env, PGPASSWORD: password },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

async function rows(port: number, password: string): Promise<string[]> {
  return psql(port, password, 'SELECT label FROM events ORDER BY id');
}

describe('point-in-time recovery (PostgreSQL 15)', () => {
  let temp: TempDir;
  let server: PostgresServer;
  let backupDir: string;
  let env: Record<string, string>;
  let walCommand: (sub: string) => string;
  const started: string[] = [];

  beforeAll(async () => {
    assertBuilt();
    temp = await makeTempDir('scholaria-pitr-');
    await chmod(temp.path, 0o755);
    backupDir = join(temp.path, 'backup');
    const logDir = join(temp.path, 'log');
    await mkdir(backupDir, { mode: 0o700 });
    await mkdir(logDir, { mode: 0o777 });
    await chmod(logDir, 0o777);
    // archive_command and restore_command run as postgres; the backup folder is theirs.
    if (isRoot) spawnSync('chown', ['-R', 'postgres:postgres', backupDir, logDir]);
    const walEnv = `BACKUP_DIR=${shellQuote(backupDir)} BACKUP_LOG_DIR=${shellQuote(logDir)} PATH=${shellQuote(process.env.PATH ?? '/usr/bin:/bin')}`;
    walCommand = (sub) => `${walEnv} ${shellQuote(process.execPath)} ${shellQuote(BIN)} ${sub}`;
    server = await startPostgres({
      version: 15,
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: pgLiteral(walCommand('wal-push %p')),
        max_wal_senders: '4',
        max_replication_slots: '4',
        fsync: 'on',
        full_page_writes: 'on',
      },
    });
    psqlPath = join(server.binDir, 'psql');
    await server.createDatabase('app');
    await server.query('app', 'CREATE TABLE events (id serial PRIMARY KEY, label text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    await server.query('app', "INSERT INTO events (label) VALUES ('before-base')");
    env = { BACKUP_DIR: backupDir, BACKUP_LOG_DIR: logDir, DATABASE_URL: server.url('app'), BACKUP_PITR: 'on', BACKUP_COMPONENTS: 'postgres' };
  }, 120_000);

  afterAll(async () => {
    for (const dir of started) spawnSync(...asPg([join(server.binDir, 'pg_ctl'), 'stop', '-D', dir, '-m', 'immediate', '-w']));
    await server?.stop();
    await temp?.remove();
  });

  const archived = (name: string) => existsSync(join(backupDir, 'wal', `${name}.json`));
  async function switchAndWait(port: number, password: string): Promise<string> {
    const name = psql(port, password, 'SELECT pg_walfile_name(pg_switch_wal())')[0]!;
    await waitUntil(`${name} archived`, () => (archived(name) ? true : undefined));
    return name;
  }

  it('restores exactly the rows up to t2, follows a new timeline, and refuses a gap', async () => {
    const backup = await runBin(['backup', '--tier', 'daily', '--json'], { env });
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    const { setId } = JSON.parse(backup.stdout) as { setId: string };
    const manifest = JSON.parse(readFileSync(join(backupDir, setId, 'manifest.json'), 'utf8')) as { components: { name: string; metadata: Record<string, unknown> }[] };
    const base = manifest.components.find((c) => c.name === 'postgres-pitr')!;
    expect(base.metadata.timeline).toBe(1);
    expect(base.metadata.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect((base.metadata.walRange as { first: string }).first).toMatch(/^00000001[0-9A-F]{16}$/);

    await server.query('app', "INSERT INTO events (label) VALUES ('t1')");
    await switchAndWait(server.port, server.password);
    await server.query('app', "INSERT INTO events (label) VALUES ('t2')");
    await new Promise((r) => setTimeout(r, 1200));
    const [mid] = await server.query<{ t: Date }>('app', 'SELECT clock_timestamp() AS t');
    const target = (mid!.t as Date).toISOString();
    await new Promise((r) => setTimeout(r, 1200));
    await server.query('app', "INSERT INTO events (label) VALUES ('t3')");
    await switchAndWait(server.port, server.password);

    const dry = await runBin(['restore', '--to', target, '--dry-run'], { env });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/WAL: \d+ segments? 00000001/);
    expect(dry.stdout).toMatch(/present and its checksums verify/);

    const restoreCommand = walCommand('wal-fetch %f %p');
    const dirB = join(temp.path, 'restored-b');
    const portB = await getFreePort();
    started.push(dirB);
    const restore = await runBin(
      ['restore', '--to', target, '--data-dir', dirB, '--port', String(portB), '--restore-command', restoreCommand, ...(isRoot ? ['--run-as', 'postgres'] : [])],
      { env },
    );
    expect(restore.code, restore.stdout + restore.stderr).toBe(0);
    expect(await rows(portB, server.password)).toEqual(['before-base', 't1', 't2']);
    expect(readFileSync(join(dirB, 'postgresql.auto.conf'), 'utf8')).toContain("restore_command = '");

    // B was promoted onto timeline 2 and archives into the same archive (its config came with the base backup).
    psql(portB, server.password, "INSERT INTO events (label) VALUES ('b-after-pitr')");
    await switchAndWait(portB, server.password);
    await waitUntil('00000002.history archived', () => (archived('00000002.history') ? true : undefined));

    const dirC = join(temp.path, 'restored-c');
    const portC = await getFreePort();
    started.push(dirC);
    const latest = await runBin(
      ['restore', '--to', 'latest', '--data-dir', dirC, '--port', String(portC), '--restore-command', restoreCommand, ...(isRoot ? ['--run-as', 'postgres'] : [])],
      { env },
    );
    expect(latest.code, latest.stdout + latest.stderr).toBe(0);
    expect(latest.stdout).toMatch(/on timeline 2/);
    expect(await rows(portC, server.password)).toEqual(['before-base', 't1', 't2', 'b-after-pitr']);

    const verify = await runBin(['verify'], { env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/WAL archive: \d+ segments on timelines 1, 2, 0 gaps/);

    const health = await runBin(['health-check', '--json'], { env });
    const report = JSON.parse(health.stdout) as { checks: { name: string; status: string }[] };
    expect(report.checks.find((c) => c.name === 'wal archive')?.status).toBe('ok');

    // /metrics of the service shows the archive lag and its threshold.
    const metricsPort = await getFreePort();
    const service = startBin(['scheduler', 'run', '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1'], { env });
    try {
      const text = await waitUntil('/metrics', async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
          return r.status === 200 ? await r.text() : undefined;
        } catch {
          return undefined;
        }
      });
      const lag = Number(/^scholaria_backup_wal_archive_lag_seconds (\S+)$/m.exec(text)?.[1]);
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(900);
      expect(text).toMatch(/^scholaria_backup_wal_archive_lag_threshold_seconds 900$/m);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }

    // Retention: the segments before the base backup's first one go, every one it needs stays.
    const first = (base.metadata.walRange as { first: string }).first;
    const segmentsOf = () => readdirSync(join(backupDir, 'wal')).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).map((f) => f.slice(0, 24)).sort();
    const older = segmentsOf().filter((n) => n.slice(8) < first.slice(8));
    expect(older.length).toBeGreaterThan(0);
    const dryPrune = await runBin(['prune', '--dry-run', '--json'], { env });
    expect(dryPrune.code, dryPrune.stdout + dryPrune.stderr).toBe(0);
    const planned = JSON.parse(dryPrune.stdout) as { wal: { remove: string[]; oldestNeeded: string } };
    expect(planned.wal.oldestNeeded).toBe(first);
    expect([...planned.wal.remove].sort()).toEqual(older);
    const pruned = await runBin(['prune'], { env });
    expect(pruned.code, pruned.stdout + pruned.stderr).toBe(0);
    const kept = segmentsOf();
    expect(kept.filter((n) => older.includes(n))).toEqual([]);
    expect(kept).toContain(first);
    expect(existsSync(join(backupDir, 'wal', '00000002.history.json'))).toBe(true);
    const afterPrune = await runBin(['verify'], { env });
    expect(afterPrune.code, afterPrune.stdout + afterPrune.stderr).toBe(0);

    // A hole between the base backup and the target: refused with the missing file named.
    const files = readdirSync(join(backupDir, 'wal')).filter((f) => /^00000001[0-9A-F]{16}\.json$/.test(f)).sort();
    const victim = files.find((f) => f.slice(0, 24) > first)!.slice(0, 24);
    const { rmSync } = await import('node:fs');
    rmSync(join(backupDir, 'wal', `${victim}.json`));
    const gap = await runBin(['restore', '--to', target, '--dry-run'], { env });
    expect(gap.code).toBe(1);
    expect(gap.stdout + gap.stderr).toContain(`gap`);
    expect(gap.stdout + gap.stderr).toContain(victim);
    const broken = await runBin(['verify'], { env });
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(victim);
  }, 480_000);

  it('a killed wal-push leaves nothing half-visible, and pushing again is idempotent', async () => {
    const spool = join(temp.path, 'spool');
    await mkdir(spool, { recursive: true });
    const localEnv = { ...env, BACKUP_PITR: 'off' };
    const name = '0000000900000000000000A1';
    const bytes = randomBytes(16 * 1024 * 1024);
    await writeFile(join(spool, name), bytes);
    for (const delay of [30, 120, 250]) {
      const run = startBin(['wal-push', join(spool, name)], { env: localEnv });
      await new Promise((r) => setTimeout(r, delay));
      run.child.kill('SIGKILL');
      await run.exited;
      const visible = readdirSync(join(backupDir, 'wal')).filter((f) => f.startsWith(name) && !f.startsWith('.'));
      if (archived(name)) {
        // It finished before the kill: then the archived file must be whole.
        const out = join(spool, 'fetched');
        const fetched = await runBin(['wal-fetch', name, out], { env: localEnv });
        expect(fetched.code).toBe(0);
        expect(readFileSync(out).equals(bytes)).toBe(true);
        break;
      }
      // No record: fetch must not find it, whatever bytes a killed writer left.
      const fetch = await runBin(['wal-fetch', name, join(spool, 'nothing')], { env: localEnv });
      expect(fetch.code).toBe(1);
      expect(existsSync(join(spool, 'nothing'))).toBe(false);
      expect(visible.every((f) => f === `${name}.zst`)).toBe(true);
    }
    const push = await runBin(['wal-push', join(spool, name), '--json'], { env: localEnv });
    expect(push.code, push.stderr).toBe(0);
    const again = await runBin(['wal-push', join(spool, name), '--json'], { env: localEnv });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).outcome).toBe('already-archived');
    const out = join(spool, 'fetched-final');
    expect((await runBin(['wal-fetch', name, out], { env: localEnv })).code).toBe(0);
    expect(readFileSync(out).equals(bytes)).toBe(true);

    const other = Buffer.from(bytes);
    other[12345] = other[12345]! ^ 0xff;
    const otherDir = join(spool, 'other');
    await mkdir(otherDir);
    await writeFile(join(otherDir, name), other);
    const conflict = await runBin(['wal-push', join(otherDir, name)], { env: localEnv });
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/already archived with different contents/);
  }, 120_000);

  it('wal-receive streams completed segments over a replication slot into the archive', async () => {
    // Its own archive: a streamed segment is zero-padded after a switch, a pg_wal one is not.
    const dir = join(temp.path, 'stream-backup');
    await mkdir(dir, { mode: 0o700 });
    const streamEnv = { ...env, BACKUP_DIR: dir, BACKUP_PITR_URL: server.url('postgres'), BACKUP_WAL_SPOOL_DIR: join(temp.path, 'spool-stream'), BACKUP_WAL_SLOT: 'pitr_test' };
    const run = startBin(['wal-receive', '--json'], { env: streamEnv });
    try {
      await waitUntil('the slot', () => (psql(server.port, server.password, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'pitr_test' AND active").length ? true : undefined));
      psql(server.port, server.password, "INSERT INTO events (label) VALUES ('streamed')");
      const name = psql(server.port, server.password, 'SELECT pg_walfile_name(pg_switch_wal())')[0]!;
      await run.waitFor(new RegExp(`"archived".*${name}|${name}.*"archived"`), 90_000);
      expect(existsSync(join(dir, 'wal', `${name}.json`))).toBe(true);
      const out = join(temp.path, 'streamed-segment');
      expect((await runBin(['wal-fetch', name, out], { env: streamEnv })).code).toBe(0);
      expect(readFileSync(out).length).toBe(16 * 1024 * 1024);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      psql(server.port, server.password, "SELECT pg_drop_replication_slot('pitr_test')", 'postgres');
    }
  }, 120_000);
});
