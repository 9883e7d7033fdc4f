import { Cron } from 'croner';
import type { BackupEngine, BackupResult, PruneResult } from '../engine/types.js';
import type { Logger } from '../interfaces/logger.js';
import { silentLogger } from '../interfaces/logger.js';
import { BackupError, ConfigError, LockError } from '../errors/backup-error.js';
import { assertTimeZone } from '../util/time-zone.js';
import { ENGINE_DEFAULTS } from '../engine/defaults.js';
import type { DrillResult } from '../drill/drill-types.js';
import { readLatestDrills } from '../drill/drill-record.js';
import { slotStatus } from './slot-status.js';
import type { LeaderElector, LeaseHolder } from './leader-elector.js';
import { createLeadership, describeHolder, type LeadershipStatus } from './leadership.js';

/** The job name of the restore drill in the scheduler (not a tier: it makes no set). */
export const DRILL_JOB = 'drill';
/** Weekly, Sunday 05:00: after the weekly backup of the strategy document's schedule. */
export const DEFAULT_DRILL_SCHEDULE = '0 5 * * 0';

export interface SchedulerDrillOptions {
  /** Cron expression (5 fields); default DEFAULT_DRILL_SCHEDULE. */
  schedule?: string;
  /** Runs one drill, e.g. `({ signal }) => engine.drill({ targets, joins, signal })`. */
  run: (options: { signal: AbortSignal }) => Promise<DrillResult>;
}

export interface DrillJobStatus {
  cron: string;
  nextRun: Date | null;
  previousScheduled: Date | null;
  last?: { drillId: string; setId: string; status: DrillResult['status']; finishedAt: string; rtoMs: number };
  lastPassedAt?: string;
  missed: boolean;
  /** No drill slot has come since the service first started (and none ran): not a warning. */
  pending: boolean;
}

/** The strategy document's schedule (`ENGINE_DEFAULTS.schedules`): daily 02:00, weekly Sunday 03:00, monthly on the 1st 04:00. */
export const DEFAULT_SCHEDULES: Readonly<Record<string, string>> = ENGINE_DEFAULTS.schedules;

export interface SchedulerOptions {
  /** Cron expression per tier (5 fields, or 6 with seconds first; see `cronProblem`); default DEFAULT_SCHEDULES. */
  tiers?: Record<string, string>;
  /** IANA zone the expressions are read in, e.g. 'Asia/Seoul'. Default 'UTC'. */
  timeZone?: string;
  /** Run `engine.prune()` after each successful backup. Default true. */
  pruneAfter?: boolean;
  logger?: Logger;
  /** Injected clock for tests; with it, drive the scheduler with `tick()` instead of `start()`. */
  clock?: () => Date;
  /** How late a run may still count as on time when checking for missed runs. Default 1 h. */
  missedGraceMs?: number;
  /**
   * When the backup service first started (e.g. from a marker it writes on the storage). A
   * scheduled time before it is "pending", never "missed": a fresh install is not an outage.
   * `null`: the service has never run, so every tier is pending. Default: `start()`'s time,
   * or, before `start()`, no limit (every past slot counts).
   */
  serviceSince?: Date | null;
  /** A restore drill on its own schedule (docs/drills.md); it runs one at a time with the backups. */
  drill?: SchedulerDrillOptions;
  /**
   * Several replicas, one run per slot: only the replica holding this elector's lease runs a
   * slot; the others skip it (a run with `skipped`). A leader that loses its lease aborts its
   * run the way `stop({ abort: true })` does. Default: none (every slot runs here).
   */
  leaderElection?: LeaderElector;
  onRunStart?: (tier: string) => void;
  onRunEnd?: (run: SchedulerRun) => void;
}

export interface SchedulerRun {
  tier: string;
  scheduledFor: Date;
  startedAt: Date;
  finishedAt?: Date;
  result?: BackupResult;
  prune?: PruneResult;
  /** Set when the run was the restore drill (tier 'drill'). */
  drill?: DrillResult;
  error?: Error;
  /** The slot was not run here: another replica leads (leader election). */
  skipped?: { reason: string; leader?: LeaseHolder };
  /** The replica lost its lease during the run, which was aborted (nothing of it published). */
  leaseLost?: boolean;
}

export interface TierStatus {
  tier: string;
  cron: string;
  nextRun: Date | null;
  previousScheduled: Date | null;
  lastSet?: { id: string; status: string; time: Date };
  /** The previous scheduled run produced no set (the service was down, or the run failed). */
  missed: boolean;
  /** No scheduled time of this tier has come since the service started: nothing is due yet. */
  pending: boolean;
}

