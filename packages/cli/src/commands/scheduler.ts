import { BackupError, createScheduler, listLocks, lockIsStale, readDrillRecords, type SchedulerRun, type SchedulerStatus } from '@scholaria/backup-core';
import { drillLines, runDrillWith } from './drill.js';
import { findKeptDatabases } from './restore.js';
import type { CliRuntime } from '../runtime.js';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { lazyFileLogger } from '../run-log.js';
import { errorJson, formatBytes, formatDuration, formatTime, table } from '../format.js';
import { SchedulerMetrics, startMetricsServer, type MetricsServer } from '../metrics.js';
import { markServiceStarted, serviceSince } from '../service-marker.js';
import { describeHolder, type LeaseHolder, type Logger } from '@scholaria/backup-core';
import { pitrConfigured, pruneWal, walMetrics } from '../wal/wal-runtime.js';

export interface SchedulerRunOptions {
  metricsPort?: number;
  metricsHost: string;
  /** Hidden: run this tier right after start (tests, first deployment). */
  runNow?: string;
}

/** The scheduler's drill job, when drills are on and targets exist. */
export function drillJob(rt: CliRuntime) {
  if (!rt.drill.schedule || rt.drill.targets.length === 0) return {};
  return { drill: { schedule: rt.drill.schedule, run: ({ signal }: { signal: AbortSignal }) => runDrillWith(rt, { signal }) } };
}

function runJson(run: SchedulerRun) {
  if (run.drill || run.tier === 'drill') {
    return {
      event: 'drill',
      scheduledFor: run.scheduledFor.toISOString(),
      startedAt: run.startedAt.toISOString(),
      finishedAt: run.finishedAt?.toISOString() ?? null,
      drillId: run.drill?.drillId ?? null,
      setId: run.drill?.setId ?? null,
      status: run.drill?.status ?? 'failed',
      rto: run.drill?.rto ?? null,
      checks: run.drill?.checks ?? [],
      error: run.drill?.error ?? errorJson(run.error),
    };
  }
  return {
    event: 'run',
    tier: run.tier,
    scheduledFor: run.scheduledFor.toISOString(),
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    setId: run.result?.setId || null,
    status: run.result?.status ?? 'failed',
    bytes: run.result?.bytes ?? 0,
    durationMs: run.result?.durationMs ?? null,
    components: (run.result?.components ?? []).map((c) => ({ name: c.name, status: c.status, bytes: c.bytes, error: errorJson(c.error) })),
    pruned: run.prune ? run.prune.remove.map((r) => r.id) : [],
    ...(run.leaseLost ? { leaseLost: true } : {}),
    error: errorJson(run.error ?? run.result?.error),
  };
}

