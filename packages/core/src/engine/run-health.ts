import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import type { HealthCheckItem, HealthReport, HealthStatus } from './types.js';
import type { EngineContext } from './engine-context.js';
import { readCatalog, STATE_DIR, type CatalogEntry } from './set-catalog.js';
import { putBuffer } from './engine-helpers.js';
import { ENGINE_DEFAULTS } from './defaults.js';
import { listLocks, lockIsStale } from '../lock/storage-lock.js';
import { drillHealthItem } from '../drill/drill-health.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** How old the newest set of a tier may be before health-check fails: one period plus slack. */
export const DEFAULT_MAX_AGE_MS: Record<string, number> = { daily: DAY + 2 * HOUR, weekly: 7 * DAY + 2 * HOUR, monthly: 31 * DAY + 2 * HOUR };

const rank: Record<HealthStatus, number> = { ok: 0, warn: 1, fail: 2 };
export const worstStatus = (items: { status: HealthStatus }[]): HealthStatus =>
  items.reduce<HealthStatus>((w, i) => (rank[i.status] > rank[w] ? i.status : w), 'ok');

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

function ageText(ms: number): string {
  if (ms < HOUR) return `${Math.round(ms / 60_000)} min`;
  if (ms < 2 * DAY) return `${(ms / HOUR).toFixed(1)} h`;
  return `${(ms / DAY).toFixed(1)} days`;
}

export async function runHealth(ctx: EngineContext, options: { signal?: AbortSignal; pendingTiers?: readonly string[] } = {}): Promise<HealthReport> {
  const checks: HealthCheckItem[] = [];
  const now = ctx.clock();
  const minFree = ctx.options.minFreeBytes ?? ENGINE_DEFAULTS.minFreeBytes;
  let catalog: CatalogEntry[] | undefined;

  for (const storage of ctx.storages) {
    const probe = `${STATE_DIR}/health/probe-${randomBytes(6).toString('hex')}`;
    try {
      const payload = `health ${now.toISOString()}`;
      await putBuffer(storage, probe, payload, options.signal);
      const back = await text(await storage.get(probe));
      await storage.delete(probe);
      if (back !== payload) throw new Error('read back different bytes than written');
      checks.push({ name: `storage ${storage.name}`, status: 'ok', message: 'reachable and writable' });
    } catch (error) {
      checks.push({
        name: `storage ${storage.name}`,
        status: 'fail',
        message: `not writable: ${ctx.redact((error as Error).message)} — check that it exists, is mounted and its permissions allow this user`,
      });
      continue;
    }
    const capacity = storage.capabilities?.capacity;
    if (capacity) {
      try {
        const { free, total } = await capacity();
        const status: HealthStatus = free < minFree ? (free < minFree / 4 ? 'fail' : 'warn') : 'ok';
        checks.push({
          name: `disk space ${storage.name}`,
          status,
          message: `${human(free)} free of ${human(total)}${status === 'ok' ? '' : ` (below the ${human(minFree)} threshold: free space or move old sets off this disk)`}`,
          details: { free, total, minFree },
        });
      } catch (error) {
        checks.push({ name: `disk space ${storage.name}`, status: 'warn', message: `unknown: ${ctx.redact((error as Error).message)}` });
      }
    }
    try {
      const stale = (await listLocks(storage)).filter((l) => lockIsStale(l, new Date()).stale);
      if (stale.length > 0) {
        checks.push({ name: `locks ${storage.name}`, status: 'warn', message: `${stale.length} stale lock(s) from killed runs; the next run takes them over` });
      }
    } catch {
      // reported by the reachability check above
    }
    if (!catalog) {
      try {
        catalog = await readCatalog(ctx, storage);
      } catch (error) {
        checks.push({ name: `sets ${storage.name}`, status: 'fail', message: `cannot list sets: ${ctx.redact((error as Error).message)}` });
      }
    }
  }

  if (catalog) {
    const tiers = ctx.options.retention ? Object.keys(ctx.options.retention.tiers) : ['daily', 'weekly', 'monthly'];
    const maxAge = { ...DEFAULT_MAX_AGE_MS, ...(ctx.options.maxAgeMs ?? {}) };
    for (const tier of tiers) {
      const newest = catalog.find((e) => e.tier === tier && e.status === 'complete');
      const limit = maxAge[tier];
      if (!newest) {
        const pending = options.pendingTiers?.includes(tier) ?? false;
        checks.push({
          name: `recent ${tier} backup`,
          status: pending ? 'ok' : 'warn',
          message: pending ? `no ${tier} backup yet: its first scheduled run has not come` : `no complete ${tier} backup yet`,
        });
        continue;
      }
      const age = now.getTime() - newest.time.getTime();
      const status: HealthStatus = limit !== undefined && age > limit ? 'fail' : 'ok';
      checks.push({
        name: `recent ${tier} backup`,
        status,
        message: `${newest.id}, ${ageText(age)} old${status === 'fail' ? ` (older than ${ageText(limit!)}: is the scheduler running? check its log)` : ''}`,
        details: { setId: newest.id, ageMs: age },
      });
    }
    const incomplete = catalog.filter((e) => e.status === 'incomplete');
    if (incomplete.length > 0) {
      checks.push({
        name: 'incomplete sets',
        status: 'warn',
        message: `${incomplete.length} set(s) without a valid manifest (${incomplete.slice(0, 3).map((e) => e.id).join(', ')}${incomplete.length > 3 ? ', ...' : ''}); prune removes leftovers of failed runs`,
      });
    }
  }

  if (ctx.options.drillMaxAgeMs !== undefined && ctx.storages[0]) {
    try {
      checks.push(await drillHealthItem(ctx.storages[0], now, ctx.options.drillMaxAgeMs, options.pendingTiers?.includes('drill') ?? false));
    } catch (error) {
      checks.push({ name: 'restore drill', status: 'warn', message: `cannot read the drill records: ${ctx.redact((error as Error).message)}` });
    }
  }

  for (const source of ctx.sources) {
    try {
      const res = await source.check(options.signal ? { signal: options.signal } : {});
      const problems = (res.problems ?? []).map(ctx.redact);
      const warnings = (res.warnings ?? []).map(ctx.redact);
      checks.push({
        name: `source ${source.name}`,
        status: !res.ok || problems.length > 0 ? 'fail' : warnings.length > 0 ? 'warn' : 'ok',
        message:
          problems.length > 0
            ? problems.join('; ')
            : warnings.length > 0
              ? warnings.join('; ')
              : `reachable, tools runnable${(res.notes ?? []).map((n) => `; note: ${ctx.redact(n)}`).join('')}`,
        ...(res.details ? { details: JSON.parse(ctx.redact(JSON.stringify(res.details))) as Record<string, unknown> } : {}),
      });
    } catch (error) {
      checks.push({ name: `source ${source.name}`, status: 'fail', message: ctx.redact((error as Error).message) });
    }
  }

  const report: HealthReport = { status: worstStatus(checks), checks };
  if (report.status === 'fail') {
    await ctx.notify({
      type: 'health.failed',
      outcome: 'failure',
      details: checks.filter((c) => c.status !== 'ok').map((c) => `${c.status.toUpperCase()} ${c.name}: ${c.message}`),
      error: { code: 'HEALTH_FAILED', message: checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.message}`).join('; ') },
    });
  }
  return report;
}
