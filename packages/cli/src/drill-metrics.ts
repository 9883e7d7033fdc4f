import type { DrillResult } from '@scholaria/backup-core';

type Metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [Record<string, string>, number][]) => void;

/**
 * The drill part of GET /metrics: seeded from the drill records on the storage at start (a
 * restarted container reports the truth), updated by each scheduled drill.
 */
export class DrillMetrics {
  private lastSuccess: number | undefined;
  private lastRun: { time: number; passed: boolean } | undefined;
  private rto = new Map<string, number>();
  private readonly runs = new Map<string, number>();

  /** Newest first. */
  seed(records: DrillResult[]): void {
    const passed = records.find((r) => r.status === 'passed');
    if (passed) this.setSuccess(passed);
    const latest = records[0];
    if (latest) this.lastRun = { time: Date.parse(latest.finishedAt) / 1000, passed: latest.status === 'passed' };
  }

  record(result: DrillResult): void {
    this.runs.set(result.status, (this.runs.get(result.status) ?? 0) + 1);
    this.lastRun = { time: Date.parse(result.finishedAt) / 1000, passed: result.status === 'passed' };
    if (result.status === 'passed') this.setSuccess(result);
  }

  private setSuccess(result: DrillResult): void {
    this.lastSuccess = Date.parse(result.finishedAt) / 1000;
    // The RTO of a drill that passed: the figure a real restore can count on.
    this.rto = new Map([...Object.entries(result.rto.components).map(([c, ms]) => [c, ms / 1000] as const), ['set', result.rto.totalMs / 1000]]);
  }

  render(metric: Metric): void {
    metric('scholaria_backup_drill_last_success_timestamp', 'gauge', 'End of the newest restore drill that passed (unix seconds); 0 when none has.', [[{}, this.lastSuccess ?? 0]]);
    metric(
      'scholaria_backup_drill_rto_seconds',
      'gauge',
      'Measured restore time of the newest passed drill per component; component="set" is the whole set (checksums and every component).',
      [...this.rto].map(([component, s]) => [{ component }, s]),
    );
    metric('scholaria_backup_drill_last_run_success', 'gauge', '1 when the newest restore drill passed, else 0 (absent before the first).', this.lastRun ? [[{}, this.lastRun.passed ? 1 : 0]] : []);
    metric('scholaria_backup_drill_runs_total', 'counter', 'Restore drills run by this process, by result (passed, failed).', [...this.runs].map(([status, n]) => [{ status }, n]));
  }
}