function skippedJson(run: SchedulerRun) {
  const leader = run.skipped?.leader;
  return {
    event: 'skipped',
    tier: run.tier,
    scheduledFor: run.scheduledFor.toISOString(),
    reason: run.skipped?.reason ?? '',
    leader: leader ? { owner: leader.owner, host: leader.host, pid: leader.pid } : null,
  };
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * The long-running service: schedules the tiers, one run at a time, prune after each
 * successful backup. SIGTERM/SIGINT abort the running job (its half-written set is removed,
 * no manifest is written) and the command returns 0.
 */
export async function schedulerRunCommand(ctx: CommandContext, options: SchedulerRunOptions): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const { out } = ctx;
    const warnOpen = (error: Error) =>
      out.note(`warning: cannot write log files in ${rt.logDir} (${error.message}); continuing without them. Set BACKUP_LOG_DIR to a writable folder.`);
    // The service's own lines go to scheduler-<date>.log; each job's to backup-<tier>-<date>.log.
    const serviceLog = lazyFileLogger(rt, 'scheduler', warnOpen);
    let jobLog: ReturnType<typeof lazyFileLogger> | undefined;
    const router: Logger = {
      debug: (m, f) => (jobLog ?? serviceLog).debug(m, f),
      info: (m, f) => (jobLog ?? serviceLog).info(m, f),
      warn: (m, f) => (jobLog ?? serviceLog).warn(m, f),
      error: (m, f) => (jobLog ?? serviceLog).error(m, f),
    };
    const detach = rt.hub.attach(router);

    const metrics = new SchedulerMetrics();
    let stopping = false;
    let existing: Awaited<ReturnType<typeof rt.engine.list>> = [];
    try {
      existing = await rt.engine.list();
    } catch (error) {
      rt.hub.warn(`cannot read the existing sets: ${(error as Error).message}`);
    }
    let since = new Date();
    try {
      since = await markServiceStarted(rt.storages[0]!, since, existing);
    } catch (error) {
      rt.hub.warn(`cannot record the service start on ${rt.storages[0]!.name}: ${(error as Error).message}`);
    }
    const scheduler = createScheduler(rt.engine, {
      tiers: rt.schedules,
      timeZone: rt.timeZone,
      serviceSince: since,
      logger: rt.hub,
      ...drillJob(rt),
      ...(rt.leaderElector ? { leaderElection: rt.leaderElector } : {}),
      onRunStart: (tier) => {
        jobLog = lazyFileLogger(rt, tier === 'drill' ? 'drill' : `backup-${tier}`, warnOpen);
      },
      onRunEnd: (run) => {
        metrics.record(run);
        if (run.skipped) {
          if (ctx.json) out.jsonLine(skippedJson(run));
          return;
        }
        if (run.tier === 'drill') {
          if (run.drill) for (const line of drillLines(run.drill)) rt.hub[run.drill.status === 'passed' ? 'info' : 'error'](line.trim());
          else rt.hub.error(`restore drill failed: ${run.error?.message ?? 'unknown error'}`);
          jobLog?.close();
          jobLog = undefined;
          if (ctx.json) out.jsonLine(runJson(run));
          return;
        }
        if (run.prune && pitrConfigured(rt)) {
          pruneWal(rt, { dryRun: false }).then(
            (wal) => wal.remove.length > 0 && rt.hub.info(`WAL archive: removed ${wal.remove.length} file(s) older than ${wal.oldestNeeded ?? '-'}`),
            (error: Error) => rt.hub.error(`WAL archive retention failed: ${error.message}`),
          );
        }
        const status = run.result?.status ?? 'failed';
        const message = `${run.tier} backup ${run.result?.setId || ''} ${status}: ${formatBytes(run.result?.bytes)} in ${formatDuration(run.result?.durationMs)}${
          run.prune ? `; prune removed ${run.prune.remove.length} set(s)` : ''
        }${run.error ? `; error: ${run.error.message}` : ''}`;
        rt.hub[status === 'complete' && !run.error ? 'info' : 'error'](message.replace(/\s+/g, ' '), { tier: run.tier, setId: run.result?.setId, status });
        jobLog?.close();
        jobLog = undefined;
        if (ctx.json) out.jsonLine(runJson(run));
      },
    });

    let server: MetricsServer | undefined;
    try {
      metrics.seed(existing);
      if (rt.storages[0]) {
        try {
          metrics.drill.seed(await readDrillRecords(rt.storages[0], { limit: 50 }));
        } catch (error) {
          rt.hub.warn(`cannot read the drill records for the metrics: ${(error as Error).message}`);
        }
      }
      const port = options.metricsPort ?? rt.metricsPort;
      if (port !== undefined) {
        server = await startMetricsServer({
          port,
          host: options.metricsHost,
          metrics,
          status: () => scheduler.status(),
          stopping: () => stopping,
          redact: rt.redact,
          ...(pitrConfigured(rt) ? { extra: () => walMetrics(rt) } : {}),
        });
      }
      scheduler.start();
      const next = scheduler.nextRuns();
      if (ctx.json) {
        out.jsonLine({
          event: 'started',
          timeZone: rt.timeZone,
          schedules: { ...rt.schedules, ...(drillJob(rt).drill ? { drill: rt.drill.schedule } : {}) },
          nextRuns: Object.fromEntries(next.map((n) => [n.tier, n.next?.toISOString() ?? null])),
          metricsPort: server?.port ?? null,
          pid: process.pid,
          leaderElection: rt.leaderElector?.name ?? null,
        });
      }
      rt.hub.info(
        `scheduler started (${rt.timeZone}): ${next.map((n) => `${n.tier} "${n.tier === 'drill' ? rt.drill.schedule : rt.schedules[n.tier]}" next ${formatTime(n.next, rt.timeZone)}`).join('; ')}${
          server ? `; metrics on ${options.metricsHost}:${server.port}` : ''
        }${rt.leaderElector ? `; leader election: ${rt.leaderElector.name}` : ''}`,
        { pid: process.pid, ...(server ? { metricsPort: server.port } : {}) },
      );
      if (options.runNow) {
        scheduler.runNow(options.runNow).catch((error: Error) => rt.hub.error(`run-now ${options.runNow} failed: ${error.message}`));
      }
      await waitForAbort(ctx.signal);
      stopping = true;
      const running = scheduler.running;
      rt.hub.info(`stopping${running ? `: aborting the ${running.tier} backup that started ${formatTime(running.startedAt, rt.timeZone)}` : ''}`);
      await scheduler.stop({ abort: true });
      rt.hub.info('scheduler stopped');
      if (ctx.json) out.jsonLine({ event: 'stopped' });
      return EXIT.OK;
    } finally {
      stopping = true;
      await scheduler.stop({ abort: true }).catch(() => undefined);
      await server?.close();
      detach();
      jobLog?.close();
      serviceLog.close();
    }
  }, { storageRoot: 'create' });
}

