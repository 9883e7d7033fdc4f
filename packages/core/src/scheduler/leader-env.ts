import { z } from 'zod';
import { defineEnvGroup } from '../config/env-descriptor.js';
import { envIssue } from '../config/env-values.js';
import { parseDurationMs } from '../retention/duration.js';

/** 30 s: renewed every 10 s; a dead leader is replaced within about 40 s. */
export const DEFAULT_LEADER_TTL_MS = 30_000;

/** `off`, `auto`, or the name of an adapter that offers leader election (`postgres`, `s3`). */
export type LeaderElectionMode = 'off' | 'auto' | (string & {});

export interface LeaderEnvSettings {
  mode: LeaderElectionMode;
  ttlMs: number;
  /** The lease's name; undefined: derived from the first storage (replicas sharing a storage share a leader). */
  name?: string;
}

const mode = z.string().transform((s, ctx) => {
  const v = s.toLowerCase();
  return /^[a-z][a-z0-9-]*$/.test(v) ? v : envIssue(ctx, 'expected off, auto, postgres or s3');
});

const ttl = z.string().transform((s, ctx) => {
  let ms: number;
  try {
    ms = parseDurationMs(s, 'BACKUP_LEADER_TTL');
  } catch {
    return envIssue(ctx, 'expected a duration such as 30s or 2m');
  }
  return ms >= 3000 && ms <= 3_600_000 ? ms : envIssue(ctx, 'expected a duration from 3s to 1h');
});

const leaseName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/, { message: 'expected 1-100 letters, digits, ".", "_", ":" and "-"' });

/**
 * BACKUP_LEADER_*: leader election for several `scheduler run` replicas (docs/scaling.md). Core
 * names no engine: which adapter provides the lease is checked by the command against the
 * adapters that offer one (`AdapterDescriptor.leaderElector`).
 */
export const leaderEnvGroup = defineEnvGroup({
  name: 'leader',
  title: 'Leader election for scheduler replicas (`scheduler run`, docs/scaling.md)',
  env: {
    BACKUP_LEADER_ELECTION: {
      schema: mode,
      default: '`off`',
      doc: '`postgres` (an advisory lock on `DATABASE_URL`\'s database), `s3` (a lease object in `BACKUP_S3_BUCKET`), `auto` (postgres when `DATABASE_URL` is set, else s3) or `off`: with it on, only the leading replica runs each slot',
    },
    BACKUP_LEADER_TTL: { schema: ttl, default: '`30s`', doc: 'lease time: renewed every third of it; a replica that cannot renew for two thirds of it aborts its run; 3s-1h' },
    BACKUP_LEADER_NAME: { schema: leaseName, default: 'the first storage\'s name', doc: 'the lease\'s name: replicas with the same name elect one leader' },
  },
  configure: ({ values }): LeaderEnvSettings => ({
    mode: values.BACKUP_LEADER_ELECTION ?? 'off',
    ttlMs: values.BACKUP_LEADER_TTL ?? DEFAULT_LEADER_TTL_MS,
    ...(values.BACKUP_LEADER_NAME !== undefined ? { name: values.BACKUP_LEADER_NAME } : {}),
  }),
});
