import { createHash } from 'node:crypto';
import {
  BackupError,
  DEFAULT_LEADER_TTL_MS,
  type Lease,
  type LeaderElector,
  type LeaderIdentity,
  type LeaseHolder,
} from '@scholaria/backup-core';
import type pg from 'pg';
import { createConnector, resolveConnection, type DbSession } from './connection.js';
import { parsePostgresOptions, type PostgresSourceOptions } from './postgres-options.js';

export interface PostgresLeaderElectorOptions {
  /** The connection, as for `createPostgresSource` (`url`, or host/port/user/password/database, TLS). */
  connection: Pick<PostgresSourceOptions, 'url' | 'host' | 'port' | 'user' | 'password' | 'database' | 'sslmode' | 'sslrootcert' | 'sslcert' | 'sslkey'>;
  /** The lease's name; replicas with the same name on the same database elect one leader. */
  name: string;
  /** How long the leader may fail to confirm its lock before it gives up. Default 30 s. */
  ttlMs?: number;
}

/** Prefix of the leader's `application_name`, so `holder()` (and an operator's `pg_stat_activity`) can name it. */
export const LEADER_APPLICATION_NAME = 'scholaria-backup leader ';

/**
 * The bigint key of `pg_try_advisory_lock` for a lease name: the first 8 bytes of
 * SHA-256('scholaria-backup:' + name), as a signed 64-bit integer. Stable across versions and
 * hosts, so every replica asks for the same lock.
 */
export function advisoryLockKey(name: string): bigint {
  return createHash('sha256').update(`scholaria-backup:${name}`).digest().readBigInt64BE(0);
}

/** pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits), objsubid 1. */
function lockColumns(key: bigint): { classid: string; objid: string } {
  const unsigned = BigInt.asUintN(64, key);
  return { classid: String(unsigned >> 32n), objid: String(unsigned & 0xffffffffn) };
}

function parseOwner(applicationName: string | null | undefined): { owner: string; host: string; pid: number } | undefined {
  if (!applicationName?.startsWith(LEADER_APPLICATION_NAME)) return undefined;
  const owner = applicationName.slice(LEADER_APPLICATION_NAME.length);
  const m = /^(.*):(\d+):([0-9a-f]*)$/.exec(owner);
  return m ? { owner, host: m[1]!, pid: Number(m[2]) } : { owner, host: owner, pid: 0 };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackupError('TIMEOUT', `${what} took more than ${Math.round(ms / 1000)} s`, { retryable: true })), ms);
    }),
  ]);
}

/**
 * Leader election on the database being backed up: a session advisory lock
 * (`pg_try_advisory_lock`) held on a dedicated connection for as long as this replica leads.
 * PostgreSQL releases it when that session ends, so a leader killed with `kill -9` (or whose
 * pod is gone) frees it as soon as the server notices the closed connection. Renewal checks
 * that the session is alive and still holds the lock; the lease is lost the moment the
 * connection closes (`lost` aborts).
 */
export function createPostgresLeaderElector(options: PostgresLeaderElectorOptions): LeaderElector {
  const params = resolveConnection(parsePostgresOptions(options.connection));
  const database = params.database ?? params.user ?? 'postgres';
  const connector = createConnector(params, 'leader election');
  const key = advisoryLockKey(options.name);
  const { classid, objid } = lockColumns(key);
  const ttlMs = options.ttlMs ?? DEFAULT_LEADER_TTL_MS;
  const name = `postgres advisory lock ${key} ("${options.name}") on ${database}@${params.host}:${params.port}`;
  const queryTimeout = Math.max(1000, Math.floor(ttlMs / 3));

  async function holder(): Promise<LeaseHolder | undefined> {
    const session = await connector.connect(database);
    try {
      const r = await withTimeout(
        session.client.query<{ application_name: string | null; backend_start: Date | null }>(
          `select a.application_name, a.backend_start from pg_locks l left join pg_stat_activity a on a.pid = l.pid
            where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database where datname = current_database())
              and l.classid::text = $1 and l.objid::text = $2 and l.objsubid = 1`,
          [classid, objid],
        ),
        queryTimeout,
        'reading the leader lock',
      );
      const row = r.rows[0];
      if (!row) return undefined;
      const who = parseOwner(row.application_name) ?? { owner: 'unknown (not visible to this role)', host: 'unknown', pid: 0 };
      return { ...who, acquiredAt: (row.backend_start ?? new Date(0)).toISOString() };
    } finally {
      await session.release();
    }
  }

  async function acquire(identity: LeaderIdentity): Promise<Lease | undefined> {
    const session: DbSession = await connector.connect(database);
    const client = session.client as pg.Client;
    let ok = false;
    try {
      // Named in pg_stat_activity so other replicas and operators see who leads (63 bytes at most).
      await withTimeout(client.query('select set_config($1, $2, false)', ['application_name', `${LEADER_APPLICATION_NAME}${identity.owner}`.slice(0, 63)]), queryTimeout, 'naming the leader connection');
      const r = await withTimeout(client.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [String(key)]), queryTimeout, 'asking for the leader lock');
      ok = r.rows[0]?.ok === true;
    } finally {
      if (!ok) await session.release();
    }
    if (!ok) return undefined;

    const lost = new AbortController();
    let released = false;
    const onGone = (why: string) => () => {
      if (!released && !lost.signal.aborted) lost.abort(new BackupError('CONNECTION_FAILED', `the connection holding the lock ${why}`));
    };
    client.on('end', onGone('closed'));
    client.on('error', onGone('failed'));
    const leaseHolder: LeaseHolder = { ...identity, acquiredAt: new Date().toISOString() };
    return {
      holder: leaseHolder,
      lost: lost.signal,
      async renew() {
        if (lost.signal.aborted) return false;
        const r = await withTimeout(
          client.query<{ n: number }>(
            `select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and pid = pg_backend_pid()
              and classid::text = $1 and objid::text = $2 and objsubid = 1`,
            [classid, objid],
          ),
          queryTimeout,
          'checking the leader lock',
        );
        return r.rows[0]?.n === 1;
      },
      async release() {
        if (released) return;
        released = true;
        try {
          if (!lost.signal.aborted) await withTimeout(client.query('select pg_advisory_unlock($1::bigint)', [String(key)]), queryTimeout, 'releasing the leader lock');
        } catch {
          // closing the session below releases the lock as well
        }
        await session.release();
      },
    };
  }

  return { specVersion: 'v1', name, ttlMs, acquire, holder };
}
