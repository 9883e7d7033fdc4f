import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BackupError, sleep, type SourceRestoreContext, type SourceRestoreResult } from '@scholaria/backup-core';
import pg from 'pg';
import type { ConnectionParams } from '../connection.js';
import { quoteLiteral } from '../connection.js';
import { runTool } from '../pg-tools.js';
import { findPgProgram } from './pg-programs.js';
import type { WalArchive } from './wal-archive.js';
import { planWal, type BaseBackupPoint, type RecoveryTarget, type WalPlan } from './wal-plan.js';

export interface PitrRestoreOptions {
  archive: WalArchive;
  target: RecoveryTarget;
  /** A new (missing or empty) folder; an existing data directory is never touched. */
  dataDir: string;
  /** Port of the recovered server (written to postgresql.auto.conf); default the original's. */
  port?: number;
  /** Start the server, wait for recovery to reach the target and check it; default true. */
  start?: boolean;
  /** restore_command; default `scholaria-backup wal-fetch %f %p`. */
  restoreCommand?: string;
  /** As root: the OS user that owns the data directory and runs the server (e.g. 'postgres'). */
  runAs?: string;
  /** How long recovery may take, default 1 h. */
  timeoutMs?: number;
  /** Also read every needed WAL file fully (checksums and decoding) on a dry run; default true. */
  verifySegments?: boolean;
}

export const DEFAULT_RESTORE_COMMAND = 'scholaria-backup wal-fetch %f %p';

function fail(component: string, message: string, hint: string, cause?: unknown): BackupError {
  return new BackupError('RESTORE_FAILED', `${component}: ${message}`, { component, hint, ...(cause !== undefined ? { cause } : {}) });
}

export function basePointOf(metadata: Record<string, unknown>, component: string): BaseBackupPoint {
  const { timeline, startLsn, stopLsn, stopTime } = metadata as Partial<BaseBackupPoint>;
  if (typeof timeline !== 'number' || typeof startLsn !== 'string' || typeof stopLsn !== 'string' || typeof stopTime !== 'string') {
    throw fail(component, 'the manifest does not record the base backup\'s timeline and start/stop LSN', 'This set was not made by the postgres-pitr source; pick another set.');
  }
  return { timeline, startLsn, stopLsn, stopTime };
}

/** The settings that make a data directory recover to `target` from the archive. */
export function recoverySettings(target: RecoveryTarget, restoreCommand: string, port?: number): string[] {
  const lines = [
    '# scholaria-backup point-in-time recovery',
    `restore_command = ${quoteLiteral(restoreCommand)}`,
    "recovery_target_timeline = 'latest'",
  ];
  // PostgreSQL's timestamptz input: '2026-12-03 10:10:00.196+00' (it rejects the ISO 'T...Z' form here).
  if (target.kind === 'time') lines.push(`recovery_target_time = ${quoteLiteral(`${target.time.toISOString().replace('T', ' ').replace('Z', '')}+00`)}`, "recovery_target_action = 'promote'");
  else if (target.kind === 'lsn') lines.push(`recovery_target_lsn = ${quoteLiteral(target.text)}`, "recovery_target_action = 'promote'");
  if (port !== undefined) lines.push(`port = ${port}`);
  return lines;
}

function describeTarget(t: RecoveryTarget): string {
  return t.kind === 'latest' ? 'the end of the archived WAL' : t.kind === 'time' ? `time ${t.time.toISOString()}` : `LSN ${t.text}`;
}

function planLines(setId: string, base: BaseBackupPoint, plan: WalPlan, target: RecoveryTarget): string[] {
  return [
    `base backup: set ${setId}, timeline ${base.timeline}, start ${base.startLsn}, stop ${base.stopLsn} (finished ${base.stopTime})`,
    `target: ${describeTarget(target)} on timeline ${plan.targetTimeline}`,
    `WAL: ${plan.segments.length} segment${plan.segments.length === 1 ? '' : 's'} ${plan.first} .. ${plan.last}${plan.historyFiles.length ? ` + ${plan.historyFiles.join(', ')}` : ''}${plan.beyond ? ` (+${plan.beyond} later segment${plan.beyond === 1 ? '' : 's'} recovery reads if it needs them)` : ''}`,
  ];
}