export interface KeptDatabaseRow {
  component: string;
  name: string;
  of: string;
  bytes: number;
}

export interface LeaderRow {
  elector: string;
  ttlMs: number;
  holder: LeaseHolder | null;
  error?: string;
}

export function statusJson(status: SchedulerStatus, running: RunningJob[], keptDatabases: KeptDatabaseRow[] = [], leader?: LeaderRow) {
  return {
    leader: leader ?? null,
    timeZone: status.timeZone,
    tiers: status.tiers.map((t) => ({
      tier: t.tier,
      cron: t.cron,
      nextRun: t.nextRun?.toISOString() ?? null,
      previousScheduled: t.previousScheduled?.toISOString() ?? null,
      missed: t.missed,
      pending: t.pending,
      lastSet: t.lastSet ? { id: t.lastSet.id, status: t.lastSet.status, time: t.lastSet.time.toISOString() } : null,
    })),
    drill: status.drill
      ? {
          cron: status.drill.cron,
          nextRun: status.drill.nextRun?.toISOString() ?? null,
          previousScheduled: status.drill.previousScheduled?.toISOString() ?? null,
          missed: status.drill.missed,
          pending: status.drill.pending,
          last: status.drill.last ?? null,
          lastPassedAt: status.drill.lastPassedAt ?? null,
        }
      : null,
    running,
    keptDatabases,
  };
}

export interface RunningJob {
  storage: string;
  action: string;
  host: string;
  pid: number;
  actor: string;
  since: string;
  heartbeatAt: string;
  stale: boolean;
}

