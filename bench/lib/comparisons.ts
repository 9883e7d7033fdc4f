import type { Measurement } from './measure.js';
import { MB } from './stats.js';
import type { ScalePoint } from './report.js';

export interface Comparison {
  id: string;
  /** Issue 11 item number (1-6). */
  item: number;
  label: string;
  /** Ratio or figure compared with the target. */
  value?: number;
  display: string;
  target?: string;
  /** undefined: no target (information) or not measured. */
  pass?: boolean;
  /** What the figure is made of, e.g. '57.1 s / 14.2 s'. */
  basis?: string;
  /**
   * For time comparisons: CPU of the first over CPU of the second (all processes, servers
   * included), the cost on a machine with no idle core.
   */
  cpuRatio?: number;
  cpuBasis?: string;
  measured: boolean;
}

type Metric = 'time' | 'size' | 'rss' | 'cpu' | 'keysPerSecond';

function med(m: Measurement | undefined, metric: Metric): number | undefined {
  return m?.[metric]?.median;
}

function unit(metric: Metric, v: number): string {
  if (metric === 'time' || metric === 'cpu') return `${(v / 1000).toFixed(1)} s`;
  if (metric === 'keysPerSecond') return `${Math.round(v).toLocaleString('en-US')} keys/s`;
  return `${(v / MB).toFixed(metric === 'rss' ? 1 : 0)} MB`;
}