export interface SchedulerStatus {
  timeZone: string;
  running?: { tier: string; startedAt: Date };
  queued: string[];
  tiers: TierStatus[];
  /** The restore drill job, when one is scheduled. */
  drill?: DrillJobStatus;
  lastRuns: SchedulerRun[];
  /** With leader election: whether this replica leads and who does. */
  leadership?: LeadershipStatus;
}

export interface Scheduler {
  /** Starts the timer loop (real time). */
  start(): void;
  /** Stops scheduling; with `abort`, aborts the running job (no half set is left visible), else waits for it. */
  stop(options?: { abort?: boolean }): Promise<void>;
  /** Runs every tier whose scheduled time has come since the last tick; returns the runs started. */
  tick(): Promise<SchedulerRun[]>;
  /** Runs one tier now; refused while another run is in progress. */
  runNow(tier: string): Promise<SchedulerRun>;
  nextRuns(from?: Date): { tier: string; next: Date | null }[];
  status(): Promise<SchedulerStatus>;
  readonly running: { tier: string; startedAt: Date } | undefined;
}

/**
 * Why `expression` is not a usable schedule, or undefined: 5 fields (minute hour day-of-month
 * month day-of-week) or 6 with seconds first (`0 0 2 * * *`), checked with croner, and it must
 * fire at least once. The one cron check: the scheduler, the config file and `.env` all use it.
 */
export function cronProblem(expression: string, timeZone = 'UTC'): string | undefined {
  let job: Cron | undefined;
  try {
    job = new Cron(expression, { timezone: timeZone, paused: true, mode: '5-or-6-parts' });
    if (job.nextRun() === null) return 'the cron expression never fires';
    return undefined;
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/^CronPattern: /, '') : String(error);
    return `expected a cron expression like "0 2 * * *" (minute hour day month weekday, optionally seconds first): ${why}`;
  } finally {
    job?.stop();
  }
}

/** A paused Cron for `expression`; throws a ConfigError naming `field` when `cronProblem` finds one. */
export function validateCron(expression: string, field: string, timeZone = 'UTC'): Cron {
  const problem = cronProblem(expression, timeZone);
  if (problem !== undefined) {
    throw new ConfigError(`${field}: "${expression}" is not a valid cron expression: ${problem}`, [], {
      hint: 'Use five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *" for 02:00 every day (a sixth, leading field gives seconds).',
    });
  }
  return new Cron(expression, { timezone: timeZone, paused: true, mode: '5-or-6-parts' });
}

