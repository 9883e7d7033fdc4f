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
  ratio('pg-default-vs-pipe-synced', 1, 'library defaults vs the same by hand then sync FILE (both on disk at the end): time ratio', 'lib.pg.default', 'raw.pg_dump.z0.zstd.sync', 'time');
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
  redisFloor(by, out);
  // 5. S3
  ratio('s3-upload', 5, 'library backup to S3 vs bare lib-storage Upload of the same file (same part size and queue): time ratio', 'lib.s3', 'raw.s3.lib-storage', 'time', { op: '<=', value: 1.05 });
  ratio('s3-upload-rss', 5, 'library backup to S3 vs bare lib-storage Upload: peak RSS ratio', 'lib.s3', 'raw.s3.lib-storage', 'rss');
  ratio('s3-upload-vs-16x4', 5, 'library backup to S3 (its defaults) vs bare lib-storage with the old 16 MiB x 4 settings: time ratio', 'lib.s3', 'raw.s3.lib-storage.16x4', 'time');
  const s3Rss = med(by.get('lib.s3'), 'rss');
  if (s3Rss !== undefined) {
    out.push({ id: 's3-upload-rss-abs', item: 5, label: 'peak RSS of the library S3 backup process (default part size and queue)', value: s3Rss / MB, display: `${(s3Rss / MB).toFixed(1)} MB`, target: '<= 150 MB', pass: s3Rss <= 150 * MB, measured: true });
  }
  wholeSet(by, out);
  nodeVariants(measurements, by, out);

  // Issue 21: point-in-time restore (base + replay) against the same done by hand with cp.
  ratio('pitr-restore', 7, "restore --to vs by hand (zstd -d | tar -x, restore_command cp, same target): time ratio", 'lib.pitr.restore', 'raw.pitr.restore', 'time');

  // Issue 21: archive_command's overhead per segment: "well under a second".
  const push = med(by.get('lib.wal-push'), 'time');
  const cp = med(by.get('raw.wal-push.cp'), 'time');
  if (push !== undefined && cp !== undefined) {
    const node = med(by.get('raw.node-start'), 'time');
    const pushCpu = med(by.get('lib.wal-push'), 'cpu');
    const nodeCpu = med(by.get('raw.node-start'), 'cpu');
    out.push({
      id: 'wal-push-overhead',
      item: 7,
      label: 'wal-push overhead per 16 MiB segment over cp (ms)',
      value: push - cp,
      display: `${(push - cp).toFixed(0)} ms`,
      target: '< 1000 ms',
      pass: push - cp < 1000,
      basis: `${push.toFixed(0)} ms - ${cp.toFixed(0)} ms${node !== undefined ? ` (node -e 0: ${node.toFixed(0)} ms)` : ''}`,
      ...(pushCpu !== undefined && nodeCpu ? { cpuRatio: pushCpu / nodeCpu, cpuBasis: `wal-push / node -e 0: ${(pushCpu / 1000).toFixed(2)} s / ${(nodeCpu / 1000).toFixed(2)} s` } : {}),
      measured: true,
    });
  } else out.push({ id: 'wal-push-overhead', item: 7, label: 'wal-push overhead per 16 MiB segment over cp (ms)', display: 'not measured', target: '< 1000 ms', measured: false });

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

/** Issue 22: the logical mode's CPU (Node + Redis) against what Redis alone must spend on SCAN + DUMP + PEXPIRETIME. */
function redisFloor(by: Map<string, Measurement>, out: Comparison[]): void {
  const floor = by.get('raw.redis.floor');
  const lib = by.get('lib.redis.logical');
  const f = med(floor, 'cpu');
  const l = med(lib, 'cpu');
  if (!f || !l || !lib) {
    out.push({ id: 'redis-logical-vs-floor', item: 4, label: "library logical backup CPU (Node + Redis) vs the Redis server's CPU floor for SCAN+DUMP+PEXPIRETIME", display: 'not measured', target: '<= 1.2', measured: false });
    return;
  }
  const server = lib.runs.map((r) => r.serverCpuMs).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const serverMed = server.length ? server[Math.floor(server.length / 2)]! : undefined;
  out.push({
    id: 'redis-logical-vs-floor',
    item: 4,
    label: "library logical backup CPU (Node + Redis) vs the Redis server's CPU floor for SCAN+DUMP+PEXPIRETIME",
    value: l / f,
    display: (l / f).toFixed(3),
    target: '<= 1.2',
    pass: l / f <= 1.2,
    basis: `${unit('cpu', l)} / ${unit('cpu', f)} CPU`,
    measured: true,
  });
  if (serverMed !== undefined) {
    out.push({
      id: 'redis-logical-server-vs-floor',
      item: 4,
      label: "Redis server CPU during the library logical backup vs the floor (the server's share alone)",
      value: serverMed / f,
      display: (serverMed / f).toFixed(3),
      basis: `${unit('cpu', serverMed)} / ${unit('cpu', f)} CPU`,
      measured: true,
    });
  }
}

