import { accessSync, constants, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createScheduler, dispatchNotification, zstdAvailable, type HealthCheckItem, type HealthReport, type HealthStatus, type SchedulerStatus } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import type { CliRuntime } from '../runtime.js';
import { formatTime, table } from '../format.js';
import { serviceSince } from '../service-marker.js';
import { drillJob } from './scheduler.js';
import { pitrConfigured, walLagCheck } from '../wal/wal-runtime.js';

const RANK: Record<HealthStatus, number> = { ok: 0, warn: 1, fail: 2 };

export function worst(checks: { status: HealthStatus }[]): HealthStatus {
  return checks.reduce<HealthStatus>((w, c) => (RANK[c.status] > RANK[w] ? c.status : w), 'ok');
}

export function healthExitCode(status: HealthStatus): number {
  return status === 'ok' ? EXIT.OK : status === 'warn' ? EXIT.WARNING : EXIT.FAILURE;
}

function logDirCheck(logDir: string): HealthCheckItem {
  let probe = logDir;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  try {
    accessSync(probe, constants.W_OK | constants.X_OK);
    return { name: 'log directory', status: 'ok', message: probe === logDir ? `${logDir} is writable` : `${logDir} will be created (${probe} is writable)` };
  } catch {
    return { name: 'log directory', status: 'warn', message: `${logDir} is not writable by this user: runs will not keep log files (set BACKUP_LOG_DIR)` };
  }
}

interface ScheduleView {
  since: Date | null;
  status: SchedulerStatus;
}

/** The schedule as `scheduler status` sees it: which tiers are pending, which missed. */
async function scheduleView(rt: CliRuntime): Promise<ScheduleView> {
  const since = await serviceSince(rt.storages[0]!, await rt.engine.list());
  const scheduler = createScheduler(rt.engine, { tiers: rt.schedules, timeZone: rt.timeZone, serviceSince: since, ...drillJob(rt) });
  return { since, status: await scheduler.status() };
}

/** The checks only the CLI can make: the zstd tool, the log folder and missed scheduled runs. */
export async function cliHealthChecks(rt: CliRuntime, schedule?: Promise<ScheduleView>): Promise<HealthCheckItem[]> {
  const checks: HealthCheckItem[] = [];
  const usesZstd = (rt.engine.options.codecs ?? []).some((c) => c.name === 'zstd') || rt.sources.some((s) => s.name === 'postgres');
  if (usesZstd) {
    const zstd = await zstdAvailable();
    checks.push(
      zstd.available
        ? { name: 'tool zstd', status: 'ok', message: zstd.via === 'zlib' ? 'built into Node.js' : 'the zstd program runs' }
        : { name: 'tool zstd', status: 'fail', message: 'the zstd program is not installed or not on PATH: install it (apt-get install zstd)' },
    );
  }
  checks.push(logDirCheck(rt.logDir));
  if (pitrConfigured(rt)) checks.push((await walLagCheck(rt)).item);
  try {
    const { since, status } = await (schedule ?? scheduleView(rt));
    for (const tier of status.tiers) {
      if (tier.pending) {
        checks.push({
          name: `schedule ${tier.tier}`,
          status: 'ok',
          message: `pending: no ${tier.tier} run was due since ${since ? `the scheduler first started (${formatTime(since, rt.timeZone)})` : 'the scheduler has not run yet'}; next ${formatTime(tier.nextRun, rt.timeZone)}`,
        });
        continue;
      }
      if (!tier.missed) continue;
      checks.push({
        name: `schedule ${tier.tier}`,
        status: 'warn',
        message: `the run due ${formatTime(tier.previousScheduled, rt.timeZone)} left no set${tier.lastSet ? ` (last: ${tier.lastSet.id})` : ''}: was the scheduler down, or did the run fail? See its log`,
        details: { cron: tier.cron, previousScheduled: tier.previousScheduled?.toISOString() ?? null, lastSet: tier.lastSet?.id ?? null },
      });
    }
  } catch (error) {
    checks.push({ name: 'schedule', status: 'warn', message: `cannot compute the schedule: ${(error as Error).message}` });
  }
  return checks;
}

export async function healthCheckCommand(ctx: CommandContext): Promise<number> {
  return await withRuntime(ctx, 'health-check', async ({ rt, fileLog }) => {
    const schedule = scheduleView(rt);
    // Computed once; a failure is reported by the schedule check below.
    schedule.catch(() => undefined);
    const pendingTiers = await schedule
      .then((v) => [...v.status.tiers.filter((t) => t.pending).map((t) => t.tier), ...(v.status.drill?.pending ? ['drill'] : [])])
      .catch(() => []);
    const report: HealthReport = await rt.engine.health({ signal: ctx.signal, pendingTiers });
    const cliChecks = await cliHealthChecks(rt, schedule);
    const checks = [...report.checks, ...cliChecks];
    const status = worst(checks);
    // The engine alerted on its own failed checks; a failure only the CLI sees (the WAL archive
    // lag past BACKUP_WAL_MAX_LAG, a missing zstd) is an alert as well.
    if (report.status !== 'fail' && cliChecks.some((c) => c.status === 'fail')) await notifyHealthFailed(rt, checks);
    fileLog[status === 'ok' ? 'info' : status === 'warn' ? 'warn' : 'error'](`health-check: ${status}`, { checks });
    if (ctx.json) {
      ctx.out.document({ status, checks });
    } else {
      ctx.out.line(table(['STATUS', 'CHECK', 'DETAIL'], checks.map((c) => [c.status.toUpperCase(), c.name, c.message])));
      ctx.out.line(`overall: ${status.toUpperCase()}`);
    }
    return healthExitCode(status);
  });
}

async function notifyHealthFailed(rt: CliRuntime, checks: HealthCheckItem[]): Promise<void> {
  const notifiers = await rt.notifiers();
  if (notifiers.length === 0) return;
  await dispatchNotification(
    notifiers,
    {
      type: 'health.failed',
      outcome: 'failure',
      time: new Date().toISOString(),
      host: rt.engine.options.host ?? hostname(),
      details: checks.filter((c) => c.status !== 'ok').map((c) => `${c.status.toUpperCase()} ${c.name}: ${c.message}`),
      error: { code: 'HEALTH_FAILED', message: checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.message}`).join('; ') },
    },
    { logger: rt.hub, redact: rt.redact, ...(rt.engine.options.notify ?? {}) },
  );
}
