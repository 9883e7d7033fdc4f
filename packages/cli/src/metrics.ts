import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BackupSetSummary, SchedulerRun, SchedulerStatus } from '@scholaria/backup-core';
import { DrillMetrics } from './drill-metrics.js';

interface Success {
  /** Unix seconds. */
  time: number;
  durationSeconds?: number;
  bytes: number;
}

interface LastRun {
  time: number;
  status: string;
  durationSeconds: number;
  bytes: number;
}

const key = (...parts: string[]) => parts.join('\u0000');
const split = (k: string) => k.split('\u0000');

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(pairs: Record<string, string>): string {
  const inner = Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return inner ? `{${inner}}` : '';
}

/**
 * What the scheduler service exposes on GET /metrics (Prometheus text format 0.0.4). The last
 * successes are seeded from the manifests on the storage at start, so a restarted container
 * reports the truth; counters count this process's runs.
 */
export class SchedulerMetrics {
  private readonly lastSuccess = new Map<string, Success>();
  private readonly componentSuccess = new Map<string, Success>();
  private readonly lastRun = new Map<string, LastRun>();
  private readonly runs = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly componentFailures = new Map<string, number>();
  private readonly pruneFailures = new Map<string, number>();
  private readonly skipped = new Map<string, number>();
  private readonly started = Date.now() / 1000;
  /** Restore drill gauges (drill_last_success_timestamp, drill_rto_seconds). */
  readonly drill = new DrillMetrics();

  /** Newest first, as engine.list() returns them. */
  seed(sets: BackupSetSummary[]): void {
    for (const set of [...sets].reverse()) {
      if (!set.tier) continue;
      const finished = set.finishedAt ? Date.parse(set.finishedAt) : set.time.getTime();
      const started = set.startedAt ? Date.parse(set.startedAt) : set.time.getTime();
      if (set.status === 'complete') {
        this.lastSuccess.set(set.tier, { time: finished / 1000, durationSeconds: Math.max(0, (finished - started) / 1000), bytes: set.bytes });
      }
      for (const c of set.manifest?.components ?? []) {
        if (c.status !== 'ok') continue;
        this.componentSuccess.set(key(set.tier, c.name), {
          time: Date.parse(c.finishedAt) / 1000,
          durationSeconds: c.durationMs / 1000,
          bytes: c.artifacts.reduce((n, a) => n + a.size, 0),
        });
      }
    }
  }

  record(run: SchedulerRun): void {
    if (run.skipped) {
      // Another replica leads: not a run of this process, not a failure.
      this.skipped.set(run.tier, (this.skipped.get(run.tier) ?? 0) + 1);
      return;
    }
    if (run.tier === 'drill') {
      if (run.drill) this.drill.record(run.drill);
      return;
    }
    const tier = run.tier;
    // Aborted because another replica took the lease over: that replica runs the next slot.
    const status = run.leaseLost && run.result?.status !== 'complete' ? 'aborted' : (run.result?.status ?? 'failed');
    const finished = (run.finishedAt ?? new Date()).getTime() / 1000;
    const durationSeconds = run.result ? run.result.durationMs / 1000 : finished - run.startedAt.getTime() / 1000;
    this.runs.set(key(tier, status), (this.runs.get(key(tier, status)) ?? 0) + 1);
    this.lastRun.set(tier, { time: finished, status, durationSeconds, bytes: run.result?.bytes ?? 0 });
    if (status === 'complete') this.lastSuccess.set(tier, { time: finished, durationSeconds, bytes: run.result!.bytes });
    else if (status === 'aborted') return;
    else this.failures.set(tier, (this.failures.get(tier) ?? 0) + 1);
    for (const c of run.result?.components ?? []) {
      if (c.status === 'ok' && status !== 'failed') {
        this.componentSuccess.set(key(tier, c.name), { time: finished, durationSeconds: c.durationMs / 1000, bytes: c.bytes });
      } else if (c.status === 'failed') {
        this.componentFailures.set(key(tier, c.name), (this.componentFailures.get(key(tier, c.name)) ?? 0) + 1);
      }
    }
    if (run.error && run.result && run.result.status !== 'failed') {
      // The backup worked but the prune after it did not.
      this.pruneFailures.set(tier, (this.pruneFailures.get(tier) ?? 0) + 1);
    }
  }

  /** The last run of each tier in this process. */
  lastRuns(): Record<string, LastRun> {
    return Object.fromEntries(this.lastRun);
  }