/**
 * Issue 22: the whole set against its components alone. Run at once, the set cannot beat its
 * slowest component, and the others' CPU has to fit on the cores left: the bound is the slowest
 * component's time plus the others' CPU (generous on 2 cores, exact on one).
 */
function wholeSet(by: Map<string, Measurement>, out: Comparison[]): void {
  const parts = ['postgres', 'redis', 'qdrant'].map((c) => ({ c, t: med(by.get(`lib.set.${c}`), 'time'), cpu: med(by.get(`lib.set.${c}`), 'cpu') }));
  const set = med(by.get('lib.set.all'), 'time');
  const label = 'whole set (PostgreSQL + Redis + Qdrant simulator) vs the slowest component alone plus the others\' CPU: time ratio';
  if (set === undefined || parts.some((p) => p.t === undefined || p.cpu === undefined)) {
    out.push({ id: 'set-vs-components', item: 7, label, display: 'not measured', target: '<= 1.05', measured: false });
    return;
  }
  const slowest = parts.reduce((a, b) => (a.t! >= b.t! ? a : b));
  const others = parts.filter((p) => p !== slowest).reduce((n, p) => n + p.cpu!, 0);
  const bound = slowest.t! + others;
  const setCpu = med(by.get('lib.set.all'), 'cpu');
  const sumCpu = parts.reduce((n, p) => n + p.cpu!, 0);
  out.push({
    id: 'set-vs-components',
    item: 7,
    label,
    value: set / bound,
    display: (set / bound).toFixed(3),
    target: '<= 1.05',
    pass: set / bound <= 1.05,
    basis: `${unit('time', set)} / (${slowest.c} ${unit('time', slowest.t!)} + ${unit('cpu', others)} CPU)`,
    ...(setCpu ? { cpuRatio: setCpu / sumCpu, cpuBasis: `${unit('cpu', setCpu)} / ${unit('cpu', sumCpu)} (sum alone)` } : {}),
    measured: true,
  });
  const sum = parts.reduce((n, p) => n + p.t!, 0);
  out.push({ id: 'set-vs-sum', item: 7, label: 'whole set vs the sum of its components run alone: time ratio', value: set / sum, display: (set / sum).toFixed(3), basis: `${unit('time', set)} / ${unit('time', sum)}`, measured: true });
  const c1 = med(by.get('lib.set.all.c1'), 'time');
  if (c1) out.push({ id: 'set-vs-sequential', item: 7, label: 'whole set, default concurrency vs concurrency 1: time ratio', value: set / c1, display: (set / c1).toFixed(3), basis: `${unit('time', set)} / ${unit('time', c1)}`, measured: true });
}

/** `--node`: each library measurement under another Node against the same one under the running Node. */
function nodeVariants(measurements: Measurement[], by: Map<string, Measurement>, out: Comparison[]): void {
  for (const m of measurements) {
    const at = m.id.lastIndexOf('@node');
    if (at < 0) continue;
    const base = by.get(m.id.slice(0, at));
    const t = med(m, 'time');
    const tb = med(base, 'time');
    if (!base || !t || !tb) continue;
    const c = med(m, 'cpu');
    const cb = med(base, 'cpu');
    const node = m.id.slice(at + 1);
    out.push({
      id: `node-${m.id}`,
      item: 8,
      label: `${base.id} on ${node} vs the running Node: time ratio`,
      value: t / tb,
      display: (t / tb).toFixed(3),
      basis: `${unit('time', t)} / ${unit('time', tb)}`,
      ...(c && cb ? { cpuRatio: c / cb, cpuBasis: `${unit('cpu', c)} / ${unit('cpu', cb)}` } : {}),
      measured: true,
    });
  }
}
