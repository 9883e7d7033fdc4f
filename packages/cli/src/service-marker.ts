import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { BackupError, type BackupSetSummary, type Storage } from '@scholaria/backup-core';

/**
 * `scheduler run` leaves `.scholaria-backup/scheduler/service.json` on the first storage when
 * it first starts. A scheduled slot before that time is "pending", not "missed": a fresh
 * install is not an outage, and alerting on exit codes must not fire on day one.
 */
export const SERVICE_MARKER_KEY = '.scholaria-backup/scheduler/service.json';

interface ServiceMarker {
  firstStartedAt: string;
}

const SCHEDULED_TIERS = new Set(['daily', 'weekly', 'monthly']);

async function readMarker(storage: Storage): Promise<ServiceMarker | undefined> {
  try {
    const body = JSON.parse(await text(await storage.get(SERVICE_MARKER_KEY))) as Partial<ServiceMarker>;
    if (typeof body.firstStartedAt === 'string' && !Number.isNaN(Date.parse(body.firstStartedAt))) return { firstStartedAt: body.firstStartedAt };
    return undefined;
  } catch (error) {
    if (BackupError.isInstance(error) && error.code === 'NOT_FOUND') return undefined;
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/**
 * When the backup service first started: the marker, else (a deployment older than the
 * marker) the oldest scheduled-tier set, else `null` (the service has never run).
 */
export async function serviceSince(storage: Storage, sets: BackupSetSummary[]): Promise<Date | null> {
  const marker = await readMarker(storage);
  if (marker) return new Date(marker.firstStartedAt);
  const scheduled = sets.filter((s) => s.tier !== undefined && SCHEDULED_TIERS.has(s.tier));
  if (scheduled.length === 0) return null;
  return new Date(Math.min(...scheduled.map((s) => s.time.getTime())));
}

/** Writes the marker unless one exists; returns the service's first start. */
export async function markServiceStarted(storage: Storage, now: Date, sets: BackupSetSummary[]): Promise<Date> {
  const existing = await readMarker(storage);
  if (existing) return new Date(existing.firstStartedAt);
  const since = (await serviceSince(storage, sets)) ?? now;
  const body = Buffer.from(`${JSON.stringify({ firstStartedAt: since.toISOString() }, null, 2)}\n`);
  await storage.put(SERVICE_MARKER_KEY, Readable.from([body]), { size: body.length });
  return since;
}