  render(status: SchedulerStatus): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [Record<string, string>, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [l, v] of samples) lines.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
    };
    const tiers = status.tiers.map((t) => t.tier);
    metric('scholaria_backup_up', 'gauge', 'The scheduler service is running.', [[{}, 1]]);
    if (status.leadership) {
      metric('scholaria_backup_leader', 'gauge', 'This replica holds the scheduler lease (leader election on): 1, else 0.', [[{}, status.leadership.leader ? 1 : 0]]);
      metric(
        'scholaria_backup_skipped_slots_total',
        'counter',
        'Scheduled slots this replica skipped because another replica leads.',
        [...new Set([...tiers, ...this.skipped.keys()])].map((t) => [{ tier: t }, this.skipped.get(t) ?? 0]),
      );
    }
    metric('scholaria_backup_start_time_seconds', 'gauge', 'When this scheduler process started (unix seconds).', [[{}, this.started]]);
    metric(
      'scholaria_backup_last_success_timestamp_seconds',
      'gauge',
      'End of the newest complete backup set of the tier (unix seconds); 0 when there is none.',
      tiers.map((t) => [{ tier: t }, this.lastSuccess.get(t)?.time ?? 0]),
    );
    metric(
      'scholaria_backup_last_success_duration_seconds',
      'gauge',
      'Duration of the newest complete backup of the tier.',
      tiers.filter((t) => this.lastSuccess.has(t)).map((t) => [{ tier: t }, this.lastSuccess.get(t)!.durationSeconds ?? 0]),
    );
    metric(
      'scholaria_backup_last_success_size_bytes',
      'gauge',
      'Stored bytes of the newest complete backup set of the tier.',
      tiers.filter((t) => this.lastSuccess.has(t)).map((t) => [{ tier: t }, this.lastSuccess.get(t)!.bytes]),
    );
    const comp = [...this.componentSuccess].map(([k, v]) => {
      const [tier, component] = split(k);
      return { tier: tier!, component: component!, v };
    });
    metric(
      'scholaria_backup_component_last_success_timestamp_seconds',
      'gauge',
      'End of the newest successful backup of the component in the tier (unix seconds).',
      comp.map((c) => [{ tier: c.tier, component: c.component }, c.v.time]),
    );
    metric(
      'scholaria_backup_component_last_success_duration_seconds',
      'gauge',
      'Duration of the newest successful backup of the component in the tier.',
      comp.map((c) => [{ tier: c.tier, component: c.component }, c.v.durationSeconds ?? 0]),
    );
    metric(
      'scholaria_backup_component_last_success_size_bytes',
      'gauge',
      'Stored bytes of the newest successful backup of the component in the tier.',
      comp.map((c) => [{ tier: c.tier, component: c.component }, c.v.bytes]),
    );
    metric(
      'scholaria_backup_last_run_timestamp_seconds',
      'gauge',
      'End of the last run of the tier in this process (unix seconds).',
      [...this.lastRun].map(([t, r]) => [{ tier: t }, r.time]),
    );
    metric(
      'scholaria_backup_last_run_success',
      'gauge',
      '1 when the last run of the tier in this process produced a complete set, else 0.',
      [...this.lastRun].map(([t, r]) => [{ tier: t }, r.status === 'complete' ? 1 : 0]),
    );
    metric(
      'scholaria_backup_last_run_duration_seconds',
      'gauge',
      'Duration of the last run of the tier in this process.',
      [...this.lastRun].map(([t, r]) => [{ tier: t }, r.durationSeconds]),
    );
    metric(
      'scholaria_backup_runs_total',
      'counter',
      'Scheduled runs by tier and result (complete, partial, failed).',
      [...this.runs].map(([k, n]) => {
        const [tier, result] = split(k);
        return [{ tier: tier!, status: result! }, n];
      }),
    );
    metric(
      'scholaria_backup_failures_total',
      'counter',
      'Scheduled runs that did not produce a complete set (partial or failed).',
      tiers.map((t) => [{ tier: t }, this.failures.get(t) ?? 0]),
    );
    metric(
      'scholaria_backup_component_failures_total',
      'counter',
      'Failed component backups by tier and component.',
      [...this.componentFailures].map(([k, n]) => {
        const [tier, component] = split(k);
        return [{ tier: tier!, component: component! }, n];
      }),
    );
    metric(
      'scholaria_backup_prune_failures_total',
      'counter',
      'Prunes after a backup that failed.',
      tiers.map((t) => [{ tier: t }, this.pruneFailures.get(t) ?? 0]),
    );
    metric(
      'scholaria_backup_next_run_timestamp_seconds',
      'gauge',
      'Next scheduled run of the tier (unix seconds).',
      status.tiers.filter((t) => t.nextRun).map((t) => [{ tier: t.tier }, t.nextRun!.getTime() / 1000]),
    );
    metric(
      'scholaria_backup_missed_run',
      'gauge',
      '1 when the previous scheduled run of the tier left no set (service down or run failed).',
      status.tiers.map((t) => [{ tier: t.tier }, t.missed ? 1 : 0]),
    );
    metric(
      'scholaria_backup_running',
      'gauge',
      '1 while a backup of the tier runs.',
      tiers.map((t) => [{ tier: t }, status.running?.tier === t ? 1 : 0]),
    );
    this.drill.render(metric);
    return `${lines.join('\n')}\n`;
  }
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  host: string;
  metrics: SchedulerMetrics;
  status: () => Promise<SchedulerStatus>;
  /** True while the service is shutting down. */
  stopping: () => boolean;
  redact?: (text: string) => string;
  /** More Prometheus lines appended to /metrics (the WAL archive lag). */
  extra?: () => Promise<string>;
}

/**
 * GET /healthz: 200 while the scheduler runs and the last run of every tier (in this process)
 * produced a set; 503 when one failed or the service is stopping. GET /metrics: Prometheus.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      try {
        if (path === '/metrics') {
          const body = options.metrics.render(await options.status()) + (options.extra ? await options.extra() : '');
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(req.method === 'HEAD' ? undefined : body);
        } else if (path === '/healthz') {
          const lastRuns = options.metrics.lastRuns();
          const failing = Object.entries(lastRuns)
            .filter(([, r]) => r.status === 'failed')
            .map(([tier]) => tier);
          const stopping = options.stopping();
          const ok = !stopping && failing.length === 0;
          const body = JSON.stringify({
            status: ok ? 'ok' : 'failing',
            ...(stopping ? { stopping: true } : {}),
            failingTiers: failing,
            lastRuns,
          });
          res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
          res.end(req.method === 'HEAD' ? undefined : `${body}\n`);
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
        }
      } catch (error) {
        const message = (options.redact ?? ((t: string) => t))((error as Error).message);
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`error: ${message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
