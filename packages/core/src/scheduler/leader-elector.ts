import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** Who holds (or asks for) the scheduler's leadership. */
export interface LeaderIdentity {
  /** Unique per process: `<host>:<pid>:<random>`. */
  owner: string;
  host: string;
  pid: number;
}

/** The holder of a lease as an elector reports it (for `scheduler status` and the logs). */
export interface LeaseHolder extends LeaderIdentity {
  /** ISO 8601, the holder's clock. */
  acquiredAt: string;
  /** ISO 8601, the holder's clock; when the elector records renewals (S3). */
  renewedAt?: string;
  /** ISO 8601, the holder's clock: the lease lapses then unless renewed (S3). */
  expiresAt?: string;
}

/** One tenure of leadership. */
export interface Lease {
  readonly holder: LeaseHolder;
  /**
   * Confirms or extends the lease. Resolves false when the lease is provably gone (another
   * replica took it, the lock's session ended); throws when it could not tell (network).
   */
  renew(): Promise<boolean>;
  /** Gives the lease up so another replica may take it at once; best effort, never throws. */
  release(): Promise<void>;
  /** Aborted the moment the elector learns the lease is gone between renewals (a PostgreSQL session ending). */
  readonly lost?: AbortSignal;
}

/**
 * An engine that lets exactly one scheduler replica lead: a PostgreSQL session advisory lock
 * (`createPostgresLeaderElector`), an S3 lease object written with conditional writes
 * (`createS3LeaderElector`). Adapters implement it; the scheduler's `leadership` decides when
 * to acquire, renew and give up (docs/scaling.md).
 */
export interface LeaderElector {
  readonly specVersion: 'v1';
  /** Where the lease lives, without secrets, e.g. `postgres advisory lock 123 on scholaria@db:5432`. */
  readonly name: string;
  /**
   * How long a lease lasts without a successful renewal. The scheduler renews every third of it
   * and aborts its run when it could not renew for two thirds of it, before anyone may take over.
   */
  readonly ttlMs: number;
  /** Tries once to become the leader; undefined when another replica holds the lease. */
  acquire(identity: LeaderIdentity): Promise<Lease | undefined>;
  /** The current holder, or undefined when the lease is free (or lapsed). */
  holder(): Promise<LeaseHolder | undefined>;
  close?(): Promise<void>;
}

/** This process's identity: host name, pid and a random part (a restarted pid is someone else). */
export function leaderIdentity(): LeaderIdentity {
  const host = hostname();
  return { owner: `${host}:${process.pid}:${randomBytes(4).toString('hex')}`, host, pid: process.pid };
}

/** `host pid N since <time>` for messages. */
export function describeHolder(holder: LeaseHolder | undefined): string {
  if (!holder) return 'nobody';
  return `${holder.host} pid ${holder.pid} (since ${holder.acquiredAt}${holder.renewedAt ? `, renewed ${holder.renewedAt}` : ''})`;
}
