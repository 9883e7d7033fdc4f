/** What the orchestrator asks a child process to do, and what the child reports back. */

export interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export type ChildTask =
  | { kind: 'pg-backup'; url: string; root: string; compression?: 'zstd' | 'gzip' | 'pg' | 'none'; ageRecipient?: string }
  | { kind: 'pg-restore'; url: string; root: string; ref: string; mode: 'in-place' | 'swap'; ageRecipient?: string }
  | { kind: 'redis-backup'; url: string; root: string; mode: 'logical' | 'rdb' }
  | { kind: 's3-bare'; s3: S3Target; prefix: string; file: string; partSize: number; queueSize: number }
  // The S3 adapter's own part size and queue (its defaults when unset).
  | { kind: 's3-library'; s3: S3Target; prefix: string; file: string; partSize?: number; queueSize?: number }
  /** SCAN + DUMP + PEXPIRETIME by a minimal client, for the Redis server's CPU floor. */
  | { kind: 'redis-floor'; url: string }
  /** A whole set (the components whose URL is given) in one engine run; default concurrency when unset. */
  | { kind: 'set-backup'; root: string; pgUrl?: string; redisUrl?: string; qdrantUrl?: string; concurrency?: number }
  /** A set of the given files (one artifact each, no codec) in an fs storage: the verify group's input. */
  | { kind: 'fs-files-backup'; root: string; files: string[] }
  /** engine.verify() of one set in an fs storage (every artifact re-hashed). */
  | { kind: 'fs-verify'; root: string; ref: string };

export interface ChildReport {
  /** Time of the operation inside the child, without Node's start-up. */
  ms: number;
  /** process.resourceUsage().maxRSS of the child: its own peak, not its tools' (pg_dump, zstd). */
  maxRssBytes: number;
  setId?: string;
  /** Size of the main artifact as stored. */
  bytes?: number;
  /** Every artifact of the set. */
  totalBytes?: number;
  keys?: number;
  /** CPU Node spent starting and loading modules, before the operation (not counted). */
  startupCpuMs?: number;
  artifacts?: { path: string; size: number }[];
}
