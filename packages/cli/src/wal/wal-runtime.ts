import type { HealthCheckItem, Manifest } from '@scholaria/backup-core';
import type { CliRuntime } from '../runtime.js';
import { readPitrEnv, type PitrEnv } from './pitr-env.js';

type PostgresModule = typeof import('@scholaria/backup-postgres');
type WalArchive = InstanceType<typeof import('@scholaria/backup-postgres/wal-archive').WalArchive>;

export const PITR_COMPONENT = 'postgres-pitr';

export async function postgresModule(): Promise<PostgresModule> {
  return await import('@scholaria/backup-postgres');
}

/**
 * The WAL archive on the runtime's storages with the engine's codecs (zstd, age). `want`
 * narrows the codecs a lean runtime creates (wal-push: the encoding ones; wal-fetch: those the
 * file's record names), so that age is loaded only when a file needs it.
 */
export async function walArchiveOf(rt: CliRuntime, signal?: AbortSignal, want?: (codec: { name: string; decodeOnly: boolean }) => boolean): Promise<WalArchive> {
  // The light entry: wal-push runs once per segment and must not load the pg client.
  const { WalArchive } = await import('@scholaria/backup-postgres/wal-archive');
  const { codecs, decoders } = await rt.codecs(want);
  return new WalArchive({
    storages: rt.storages,
    codecs: [...codecs],
    decoders: [...decoders],
    ...(signal ? { signal } : {}),
  });
}

export function pitrEnvOf(rt: CliRuntime): PitrEnv {
  return readPitrEnv(rt.env);
}

/** Whether this deployment uses point-in-time recovery: a postgres-pitr source or BACKUP_PITR=on. */
export function pitrConfigured(rt: CliRuntime): boolean {
  return rt.sources.some((s) => s.name === PITR_COMPONENT) || pitrEnvOf(rt).enabled;
}

export function basePointsOf(manifests: Manifest[]) {
  const out: { setId: string; timeline: number; startLsn: string; stopLsn: string; stopTime: string }[] = [];
  for (const m of manifests) {
    const c = m.components.find((x) => x.name === PITR_COMPONENT && x.status === 'ok');
    const md = c?.metadata as Record<string, unknown> | undefined;
    if (!md || typeof md.startLsn !== 'string' || typeof md.stopLsn !== 'string' || typeof md.timeline !== 'number' || typeof md.stopTime !== 'string') continue;
    out.push({ setId: m.id, timeline: md.timeline, startLsn: md.startLsn, stopLsn: md.stopLsn, stopTime: md.stopTime });
  }
  return out;
}

/** Age of the newest archived WAL file against BACKUP_WAL_MAX_LAG. */
export async function walLagCheck(rt: CliRuntime, now = new Date()): Promise<{ item: HealthCheckItem; lagSeconds: number | undefined }> {
  const env = pitrEnvOf(rt);
  try {
    const archive = await walArchiveOf(rt);
    const files = await archive.list();
    const newest = files.reduce<(typeof files)[number] | undefined>((m, f) => (!m || f.archivedAt > m.archivedAt ? f : m), undefined);
    if (!newest) {
      return { item: { name: 'wal archive', status: 'fail', message: 'no WAL file has been archived yet: set archive_command = \'scholaria-backup wal-push %p\' (or run wal-receive)' }, lagSeconds: undefined };
    }
    const lagMs = now.getTime() - newest.archivedAt.getTime();
    const late = lagMs > env.maxLagMs;
    return {
      item: {
        name: 'wal archive',
        status: late ? 'fail' : 'ok',
        message: `newest archived WAL file ${newest.name} is ${Math.round(lagMs / 1000)} s old (threshold ${Math.round(env.maxLagMs / 1000)} s)${late ? ': archiving has stopped or the server is idle without archive_timeout; check the PostgreSQL log for archive_command errors' : ''}`,
        details: { newest: newest.name, archivedAt: newest.archivedAt.toISOString(), lagSeconds: lagMs / 1000, thresholdSeconds: env.maxLagMs / 1000 },
      },
      lagSeconds: lagMs / 1000,
    };
  } catch (error) {
    return { item: { name: 'wal archive', status: 'fail', message: `cannot list the WAL archive: ${(error as Error).message}` }, lagSeconds: undefined };
  }
}

