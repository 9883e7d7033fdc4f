import type { Storage } from '../interfaces/storage.js';
import type { HealthCheckItem } from '../engine/types.js';
import { readLatestDrills } from './drill-record.js';

const HOUR = 3_600_000;
function ageText(ms: number): string {
  return ms < 2 * 24 * HOUR ? `${(ms / HOUR).toFixed(1)} h` : `${(ms / (24 * HOUR)).toFixed(1)} days`;
}

/**
 * The restore drill item of the health report: warns when the newest passed drill is older than
 * `maxAgeMs` (twice the drill schedule) or when the newest drill failed. `pending`: no drill slot
 * has come since the service first started, so no drill yet is fine (a fresh install is not an alert).
 */
export async function drillHealthItem(storage: Storage, now: Date, maxAgeMs: number, pending = false): Promise<HealthCheckItem> {
  const { latest, lastPassed } = await readLatestDrills(storage);
  if (!latest && pending) {
    return { name: 'restore drill', status: 'ok', message: 'pending: no drill slot has come since the service first started (run `scholaria-backup drill` to drill now)' };
  }
  if (!latest) {
    return { name: 'restore drill', status: 'warn', message: 'no restore drill has run yet: run `scholaria-backup drill` (the scheduler runs one per BACKUP_DRILL_SCHEDULE)' };
  }
  if (latest.status === 'failed') {
    return {
      name: 'restore drill',
      status: 'warn',
      message: `the last drill (${latest.drillId}, set ${latest.setId}) failed: ${latest.error?.message ?? 'see its checks'}`,
      details: { drillId: latest.drillId, setId: latest.setId },
    };
  }
  const age = now.getTime() - new Date((lastPassed ?? latest).finishedAt).getTime();
  const old = age > maxAgeMs;
  return {
    name: 'restore drill',
    status: old ? 'warn' : 'ok',
    message: `last passed ${ageText(age)} ago (${latest.drillId}, set ${latest.setId}, RTO ${(latest.rto.totalMs / 1000).toFixed(1)} s)${old ? ` — older than ${ageText(maxAgeMs)} (twice the drill schedule): is the scheduler running drills?` : ''}`,
    details: { drillId: latest.drillId, ageMs: age, rtoMs: latest.rto.totalMs },
  };
}
