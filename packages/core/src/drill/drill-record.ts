import { text } from 'node:stream/consumers';
import type { Storage } from '../interfaces/storage.js';
import { STATE_DIR } from '../engine/set-catalog.js';
import { putBuffer } from '../engine/engine-helpers.js';
import type { DrillResult } from './drill-types.js';
import { DRILL_ID_PATTERN } from './drill-names.js';

/** Drill results live on the storage beside the sets (containers lose local state). */
export const DRILL_DIR = `${STATE_DIR}/drills`;

export function drillRecordKey(drillId: string): string {
  return `${DRILL_DIR}/${drillId}.json`;
}

export async function writeDrillRecord(storage: Storage, result: DrillResult): Promise<void> {
  await putBuffer(storage, drillRecordKey(result.drillId), `${JSON.stringify(result, null, 2)}\n`);
}

/** The drill records on a storage, newest first; unreadable records are skipped. */
export async function readDrillRecords(storage: Storage, options: { limit?: number } = {}): Promise<DrillResult[]> {
  const ids = (await storage.list(`${DRILL_DIR}/`))
    .map((e) => e.key.slice(DRILL_DIR.length + 1))
    .filter((name) => name.endsWith('.json') && DRILL_ID_PATTERN.test(name.slice(0, -5)))
    .map((name) => name.slice(0, -5))
    .sort()
    .reverse();
  const out: DrillResult[] = [];
  for (const id of ids.slice(0, options.limit ?? ids.length)) {
    try {
      const parsed = JSON.parse(await text(await storage.get(drillRecordKey(id)))) as DrillResult;
      if (parsed && parsed.drillId === id) out.push(parsed);
    } catch {
      // A half-written or hand-edited record says nothing reliable; the others still count.
    }
  }
  return out;
}

/** The newest drill and the newest passed drill on a storage. */
export async function readLatestDrills(storage: Storage): Promise<{ latest?: DrillResult; lastPassed?: DrillResult }> {
  const records = await readDrillRecords(storage, { limit: 50 });
  const latest = records[0];
  const lastPassed = records.find((r) => r.status === 'passed');
  return { ...(latest ? { latest } : {}), ...(lastPassed ? { lastPassed } : {}) };
}
