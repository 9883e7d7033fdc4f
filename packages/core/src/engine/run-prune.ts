import { parseDurationMs } from '../retention/duration.js';
import { planTierRetention } from '../retention/tier-retention.js';
import type { PruneDecision, PruneResult } from './types.js';
import type { EngineContext } from './engine-context.js';
import { readCatalog } from './set-catalog.js';
import { lockStorages } from './lock-storages.js';
import { audit, deleteSet, errorReport, safeError } from './engine-helpers.js';

export async function runPrune(ctx: EngineContext, options: { dryRun?: boolean } = {}): Promise<PruneResult> {
  const dryRun = options.dryRun ?? false;
  const retention = ctx.options.retention;
  const graceMs = parseDurationMs(retention?.incompleteGracePeriod ?? '1h');
  const held = dryRun ? undefined : await lockStorages(ctx, 'prune', ctx.storages);
  const storages = held?.live ?? ctx.storages;
  const result: PruneResult = { dryRun, keep: [], remove: [], failed: [], staleTempFiles: [], warnings: [] };
  try {
    const now = ctx.clock();
    for (const storage of storages) {
      const catalog = await readCatalog(ctx, storage);
      const withManifest = catalog.filter((e) => e.manifest);
      for (const e of withManifest) {
        if (e.time.getTime() > now.getTime() + 5 * 60_000) {
          const message = `set ${e.id} on ${storage.name} is dated in the future (${e.startedAt ?? e.time.toISOString()}, now ${now.toISOString()}): a host with a wrong clock, or a planted manifest; the newest set not in the future is kept as well`;
          ctx.logger.warn(message, { setId: e.id, storage: storage.name });
          result.warnings.push(message);
        }
      }
      const decisions = new Map<string, PruneDecision & { remove: boolean }>();
      if (!retention || Object.keys(retention.tiers).length === 0) {
        for (const e of withManifest) {
          decisions.set(e.id, { id: e.id, storage: storage.name, tier: e.tier, status: e.status, reasons: ['no retention policy configured'], remove: false });
        }
      } else {
        const plan = planTierRetention(
          withManifest.map((e) => ({ id: e.id, time: e.time, tier: e.tier, status: e.status as 'complete' | 'partial' })),
          retention,
          { now },
        );
        for (const k of plan.keep) {
          const e = withManifest.find((x) => x.id === k.id)!;
          decisions.set(k.id, { id: k.id, storage: storage.name, tier: e.tier, status: e.status, reasons: k.reasons, remove: false });
        }
        for (const r of plan.remove) {
          const e = withManifest.find((x) => x.id === r.id)!;
          const reasons = (r as { reasons?: string[] }).reasons ?? [];
          decisions.set(r.id, {
            id: r.id,
            storage: storage.name,
            tier: e.tier,
            status: e.status,
            reasons: reasons.length > 0 ? reasons : [`not kept by the ${e.tier} retention policy`],
            remove: true,
          });
        }
      }
      for (const e of catalog.filter((x) => !x.manifest)) {
        const newest = e.files.reduce((t, f) => Math.max(t, f.modifiedAt.getTime()), 0);
        const age = now.getTime() - newest;
        if (e.problem) {
          decisions.set(e.id, { id: e.id, storage: storage.name, status: 'incomplete', reasons: [`damaged (manifest unreadable or an artifact not listed), kept for inspection: ${e.problem}`], remove: false });
        } else if (age >= graceMs) {
          decisions.set(e.id, { id: e.id, storage: storage.name, status: 'incomplete', reasons: ['incomplete: no manifest.json (a failed or killed backup), older than the grace period'], remove: true });
        } else {
          decisions.set(e.id, { id: e.id, storage: storage.name, status: 'incomplete', reasons: ['incomplete but younger than the grace period (a backup may still be writing it)'], remove: false });
        }
      }
      for (const e of catalog) {
        const d = decisions.get(e.id);
        if (!d) continue;
        const { remove, ...decision } = d;
        if (!remove) {
          result.keep.push(decision);
          continue;
        }
        result.remove.push(decision);
        if (!dryRun) {
          const failed = await deleteSet(storage, e.id, e.files.map((f) => f.key));
          result.failed.push(...failed.map((f) => ({ key: f.key, error: ctx.redact(f.error) })));
        }
      }
      const localFiles = storage.capabilities?.localFiles;
      if (localFiles) {
        const stale = await localFiles.removeStaleTempFiles({ olderThanMs: graceMs, dryRun });
        result.staleTempFiles.push(...stale.map((key) => ({ storage: storage.name, key })));
      }
    }
    ctx.logger.info(
      `prune ${dryRun ? '(dry run) ' : ''}keeps ${result.keep.length} and removes ${result.remove.length} sets` +
        (result.staleTempFiles.length ? ` and ${result.staleTempFiles.length} stale temp files` : ''),
      { keep: result.keep.length, remove: result.remove.length, failed: result.failed.length, staleTempFiles: result.staleTempFiles.length },
    );
    if (!dryRun) {
      await audit(ctx, storages, {
        action: 'prune',
        result: result.failed.length === 0 ? 'ok' : 'failed',
        ...(result.failed.length ? { error: `${result.failed.length} objects could not be deleted` } : {}),
        details: {
          removed: result.remove.map((r) => r.id),
          kept: result.keep.length,
          ...(result.staleTempFiles.length ? { staleTempFiles: result.staleTempFiles.map((f) => `${f.storage}:${f.key}`) } : {}),
        },
      });
      await ctx.notify({
        type: result.failed.length === 0 ? 'prune.succeeded' : 'prune.failed',
        outcome: result.failed.length === 0 ? 'success' : 'failure',
        details: [
          ...result.warnings,
          ...result.remove.map((r) => `removed ${r.id} on ${r.storage}: ${r.reasons.join('; ')}`),
          ...result.staleTempFiles.map((f) => `removed stale temp file ${f.key} on ${f.storage} (left by a killed writer)`),
          ...result.failed.map((f) => `could not delete ${f.key}: ${f.error}`),
        ],
      });
    }
    return result;
  } catch (raw) {
    const error = safeError(ctx, raw, 'INTERNAL', 'prune');
    if (!dryRun) {
      await audit(ctx, storages, { action: 'prune', result: 'failed', error: error.message });
      await ctx.notify({ type: 'prune.failed', outcome: 'failure', error: errorReport(error)! });
    }
    throw error;
  } finally {
    await Promise.all((held?.locks ?? []).map((l) => l.release()));
  }
}