export function createScheduler(engine: BackupEngine, options: SchedulerOptions = {}): Scheduler {
  const timeZone = options.timeZone ?? ENGINE_DEFAULTS.timeZone;
  assertTimeZone(timeZone);
  const tiers = options.tiers ?? { ...DEFAULT_SCHEDULES };
  const issues: string[] = [];
  const crons = new Map<string, Cron>();
  for (const [tier, expression] of Object.entries(tiers)) {
    try {
      crons.set(tier, validateCron(expression, `schedule for tier "${tier}"`, timeZone));
    } catch (error) {
      issues.push((error as Error).message);
    }
  }
  if (crons.has(DRILL_JOB)) issues.push(`"${DRILL_JOB}" is the name of the restore drill job, not a tier: name the tier differently`);
  const drillCron = options.drill ? (options.drill.schedule ?? DEFAULT_DRILL_SCHEDULE) : undefined;
  if (drillCron !== undefined) {
    try {
      crons.set(DRILL_JOB, validateCron(drillCron, 'drill schedule (BACKUP_DRILL_SCHEDULE)', timeZone));
    } catch (error) {
      issues.push((error as Error).message);
    }
  }
  if (issues.length > 0) throw new ConfigError('Invalid schedule:', issues);
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? (() => new Date());
  const missedGraceMs = options.missedGraceMs ?? 3_600_000;
  const lastRuns: SchedulerRun[] = [];
  const leadership = options.leaderElection ? createLeadership(options.leaderElection, { logger }) : undefined;
  /** When start() was called; the default `serviceSince`. */
  let startedAt: Date | undefined;
  const queue: { tier: string; scheduledFor: Date }[] = [];
  let running: { tier: string; startedAt: Date; controller: AbortController; done: Promise<SchedulerRun> } | undefined;
  let lastTick = clock();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** Not the leader: the slot is recorded as skipped and nothing runs. */
  async function skipUnlessLeader(tier: string, scheduledFor: Date): Promise<SchedulerRun | undefined> {
    if (!leadership || (await leadership.ensure())) return undefined;
    const leader = leadership.status().holder;
    const reason = `another replica leads (${leader ? describeHolder(leader) : 'the lease holder could not be read'})`;
    const run: SchedulerRun = { tier, scheduledFor, startedAt: clock(), finishedAt: clock(), skipped: { reason, ...(leader ? { leader } : {}) } };
    logger.info(`${tier === DRILL_JOB ? 'restore drill' : `${tier} backup`} slot ${scheduledFor.toISOString()} skipped: ${reason}`, { tier, scheduledFor: scheduledFor.toISOString(), skipped: true });
    lastRuns.unshift(run);
    lastRuns.splice(20);
    options.onRunEnd?.(run);
    return run;
  }

  async function execute(tier: string, scheduledFor: Date): Promise<SchedulerRun> {
    const controller = new AbortController();
    const run: SchedulerRun = { tier, scheduledFor, startedAt: clock() };
    // Claimed before the first await, so a tick meanwhile queues instead of starting a second run.
    let release: () => void = () => undefined;
    const claimed = new Promise<SchedulerRun>((resolve) => (release = () => resolve(run)));
    running = { tier, startedAt: run.startedAt, controller, done: claimed };
    const skipped = await skipUnlessLeader(tier, scheduledFor).catch((error: Error) => {
      logger.error(`leader election failed, ${tier} slot skipped: ${error.message}`, { tier });
      return { tier, scheduledFor, startedAt: run.startedAt, finishedAt: clock(), skipped: { reason: `leader election failed: ${error.message}` } } as SchedulerRun;
    });
    if (skipped) {
      running = undefined;
      release();
      const next = queue.shift();
      if (next && !stopped) void execute(next.tier, next.scheduledFor);
      return skipped;
    }
    // Losing the lease mid-run aborts it like SIGTERM does: the set is not published.
    const tenure = leadership?.signal;
    const onLost = () => {
      run.leaseLost = true;
      logger.error(`${tier} run aborted: ${(tenure!.reason as Error)?.message ?? 'the leader lease was lost'}`, { tier });
      controller.abort(tenure!.reason);
    };
    if (tenure?.aborted) onLost();
    tenure?.addEventListener('abort', onLost, { once: true });
    const done = (async () => {
      options.onRunStart?.(tier);
      logger.info(`scheduled ${tier === DRILL_JOB ? 'restore drill' : `${tier} backup`} started`, { tier, scheduledFor: scheduledFor.toISOString() });
      try {
        if (tier === DRILL_JOB && options.drill) {
          run.drill = await options.drill.run({ signal: controller.signal });
          if (run.drill.status !== 'passed') logger.error(`scheduled restore drill ${run.drill.drillId} failed: ${run.drill.error?.message ?? 'see its checks'}`);
          return run;
        }
        run.result = await engine.backup({ tier, signal: controller.signal });
        if (run.result.status !== 'failed' && (options.pruneAfter ?? true) && !controller.signal.aborted) {
          try {
            run.prune = await engine.prune();
          } catch (error) {
            logger.error(`prune after the ${tier} backup failed: ${(error as Error).message}`, { tier });
            run.error = error as Error;
          }
        }
      } catch (error) {
        run.error = error as Error;
        logger.error(`scheduled ${tier} backup failed: ${(error as Error).message}`, { tier });
      } finally {
        tenure?.removeEventListener('abort', onLost);
        // Say why it was aborted: the engine only knows that it was.
        if (run.leaseLost && !run.error && run.result?.status !== 'complete') run.error = tenure!.reason as Error;
        run.finishedAt = clock();
        lastRuns.unshift(run);
        lastRuns.splice(20);
        running = undefined;
        options.onRunEnd?.(run);
      }
      return run;
    })();
    running = { tier, startedAt: run.startedAt, controller, done };
    void done.then(release);
    const finished = await done;
    // Tiers that came due while this one ran go next, one at a time.
    const next = queue.shift();
    if (next && !stopped) void execute(next.tier, next.scheduledFor);
    return finished;
  }

  function due(from: Date, to: Date): { tier: string; scheduledFor: Date }[] {
    const out: { tier: string; scheduledFor: Date }[] = [];
    for (const [tier, cron] of crons) {
      const next = cron.nextRun(from);
      if (next && next.getTime() <= to.getTime()) out.push({ tier, scheduledFor: next });
    }
    return out.sort((a, b) => a.scheduledFor.getTime() - b.scheduledFor.getTime());
  }

  async function tick(): Promise<SchedulerRun[]> {
    const now = clock();
    const jobs = due(lastTick, now);
    lastTick = now;
    const started: Promise<SchedulerRun>[] = [];
    for (const job of jobs) {
      if (running || started.length > 0) {
        if (!queue.some((q) => q.tier === job.tier) && running?.tier !== job.tier) {
          logger.warn(`${job.tier} backup is due while ${running?.tier ?? jobs[0]!.tier} runs; it runs next`, { tier: job.tier });
          queue.push(job);
        }
        continue;
      }
      started.push(execute(job.tier, job.scheduledFor));
    }
    return await Promise.all(started);
  }

  function schedule(): void {
    if (stopped) return;
    const now = clock();
    const nexts = [...crons.values()].map((c) => c.nextRun(now)).filter((d): d is Date => d !== null);
    const soonest = Math.min(...nexts.map((d) => d.getTime()));
    // Wake at the next run, but at least once a minute so clock jumps (suspend, NTP) are caught.
    const wait = Math.max(250, Math.min(soonest - now.getTime() + 50, 60_000));
    timer = setTimeout(async () => {
      try {
        await tick();
      } catch (error) {
        logger.error(`scheduler tick failed: ${(error as Error).message}`);
      }
      schedule();
    }, wait);
  }

  /** When the service first started, for the pending rule (slot-status.ts). */
  const serviceSince = () => (options.serviceSince !== undefined ? options.serviceSince : startedAt);

  async function drillStatus(now: Date): Promise<DrillJobStatus | undefined> {
    const cron = crons.get(DRILL_JOB);
    if (!cron || drillCron === undefined) return undefined;
    const previousScheduled = cron.previousRuns(1, now)[0] ?? null;
    let records: Awaited<ReturnType<typeof readLatestDrills>> = {};
    const storage = [engine.options.storage].flat()[0];
    try {
      if (storage) records = await readLatestDrills(storage);
    } catch (error) {
      logger.warn(`status: cannot read the drill records: ${(error as Error).message}`);
    }
    const latest = records.latest;
    const { pending, missed } = slotStatus({
      now,
      previousScheduled,
      since: serviceSince(),
      lastAt: latest ? new Date(latest.startedAt) : undefined,
      running: running?.tier === DRILL_JOB,
      missedGraceMs,
    });
    return {
      cron: drillCron,
      nextRun: cron.nextRun(now),
      previousScheduled,
      ...(latest ? { last: { drillId: latest.drillId, setId: latest.setId, status: latest.status, finishedAt: latest.finishedAt, rtoMs: latest.rto.totalMs } } : {}),
      ...(records.lastPassed ? { lastPassedAt: records.lastPassed.finishedAt } : {}),
      missed,
      pending,
    };
  }

  return {
    start() {
      startedAt ??= clock();
      stopped = false;
      lastTick = clock();
      leadership?.start();
      schedule();
    },
    async stop(stopOptions = {}) {
      stopped = true;
      if (timer) clearTimeout(timer);
      queue.splice(0);
      if (running) {
        if (stopOptions.abort) running.controller.abort(new BackupError('ABORTED', 'the scheduler is stopping'));
        await running.done;
      }
      // After the run ended: a successor cannot start while this replica still writes.
      await leadership?.stop();
    },
    tick,
    async runNow(tier) {
      if ((!crons.has(tier) && !['manual'].includes(tier)) || (tier === DRILL_JOB && !options.drill)) {
        throw new BackupError('USAGE', `unknown tier "${tier}" (scheduled tiers: ${[...crons.keys()].join(', ')})`);
      }
      if (running) {
        throw new LockError(`a ${running.tier} backup started at ${running.startedAt.toISOString()} is still running`, {
          hint: 'Wait for it to finish; the scheduler never runs two backups at once.',
        });
      }
      return await execute(tier, clock());
    },
    nextRuns(from = clock()) {
      return [...crons].map(([tier, cron]) => ({ tier, next: cron.nextRun(from) }));
    },
    async status() {
      const now = clock();
      let sets: Awaited<ReturnType<BackupEngine['list']>> = [];
      try {
        sets = await engine.list();
      } catch (error) {
        logger.warn(`status: cannot list sets: ${(error as Error).message}`);
      }
      const tierStatus: TierStatus[] = [...crons].filter(([tier]) => tier !== DRILL_JOB).map(([tier, cron]) => {
        const previousScheduled = cron.previousRuns(1, now)[0] ?? null;
        const last = sets.find((s) => s.tier === tier);
        const lastComplete = sets.find((s) => s.tier === tier && s.status !== 'incomplete');
        const { pending, missed } = slotStatus({ now, previousScheduled, since: serviceSince(), lastAt: lastComplete?.time, running: running?.tier === tier, missedGraceMs });
        return {
          tier,
          cron: tiers[tier]!,
          nextRun: cron.nextRun(now),
          previousScheduled,
          ...(last ? { lastSet: { id: last.id, status: last.status, time: last.time } } : {}),
          missed,
          pending,
        };
      });
      const drill = await drillStatus(now);
      return {
        timeZone,
        ...(drill ? { drill } : {}),
        ...(running ? { running: { tier: running.tier, startedAt: running.startedAt } } : {}),
        queued: queue.map((q) => q.tier),
        tiers: tierStatus,
        lastRuns: [...lastRuns],
        ...(leadership ? { leadership: leadership.status() } : {}),
      };
    },
    get running() {
      return running ? { tier: running.tier, startedAt: running.startedAt } : undefined;
    },
  };
}