/** Next run and last set per tier (from the manifests), missed runs, and who holds the storage locks. */
export async function schedulerStatusCommand(ctx: CommandContext): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const since = await serviceSince(rt.storages[0]!, await rt.engine.list());
    const scheduler = createScheduler(rt.engine, { tiers: rt.schedules, timeZone: rt.timeZone, serviceSince: since, ...drillJob(rt) });
    const status = await scheduler.status();
    const running: RunningJob[] = [];
    for (const storage of rt.storages) {
      try {
        for (const lock of await listLocks(storage)) {
          running.push({
            storage: storage.name,
            action: lock.action,
            host: lock.host,
            pid: lock.pid,
            actor: lock.actor,
            since: lock.createdAt,
            heartbeatAt: lock.heartbeatAt,
            stale: lockIsStale(lock, new Date()).stale,
          });
        }
      } catch (error) {
        throw new BackupError('STORAGE_FAILED', `cannot read the locks on ${storage.name}: ${(error as Error).message}`, {
          hint: 'Check that the storage is reachable (`scholaria-backup health-check`).',
        });
      }
    }
    // The databases swap restores kept use the server's disk until someone drops them. A source
    // that cannot be reached is health-check's business, not a reason for status to fail.
    const kept: KeptDatabaseRow[] = (await findKeptDatabases(rt.sources as unknown[]).catch(() => [])).map((f) => ({ component: f.source.name, ...f.db }));
    let leader: LeaderRow | undefined;
    if (rt.leaderElector) {
      leader = { elector: rt.leaderElector.name, ttlMs: rt.leaderElector.ttlMs, holder: null };
      try {
        leader.holder = (await rt.leaderElector.holder()) ?? null;
      } catch (error) {
        leader.error = rt.redact((error as Error).message);
      }
    }
    const missed = status.tiers.some((t) => t.missed) || Boolean(status.drill?.missed);
    if (ctx.json) {
      ctx.out.document(statusJson(status, running, kept, leader));
      return missed ? EXIT.WARNING : EXIT.OK;
    }
    ctx.out.line(`schedule (${status.timeZone}):`);
    ctx.out.line(
      table(
        ['TIER', 'CRON', 'NEXT RUN', 'LAST SET', 'STATE'],
        status.tiers.map((t) => [
          t.tier,
          t.cron,
          formatTime(t.nextRun, rt.timeZone),
          t.lastSet ? `${t.lastSet.id} (${t.lastSet.status})` : '-',
          t.missed ? `MISSED (due ${formatTime(t.previousScheduled, rt.timeZone)})` : t.pending ? 'pending (not due since the scheduler started)' : 'ok',
        ]),
      ),
    );
    const d = status.drill;
    if (d) {
      const last = d.last
        ? `${d.last.status === 'passed' ? 'passed' : 'FAILED'} ${d.last.drillId} (set ${d.last.setId}, RTO ${formatDuration(d.last.rtoMs)}, ${formatTime(d.last.finishedAt, rt.timeZone)})`
        : d.pending
          ? 'none yet (pending: not due since the scheduler started)'
          : 'none yet';
      ctx.out.line(`drill: "${d.cron}" next ${formatTime(d.nextRun, rt.timeZone)}; last ${last}${d.missed ? `; MISSED (due ${formatTime(d.previousScheduled, rt.timeZone)})` : ''}`);
    } else ctx.out.line('drill: off');
    if (leader) {
      ctx.out.line(
        `leader: ${leader.error ? `cannot tell (${leader.error})` : leader.holder ? describeHolder(leader.holder) : 'none (the next replica to campaign takes it)'}; ${leader.elector}; the other replicas skip each slot`,
      );
    } else ctx.out.line('leader election: off (every replica runs every slot)');
    const live = running.filter((r) => !r.stale);
    if (live.length === 0) ctx.out.line('running: nothing');
    for (const r of live) ctx.out.line(`running: ${r.action} on ${r.storage} by ${r.actor} (pid ${r.pid} on ${r.host}) since ${formatTime(r.since, rt.timeZone)}`);
    for (const r of running.filter((x) => x.stale)) {
      ctx.out.line(`stale lock: ${r.action} on ${r.storage} by ${r.actor} (pid ${r.pid} on ${r.host}), last heartbeat ${formatTime(r.heartbeatAt, rt.timeZone)}; the next run takes it over`);
    }
    for (const k of kept) ctx.out.line(`kept database: ${k.name} (${k.component}, was "${k.of}", ${formatBytes(k.bytes)}) from a swap restore`);
    if (kept.length > 0) ctx.out.line('  remove them with `scholaria-backup restore cleanup` once you no longer need them');
    return missed ? EXIT.WARNING : EXIT.OK;
  });
}
