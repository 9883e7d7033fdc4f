import { parseArgs } from 'node:util';

export const GROUPS = ['pg-backup', 'pg-age', 'pg-restore', 'redis', 's3', 'set', 'scale', 'pitr', 'verify'] as const;
export type Group = (typeof GROUPS)[number];

export interface BenchOptions {
  /** Base PostgreSQL database size in GiB. */
  size: number;
  /** Repetitions of each measurement. */
  reps: number;
  /** Repetitions of the long measurements: the four backups bound by pg_dump's own zlib (~1.5 min each at 1 GiB). */
  slowReps: number;
  /** Repetitions of the restores (~0.5 min each at 1 GiB); the in-place ratio is close to run-to-run noise, so 3 by default. */
  restoreReps: number;
  only: Set<Group>;
  redisKeys: number;
  /** Runs of the redis-dump peer (slow, memory-hungry). */
  peerReps: number;
  /** Size of the S3 artifact in GiB. */
  s3Size: number;
  /** Multiples of `size` the scale step grows the database to. */
  scale: number[];
  work?: string;
  keep: boolean;
  docs: boolean;
  out?: string;
  /** Only rewrite the docs from this results file. */
  render?: string;
  /** Node majors the library children run under as well (installed from npm); the running one is always measured. */
  nodes: string[];
  /** Size of the set group's PostgreSQL database in GiB. */
  setSize: number;
}

export const USAGE = `pnpm bench [-- options]

  --size GiB        base PostgreSQL database size (default 1)
  --reps N          repetitions of each measurement (default 3)
  --slow-reps N     repetitions of the long ones: the four backups bound by pg_dump's zlib
                    (about 100 s each at 1 GiB) (default 1, at most --reps)
  --restore-reps N  repetitions of the restores (about 30 s each at 1 GiB) (default --reps)
  --only LIST       comma-separated groups: ${GROUPS.join(', ')} (default all)
  --redis-keys N    Redis keys to load (default 1000000)
  --peer-reps N     runs of the redis-dump npm peer (default 1; it is slow and memory-hungry)
  --s3-size GiB     size of the S3 artifact (default 1)
  --scale LIST      multiples of --size for the memory-vs-size step (default 2,4)
  --work DIR        work folder (default a temp folder, removed at the end)
  --keep            keep the work folder
  --no-docs         do not rewrite docs/benchmarks.md and its chart
  --out FILE        results JSON (default bench/results/<date>.json, and latest.json)
  --render FILE     measure nothing: rewrite docs/benchmarks.md and its chart from a results file
  --node LIST       Node majors to run every library child under as well, e.g. 22,24 (pinned
                    versions, installed from the npm registry into node_modules/.cache)
  --set-size GiB    PostgreSQL size of the whole-set group (default --size / 4; the set also
                    holds --redis-keys / 4 Redis keys and a Qdrant simulator collection)

Examples: pnpm bench -- --size 0.1 --reps 1 --redis-keys 100000 --s3-size 0.1
          pnpm bench -- --only redis,s3`;

function positive(name: string, value: string | undefined, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--'),
    options: {
      size: { type: 'string' },
      reps: { type: 'string' },
      'slow-reps': { type: 'string' },
      'restore-reps': { type: 'string' },
      only: { type: 'string' },
      'redis-keys': { type: 'string' },
      'peer-reps': { type: 'string' },
      's3-size': { type: 'string' },
      scale: { type: 'string' },
      work: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-docs': { type: 'boolean', default: false },
      out: { type: 'string' },
      render: { type: 'string' },
      node: { type: 'string' },
      'set-size': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const only = new Set<Group>();
  for (const g of (values.only ?? GROUPS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only: unknown group "${g}" (groups: ${GROUPS.join(', ')})`);
    only.add(g as Group);
  }
  const reps = positive('reps', values.reps, 3, true);
  const scale = (values.scale ?? '2,4')
    .split(',')
    .filter(Boolean)
    .map((s) => positive('scale', s, 1));
  return {
    size: positive('size', values.size, 1),
    reps,
    slowReps: Math.min(reps, positive('slow-reps', values['slow-reps'], 1, true)),
    restoreReps: positive('restore-reps', values['restore-reps'], reps, true),
    only,
    redisKeys: positive('redis-keys', values['redis-keys'], 1_000_000, true),
    peerReps: positive('peer-reps', values['peer-reps'], 1, true),
    s3Size: positive('s3-size', values['s3-size'], 1),
    scale,
    ...(values.work ? { work: values.work } : {}),
    keep: values.keep ?? false,
    docs: !(values['no-docs'] ?? false),
    ...(values.out ? { out: values.out } : {}),
    ...(values.render ? { render: values.render } : {}),
    nodes: (values.node ?? '')
      .split(',')
      .map((s) => s.trim().replace(/^v/, ''))
      .filter(Boolean),
    setSize: positive('set-size', values['set-size'], positive('size', values.size, 1) / 4),
  };
}
