/**
 * The `pitr` group of `pnpm bench`: point-in-time restore time of `scholaria-backup restore
 * --to` against the same recovery done by hand with the same tools, pgBackRest-style: the same
 * base backup tar (`zstd -d | tar -x`), `restore_command = 'cp ARCHIVE/%f %p'` from a plain
 * copy archive, the same recovery target, `pg_ctl start` and wait until promoted. Both replay
 * the same WAL from the same base; the difference is the library's work: the checksum pass over
 * the base tar, planning the WAL (reading every record), and one `wal-fetch` process per WAL
 * file (Node start, checksums, zstd decode) where the manual run forks `cp`.
 *
 * The server archives every segment twice (`cp %p RAW/%f && scholaria-backup wal-push %p`), so
 * both archives hold the same files. CPU: the command or pipeline's own (GNU time) plus the
 * recovered postmaster's cumulative CPU (its startup process replayed and ran restore_command).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFreePort, startPostgres, type PostgresServer } from '@scholaria/backup-testkit';
import { log, measurePipeline, type Recorder, type Run } from './measure.js';
import { GNU_TIME, parseTimeOutput, rusageFile, serverCpuMs } from './proc.js';
import { MB } from './stats.js';
import { measureWalPush } from './wal-push-bench.js';

const SEGMENT = 16 * MB;
const isRoot = process.getuid?.() === 0;
const asPg = (cmd: string, args: string[]): [string, string[]] => (isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);

function shellQuote(s: string): string {
  if (/["$`\\]/.test(s)) throw new Error(`unexpected character in ${s}`);
  return `"${s}"`;
}
const pgLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

export interface PitrBenchData {
  baseBytes: number;
  walSegments: number;
  replaySegments: number;
  target: string;
}

/** Runs the pitr group; returns what was restored (for the results file). */
export async function pitrBench(o: { size: number; reps: number; restoreReps: number; bin: string; work: string; notes: string[] }, rec: Recorder): Promise<PitrBenchData | undefined> {
  // archive_command's cost per segment: wal-push vs cp vs Node's start-up, in a PITR deployment's environment.
  log(' wal-push per 16 MiB segment (DATABASE_URL + BACKUP_PITR=on set, fs storage, zstd)');
  rec.define({ id: 'raw.wal-push.cp', group: 'pitr', kind: 'raw', label: 'cp %p ARCHIVE/%f (16 MiB segment)', command: "archive_command = 'cp %p /archive/%f'" });
  rec.define({ id: 'raw.node-start', group: 'pitr', kind: 'raw', label: 'node -e 0 (Node start-up alone)', command: 'node -e 0' });
  rec.define({ id: 'lib.wal-push', group: 'pitr', kind: 'library', label: 'scholaria-backup wal-push %p (16 MiB segment)', command: "archive_command = 'scholaria-backup wal-push %p'" });
  const pushes = measureWalPush({ work: o.work, runs: Math.max(5, o.reps * 3), bins: [{ id: 'lib.wal-push', label: 'wal-push', bin: o.bin }], deployed: true });
  for (const [id, runs] of pushes) for (const run of runs) rec.add(id, { ms: run.ms, ...(run.cpuMs !== undefined ? { cpuMs: run.cpuMs } : {}) });

  const work = join(o.work, 'pitr');
  const backupDir = join(work, 'backup');
  const logDir = join(work, 'log');
  const rawArchive = join(work, 'raw-archive');
  const archiveOff = join(work, 'archive-off');
  for (const d of [work, backupDir, logDir, rawArchive]) mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(work, 0o755);
  chmodSync(logDir, 0o777);
  if (isRoot) execFileSync('chown', ['-R', 'postgres:postgres', backupDir, logDir, rawArchive]);
  const walEnv = `BACKUP_DIR=${shellQuote(backupDir)} BACKUP_LOG_DIR=${shellQuote(logDir)} PATH=${shellQuote(process.env.PATH ?? '/usr/bin:/bin')}`;
  const cli = (sub: string) => `${walEnv} ${shellQuote(process.execPath)} ${shellQuote(o.bin)} ${sub}`;
  let server: PostgresServer | undefined;
  const started: string[] = [];
  try {
    server = await startPostgres({
      version: 15,
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        // Off once the WAL is archived: the recovered servers (whose config comes with the base
        // backup) must not archive their new timeline into the archives of the next repetition.
        archive_command: pgLiteral(`test ! -e ${shellQuote(archiveOff)} && cp "%p" ${shellQuote(rawArchive)}/"%f" && ${cli('wal-push "%p"')}`),
        max_wal_senders: '4',
        autovacuum: 'off',
      },
    });
    const pg = server;
    const bin = (tool: string) => join(pg.binDir, tool);
    await pg.createDatabase('app');
    const query = (sql: string) => pg.query('app', sql);
    await query('CREATE TABLE events (id bigserial PRIMARY KEY, label text NOT NULL, payload text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    // ~1 KB rows: base data, then the WAL to replay (at least 8 segments, more with --size).
    const rowsFor = (bytes: number) => Math.max(1000, Math.round(bytes / 1100));
    const insert = async (label: string, bytes: number) => {
      const rows = rowsFor(bytes);
      for (let done = 0; done < rows; done += 20_000) {
        await query(`INSERT INTO events (label, payload) SELECT '${label}', repeat(md5(g::text), 30) FROM generate_series(1, ${Math.min(20_000, rows - done)}) g`);
      }
    };
    const baseBytes = Math.max(32 * MB, o.size * 256 * MB);
    const walBytes = Math.max(8 * SEGMENT, o.size * 512 * MB);
    log(`  base data ${(baseBytes / MB).toFixed(0)} MB, then ${(walBytes / MB).toFixed(0)} MB of WAL to replay`);
    await insert('base', baseBytes);
    const env = { ...process.env, BACKUP_DIR: backupDir, BACKUP_LOG_DIR: logDir, DATABASE_URL: pg.url('app'), BACKUP_PITR: 'on' };
    const backup = spawnSync(process.execPath, [o.bin, 'backup', '--component', 'postgres-pitr', '--json'], { env, encoding: 'utf8' });
    if (backup.status !== 0) throw new Error(`pitr base backup failed: ${backup.stderr}`);
    const setId = (JSON.parse(backup.stdout) as { setId: string }).setId;
    const manifest = JSON.parse(readFileSync(join(backupDir, setId, 'manifest.json'), 'utf8')) as { components: { name: string; artifacts: { name: string; path: string; codecs: { name: string }[] }[] }[] };
    const artifact = manifest.components.find((c) => c.name === 'postgres-pitr')!.artifacts.find((a) => a.name === 'base.tar')!;
    const baseTar = join(backupDir, setId, artifact.path);
    if (artifact.codecs.map((c) => c.name).join(',') !== 'zstd') throw new Error(`pitr bench expects a zstd base tar, got ${artifact.codecs.map((c) => c.name).join(',')}`);

    await insert('t1', walBytes * 0.75);
    await new Promise((r) => setTimeout(r, 1100));
    const target = (await pg.query<{ t: Date }>('app', 'SELECT clock_timestamp() AS t'))[0]!.t.toISOString();
    await new Promise((r) => setTimeout(r, 1100));
    const expected = Number((await pg.query<{ n: string }>('app', `SELECT count(*)::text AS n FROM events WHERE at <= '${target}'`))[0]!.n);
    await insert('t2', walBytes * 0.25);
    const last = (await pg.query<{ name: string }>('app', 'SELECT pg_walfile_name(pg_switch_wal()) AS name'))[0]!.name;
    const deadline = Date.now() + 600_000;
    while (!(readdirSync(join(backupDir, 'wal')).includes(`${last}.json`) && readdirSync(rawArchive).includes(last))) {
      if (Date.now() > deadline) throw new Error(`pitr bench: ${last} was not archived within 10 min`);
      await new Promise((r) => setTimeout(r, 250));
    }
    writeFileSync(archiveOff, '');
    const walSegments = readdirSync(rawArchive).filter((f) => /^[0-9A-F]{24}$/.test(f)).length;

    const rowsOn = (port: number) => {
      const r = spawnSync(bin('psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', pg.user, '-d', 'app', '-At', '-c', 'SELECT count(*) FROM events'], { env: { ...process.env, PGPASSWORD: pg.password }, encoding: 'utf8' });
      return r.status === 0 ? Number(r.stdout.trim()) : undefined;
    };
    const postmasterOf = (dir: string) => Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const stop = (dir: string) => {
      spawnSync(...asPg(bin('pg_ctl'), ['stop', '-D', dir, '-m', 'immediate', '-w']));
      rmSync(dir, { recursive: true, force: true });
    };
    const check = (what: string, port: number) => {
      const n = rowsOn(port);
      if (n !== expected) throw new Error(`${what}: ${n} rows after recovery, expected ${expected} (rows up to the target)`);
    };

    rec.define({
      id: 'lib.pitr.restore',
      group: 'pitr',
      kind: 'library',
      label: 'scholaria-backup restore --to TIME (verify, unpack, wal-fetch per file, replay, promote, check)',
      command: 'scholaria-backup restore --to TIME --data-dir DIR --port P',
    });
    rec.define({
      id: 'raw.pitr.restore',
      group: 'pitr',
      kind: 'raw',
      label: "by hand: zstd -d | tar -x, restore_command 'cp ARCHIVE/%f %p', recovery_target_time, pg_ctl start, wait for promotion",
      command: "zstd -d < base.tar.zst | tar -x -C DIR; recovery.signal; restore_command = 'cp ARCHIVE/%f %p'; pg_ctl start -w",
    });
    let replaySegments = 0;
    for (let i = 0; i < o.restoreReps; i++) {
      log(` rep ${i + 1}/${o.restoreReps}`);
      await rec.run('lib.pitr.restore', async (): Promise<Run> => {
        const dir = join(work, `lib-${i}`);
        const port = await getFreePort();
        started.push(dir);
        const usage = rusageFile();
        const args = [o.bin, 'restore', '--to', target, '--data-dir', dir, '--port', String(port), '--restore-command', cli('wal-fetch %f %p'), ...(isRoot ? ['--run-as', 'postgres'] : [])];
        const t0 = performance.now();
        const r = GNU_TIME ? spawnSync(GNU_TIME, ['-f', '%M %U %S', '-o', usage, process.execPath, ...args], { env, encoding: 'utf8' }) : spawnSync(process.execPath, args, { env, encoding: 'utf8' });
        const ms = performance.now() - t0;
        if (r.status !== 0) throw new Error(`restore --to failed: ${r.stdout}\n${r.stderr}`);
        const m = /WAL: (\d+) segments?/.exec(r.stdout);
        if (m) replaySegments = Number(m[1]);
        check('restore --to', port);
        const own = GNU_TIME ? parseTimeOutput(readFileSync(usage, 'utf8')) : {};
        rmSync(usage, { force: true });
        const server = serverCpuMs(postmasterOf(dir));
        stop(dir);
        return { ms, ...(own.cpuMs !== undefined && server !== undefined ? { cpuMs: own.cpuMs + server, serverCpuMs: server } : {}), ...(own.maxRssBytes !== undefined ? { maxRssBytes: own.maxRssBytes } : {}) };
      });
      await rec.run('raw.pitr.restore', async (): Promise<Run> => {
        const dir = join(work, `raw-${i}`);
        const port = await getFreePort();
        started.push(dir);
        const t0 = performance.now();
        mkdirSync(dir, { mode: 0o700 });
        const unpack = await measurePipeline([{ cmd: 'zstd', args: ['-q', '-d', '-c', baseTar] }, { cmd: 'tar', args: ['-x', '-f', '-', '-C', dir] }], {});
        rmSync(join(dir, 'standby.signal'), { force: true });
        appendFileSync(
          join(dir, 'postgresql.auto.conf'),
          `\nrestore_command = ${pgLiteral(`cp ${shellQuote(rawArchive)}/"%f" "%p"`)}\nrecovery_target_time = '${target.replace('T', ' ').replace('Z', '')}+00'\nrecovery_target_action = 'promote'\nport = ${port}\narchive_mode = off\n`,
        );
        writeFileSync(join(dir, 'recovery.signal'), '');
        mkdirSync(join(dir, 'pg_wal', 'archive_status'), { recursive: true, mode: 0o700 });
        if (isRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
        const start = spawnSync(...asPg(bin('pg_ctl'), ['start', '-D', dir, '-l', join(dir, 'recovery.log'), '-w', '-t', '3600']), { encoding: 'utf8' });
        if (start.status !== 0) throw new Error(`pg_ctl start failed: ${start.stdout}${start.stderr}`);
        for (;;) {
          const r = spawnSync(bin('psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', pg.user, '-d', 'postgres', '-At', '-c', 'SELECT pg_is_in_recovery()'], { env: { ...process.env, PGPASSWORD: pg.password }, encoding: 'utf8' });
          if (r.status === 0 && r.stdout.trim() === 'f') break;
          if (performance.now() - t0 > 3_600_000) throw new Error('manual recovery did not finish within 1 h');
          await new Promise((res) => setTimeout(res, 100));
        }
        const ms = performance.now() - t0;
        check('manual recovery', port);
        const server = serverCpuMs(postmasterOf(dir));
        stop(dir);
        return { ms, ...(unpack.cpuMs !== undefined && server !== undefined ? { cpuMs: unpack.cpuMs + server, serverCpuMs: server } : {}) };
      });
    }
    return { baseBytes: statSync(baseTar).size, walSegments, replaySegments, target };
  } finally {
    for (const dir of started) spawnSync(...asPg(server ? join(server.binDir, 'pg_ctl') : 'pg_ctl', ['stop', '-D', dir, '-m', 'immediate', '-w']), { stdio: 'ignore' });
    await server?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}