/** Prometheus lines for /metrics. */
export async function walMetrics(rt: CliRuntime): Promise<string> {
  const { lagSeconds } = await walLagCheck(rt);
  const env = pitrEnvOf(rt);
  return [
    '# HELP scholaria_backup_wal_archive_lag_seconds Age of the newest archived WAL file; absent when none is archived.',
    '# TYPE scholaria_backup_wal_archive_lag_seconds gauge',
    ...(lagSeconds !== undefined ? [`scholaria_backup_wal_archive_lag_seconds ${lagSeconds}`] : []),
    '# HELP scholaria_backup_wal_archive_lag_threshold_seconds BACKUP_WAL_MAX_LAG: the lag above which health fails.',
    '# TYPE scholaria_backup_wal_archive_lag_threshold_seconds gauge',
    `scholaria_backup_wal_archive_lag_threshold_seconds ${env.maxLagMs / 1000}`,
    '',
  ].join('\n');
}

/** Retention of the archive after a prune: keep what the kept base backups need, nothing older. */
export async function pruneWal(rt: CliRuntime, options: { dryRun: boolean }): Promise<{ remove: string[]; oldestNeeded?: string; failed: { name: string; error: string }[] }> {
  const { walToKeep } = await postgresModule();
  const sets = await rt.engine.list();
  const manifests = sets.filter((s) => s.status !== 'incomplete' && s.manifest).map((s) => s.manifest!) as Manifest[];
  const archive = await walArchiveOf(rt);
  const files = await archive.list();
  const plan = walToKeep(files, basePointsOf(manifests));
  if (options.dryRun || plan.remove.length === 0) return { remove: plan.remove, ...(plan.oldestNeeded ? { oldestNeeded: plan.oldestNeeded } : {}), failed: [] };
  const result = await archive.remove(plan.remove);
  return { remove: result.deleted, ...(plan.oldestNeeded ? { oldestNeeded: plan.oldestNeeded } : {}), failed: result.failed };
}

/** verify's WAL part: holes in each timeline, and whether each base backup can reach the end of the archive. */
export async function verifyWal(rt: CliRuntime): Promise<{ ok: boolean; lines: string[]; json: Record<string, unknown> }> {
  const pg = await postgresModule();
  const archive = await walArchiveOf(rt);
  const files = await archive.list();
  const continuity = pg.checkWalContinuity(files);
  const lines: string[] = [];
  let ok = continuity.ok;
  for (const gap of continuity.gaps) lines.push(`WAL gap on timeline ${gap.timeline}: ${gap.count} segment${gap.count === 1 ? '' : 's'} missing, ${gap.from}${gap.count > 1 ? ` .. ${gap.to}` : ''}`);
  const sets = (await rt.engine.list()).filter((s) => s.status !== 'incomplete' && s.manifest);
  const bases = basePointsOf(sets.map((s) => s.manifest!));
  const perBase: Record<string, unknown>[] = [];
  for (const base of bases) {
    try {
      const plan = await pg.planWal({ base, target: { kind: 'latest' }, files, readHistory: (n) => archive.readText(n) });
      const good = plan.missing.length === 0;
      ok &&= good;
      perBase.push({ setId: base.setId, ok: good, first: plan.first, last: plan.last, missing: plan.missing });
      lines.push(`${good ? 'OK    ' : 'FAILED'} base backup ${base.setId}: WAL ${plan.first} .. ${plan.last} (${plan.segments.length} segments)${good ? ' continuous' : `, missing ${plan.missing.join(', ')}`}`);
    } catch (error) {
      ok = false;
      perBase.push({ setId: base.setId, ok: false, error: (error as Error).message });
      lines.push(`FAILED base backup ${base.setId}: ${(error as Error).message}`);
    }
  }
  lines.unshift(`WAL archive: ${continuity.segments} segments on timeline${continuity.timelines.length === 1 ? '' : 's'} ${continuity.timelines.join(', ') || '-'}, ${continuity.gaps.length} gap${continuity.gaps.length === 1 ? '' : 's'}`);
  return { ok, lines, json: { ok, segments: continuity.segments, timelines: continuity.timelines, gaps: continuity.gaps, baseBackups: perBase } };
}