async function asUser(runAs: string | undefined, cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const [c, a] = runAs ? ['runuser', ['-u', runAs, '--', cmd, ...args]] : [cmd, args];
  return await new Promise((resolvePromise, reject) => {
    const child = spawn(c, a, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, out }));
  });
}

async function tail(path: string, lines = 15): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Point-in-time restore of one base backup: plans the WAL (refusing a gap), then on a real run
 * unpacks the verified tar into a new data directory, writes restore_command and the target,
 * creates recovery.signal, starts the server and waits until recovery reached the target and
 * the server was promoted.
 */
export async function runPitrRestore(
  ctx: SourceRestoreContext,
  o: { binDir: string | undefined; component: string; connection: ConnectionParams; env: () => Promise<{ env: NodeJS.ProcessEnv; secrets: string[] }> },
): Promise<SourceRestoreResult> {
  const opts = ctx.options as unknown as Partial<PitrRestoreOptions>;
  const component = o.component;
  if (!opts.archive || !opts.target) {
    throw fail(component, 'a point-in-time restore needs the WAL archive and a target', 'Use `scholaria-backup restore --to <time>|--to-lsn <lsn>|--to latest --data-dir <new dir>`.');
  }
  const base = basePointOf(ctx.component.metadata ?? {}, component);
  const archive = opts.archive;
  const files = await archive.list();
  const plan = await planWal({ base, target: opts.target, files, readHistory: (name) => archive.readText(name) });
  const lines = planLines(ctx.setId, base, plan, opts.target);
  if (plan.missing.length > 0) {
    throw new BackupError(
      'RESTORE_FAILED',
      `${component}: the WAL archive has a gap: ${plan.missing.length} segment${plan.missing.length === 1 ? '' : 's'} missing (${plan.missing.slice(0, 5).join(', ')}${plan.missing.length > 5 ? ', ...' : ''}), so ${describeTarget(opts.target)} cannot be reached from set ${ctx.setId}`,
      {
        component,
        hint: 'Push the missing files from the server\'s pg_wal (scholaria-backup wal-push), pick an earlier target, or restore a newer base backup; `scholaria-backup verify` lists the gaps.',
        details: { missing: plan.missing },
      },
    );
  }
  if (ctx.dryRun) {
    if (opts.verifySegments !== false) {
      for (const name of [...plan.historyFiles, ...plan.segments]) await archive.check(name);
      lines.push(`every one of the ${plan.segments.length + plan.historyFiles.length} WAL files is present and its checksums verify`);
    } else lines.push('every WAL file is present (not read)');
    if (opts.dataDir) lines.push(`would unpack into ${resolve(opts.dataDir)}, write restore_command and the target to postgresql.auto.conf, create recovery.signal${opts.start === false ? '' : ' and start the server'}`);
    return { plan: lines, metadata: { plan } };
  }
  if (!opts.dataDir) throw fail(component, 'no data directory given for the restored server', 'Pass --data-dir with a new, empty folder.');
  const dataDir = resolve(opts.dataDir);
  if (existsSync(dataDir) && (await readdir(dataDir)).length > 0) {
    throw fail(component, `${dataDir} is not empty; a point-in-time restore only writes a new data directory`, 'Give a new folder with --data-dir (never the live one: stop that server first and move it aside if you mean to replace it).');
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  try {
    const body = await ctx.open('base.tar');
    const tar = spawn('tar', ['-x', '-f', '-', '-C', dataDir], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r, j) => {
      tar.once('error', j);
      tar.once('close', r);
    });
    await pipeline(body, tar.stdin);
    const code = await exited;
    if (code !== 0) throw fail(component, `tar -x into ${dataDir} exited with ${code}: ${err.trim()}`, 'Check free space and permissions of the target folder.');
    const restoreCommand = opts.restoreCommand ?? DEFAULT_RESTORE_COMMAND;
    await rm(join(dataDir, 'standby.signal'), { force: true });
    await rm(join(dataDir, 'postmaster.pid'), { force: true });
    await appendFile(join(dataDir, 'postgresql.auto.conf'), `\n${recoverySettings(opts.target, restoreCommand, opts.port).join('\n')}\n`);
    await writeFile(join(dataDir, 'recovery.signal'), '');
    for (const dir of ['pg_wal', 'pg_wal/archive_status']) await mkdir(join(dataDir, dir), { recursive: true, mode: 0o700 });
    if (opts.runAs) {
      const r = await runTool('chown', ['-R', `${opts.runAs}:`, dataDir], { env: process.env });
      if (r.code !== 0) throw fail(component, `chown ${opts.runAs} ${dataDir} failed: ${r.stderr}`, 'Run the restore as root or as the user given with --run-as.');
    }
    lines.push(`unpacked the base backup into ${dataDir}; restore_command = ${restoreCommand}; recovery.signal written`);
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  if (opts.start === false) {
    lines.push(`not started: run pg_ctl start -D ${dataDir} to recover`);
    return { plan: lines };
  }
  const pgCtl = findPgProgram('pg_ctl', o.binDir, component);
  const log = join(dataDir, 'scholaria-recovery.log');
  const started = await asUser(opts.runAs, pgCtl, ['start', '-D', dataDir, '-l', log, '-w', '-t', String(Math.ceil((opts.timeoutMs ?? 3_600_000) / 1000))], process.env);
  if (started.code !== 0) {
    throw fail(component, `the recovered server did not start: ${started.out.trim()}\n${await tail(log)}`, `Read ${log}; the data directory is kept for inspection.`);
  }
  lines.push(`started the server on ${dataDir} (log ${log})`);
  const { env } = await o.env();
  const port = opts.port ?? o.connection.port ?? 5432;
  const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
  let facts: { inRecovery: boolean; replayed: string | null; timeline: number } | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: o.connection.user,
      password: env.PGPASSWORD,
      database: 'postgres',
    });
    try {
      await client.connect();
      const r = await client.query<{ in_recovery: boolean; replayed: Date | null; timeline: number }>(
        'SELECT pg_is_in_recovery() AS in_recovery, pg_last_xact_replay_timestamp() AS replayed, (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline',
      );
      const row = r.rows[0]!;
      facts = { inRecovery: row.in_recovery, replayed: row.replayed ? row.replayed.toISOString() : null, timeline: row.timeline };
      if (!row.in_recovery) break;
    } catch (error) {
      lastError = error;
      const status = await asUser(opts.runAs, pgCtl, ['status', '-D', dataDir], process.env);
      if (status.code !== 0) {
        throw fail(component, `recovery stopped: ${await tail(log)}`, `Read ${log}; the data directory is kept for inspection.`);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    await sleep(500, ctx.signal);
  }
  if (!facts || facts.inRecovery) {
    throw fail(component, `recovery did not finish within the time allowed${lastError ? ` (${(lastError as Error).message})` : ''}`, `Read ${log}; the server keeps running.`);
  }
  if (opts.target.kind === 'time' && facts.replayed && Date.parse(facts.replayed) > opts.target.time.getTime()) {
    throw fail(component, `recovery replayed a transaction from ${facts.replayed}, after the target ${opts.target.time.toISOString()}`, `Read ${log}.`);
  }
  lines.push(`recovery finished and the server was promoted${facts.replayed ? `; last replayed transaction committed at ${facts.replayed}` : ''}; now on timeline ${facts.timeline}`);
  return { plan: lines, metadata: { dataDir, port, lastReplayed: facts.replayed, timeline: facts.timeline } };
}