export function compare(measurements: Measurement[], scale: ScalePoint[]): Comparison[] {
  const by = new Map(measurements.map((m) => [m.id, m]));
  const out: Comparison[] = [];

  /** a / b of a metric's medians; `speedup` reports b / a instead (how many times faster a is). */
  const ratio = (
    id: string,
    item: number,
    label: string,
    a: string,
    b: string,
    metric: Metric,
    target?: { op: '<=' | '>='; value: number; speedup?: boolean } | { speedup: true },
  ) => {
    const va = med(by.get(a), metric);
    const vb = med(by.get(b), metric);
    if (va === undefined || vb === undefined || vb === 0 || va === 0) {
      const missing = [va === undefined ? a : undefined, vb === undefined ? b : undefined].filter(Boolean).join(', ');
      const goal = target && 'op' in target ? target : undefined;
      out.push({ id, item, label, display: `not measured (${missing || 'zero'})`, ...(goal ? { target: `${goal.op} ${goal.value}` } : {}), measured: false });
      return;
    }
    const speedup = target?.speedup ?? false;
    const value = speedup ? vb / va : va / vb;
    const goal = target && 'op' in target ? target : undefined;
    const pass = goal ? (goal.op === '<=' ? value <= goal.value : value >= goal.value) : undefined;
    out.push({
      id,
      item,
      label,
      value,
      display: speedup ? `${value.toFixed(2)}x` : value.toFixed(3),
      ...(goal ? { target: `${goal.op} ${goal.value}${speedup ? 'x' : ''}` } : {}),
      ...(pass !== undefined ? { pass } : {}),
      basis: speedup ? `${unit(metric, vb)} / ${unit(metric, va)}` : `${unit(metric, va)} / ${unit(metric, vb)}`,
      ...cpuOf(a, b, metric),
      measured: true,
    });
  };
  const cpuOf = (a: string, b: string, metric: Metric): Pick<Comparison, 'cpuRatio' | 'cpuBasis'> => {
    if (metric !== 'time') return {};
    const ca = med(by.get(a), 'cpu');
    const cb = med(by.get(b), 'cpu');
    if (!ca || !cb) return {};
    return { cpuRatio: ca / cb, cpuBasis: `${unit('cpu', ca)} / ${unit('cpu', cb)}` };
  };

  // 1. PostgreSQL backup
  ratio('pg-default-speedup', 1, 'library defaults vs pg_dump -Fc: times faster', 'lib.pg.default', 'raw.pg_dump.fc', 'time', { op: '>=', value: 4, speedup: true });
  ratio('pg-default-size', 1, 'library defaults vs pg_dump -Fc: artifact size ratio', 'lib.pg.default', 'raw.pg_dump.fc', 'size', { op: '<=', value: 1.05 });
  ratio('pg-pg-time', 1, "library with pg_dump's settings (compression 'pg') vs pg_dump -Fc: time ratio", 'lib.pg.pg', 'raw.pg_dump.fc', 'time', { op: '<=', value: 1.05 });
  ratio('pg-default-vs-pipe', 1, 'library defaults vs the same work by hand (pg_dump -Fc -Z0 | zstd -3 -T0): time ratio', 'lib.pg.default', 'raw.pg_dump.z0.zstd', 'time');
  // 2. with sha256 + age
  ratio('pg-age-time', 2, "library 'pg' + age (and sha256) vs pg_dump -Fc | age: time ratio", 'lib.pg.pg.age', 'raw.pg_dump.fc.age', 'time', { op: '<=', value: 1.05 });
  ratio('pg-default-age-vs-pipe', 2, 'library defaults + age vs pg_dump -Fc -Z0 | zstd | age: time ratio', 'lib.pg.default.age', 'raw.pg_dump.z0.zstd.age', 'time');
  ratio('pg-default-age-speedup', 2, 'library defaults + age vs pg_dump -Fc | age: times faster', 'lib.pg.default.age', 'raw.pg_dump.fc.age', 'time', { speedup: true });
  // 3. restore
  ratio('pg-restore-inplace', 3, 'library in-place restore vs pg_restore (same archive, same flags): time ratio', 'lib.restore.inplace', 'raw.pg_restore.inplace', 'time', { op: '<=', value: 1.05 });
  ratio('pg-restore-swap', 3, 'library swap restore vs the same pg_restore: time ratio', 'lib.restore.swap', 'raw.pg_restore.inplace', 'time');
  // 4. Redis
  ratio('redis-logical-vs-redis-dump', 4, 'library logical backup vs redis-dump (npm): times faster', 'lib.redis.logical', 'peer.redis-dump', 'time', { op: '>=', value: 10, speedup: true });
  ratio('redis-logical-rss-vs-redis-dump', 4, 'library logical backup vs redis-dump: peak RSS ratio', 'lib.redis.logical', 'peer.redis-dump', 'rss');
  ratio('redis-logical-rss-flat', 4, 'library logical backup, peak RSS at all keys / at a quarter of them (flat memory)', 'lib.redis.logical', 'lib.redis.logical.quarter', 'rss', { op: '<=', value: 1.1 });
  ratio('redis-logical-vs-cli', 4, 'library logical backup vs redis-cli --rdb: time ratio', 'lib.redis.logical', 'raw.redis-cli.rdb', 'time');
  ratio('redis-rdb', 4, "library rdb mode vs redis-cli --rdb: time ratio", 'lib.redis.rdb', 'raw.redis-cli.rdb', 'time', { op: '<=', value: 1.1 });
  // 5. S3
  ratio('s3-upload', 5, 'library backup to S3 vs bare lib-storage Upload of the same file: time ratio', 'lib.s3', 'raw.s3.lib-storage', 'time');
  ratio('s3-upload-rss', 5, 'library backup to S3 vs bare lib-storage Upload: peak RSS ratio', 'lib.s3', 'raw.s3.lib-storage', 'rss');

  // Issue 22: full verify of a set against sha256sum -c (and openssl, the same SHA-256 code as Node's).
  ratio('verify-vs-sha256sum', 7, 'library full verify of a set vs sha256sum -c SHA256SUMS: time ratio', 'lib.verify', 'raw.sha256sum.c', 'time', { op: '<=', value: 1.05 });
  ratio('verify-vs-openssl', 7, 'library full verify of a set vs openssl dgst -sha256 of its artifacts: time ratio', 'lib.verify', 'raw.openssl.sha256', 'time');

  // 6. memory against size
  const limit = 150 * MB;
  for (const p of scale) {
    const gib = p.databaseBytes / (1024 * MB);
    out.push({
      id: `rss-${gib.toFixed(1)}gib`,
      item: 6,
      label: `peak RSS of the library backup process, ${gib.toFixed(2)} GiB database`,
      value: p.maxRssBytes / MB,
      display: `${(p.maxRssBytes / MB).toFixed(1)} MB`,
      target: '< 150 MB',
      pass: p.maxRssBytes < limit,
      measured: true,
    });
  }
  if (scale.length >= 2) {
    const first = scale[0]!;
    const last = scale[scale.length - 1]!;
    const growth = last.maxRssBytes / first.maxRssBytes;
    out.push({
      id: 'rss-growth',
      item: 6,
      label: `peak RSS growth from ${(first.databaseBytes / (1024 * MB)).toFixed(2)} to ${(last.databaseBytes / (1024 * MB)).toFixed(2)} GiB (not growing with size)`,
      value: growth,
      display: growth.toFixed(3),
      target: '<= 1.1',
      pass: growth <= 1.1,
      basis: `${(last.maxRssBytes / MB).toFixed(1)} MB / ${(first.maxRssBytes / MB).toFixed(1)} MB`,
      measured: true,
    });
  }
  const libs = measurements.filter((m) => m.kind === 'library' && m.rss);
  if (libs.length) {
    const worst = libs.reduce((a, b) => (a.rss!.max >= b.rss!.max ? a : b));
    // Information: the 150 MB target is the PostgreSQL backup's (item 6); an S3 upload holds
    // (queueSize + 1) parts in memory by design, in the bare SDK upload as well.
    out.push({
      id: 'rss-all-library',
      item: 6,
      label: `highest peak RSS of any library run (${worst.id})`,
      value: worst.rss!.max / MB,
      display: `${(worst.rss!.max / MB).toFixed(1)} MB`,
      measured: true,
    });
  }
  return out;
}
