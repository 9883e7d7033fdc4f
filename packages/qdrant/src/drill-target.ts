import {
  BackupError,
  DRILL_SUFFIX_PATTERN,
  drillIdOf,
  drillName,
  type DrillCheck,
  type DrillSweepContext,
  type DrillTarget,
  type DrillTargetContext,
  type JoinSide,
} from '@scholaria/backup-core';
import { parseQdrantOptions, type QdrantSourceOptions } from './qdrant-options.js';

interface RecordedLite {
  name: string;
  pointsCount: number | null;
  pointsCountRange?: [number, number];
}

const PAGE = 1000;

function recordedCollections(ctx: DrillTargetContext, component: string): RecordedLite[] {
  const list = (ctx.component.metadata as { collections?: unknown }).collections;
  if (!Array.isArray(list)) {
    throw new BackupError('MANIFEST_INVALID', `${component}: the manifest's qdrant metadata lists no collections`, { component });
  }
  return list as RecordedLite[];
}

/**
 * Restore drills for the Qdrant source: each collection of the set is restored with the source's
 * own `collectionSuffix` under `<name>_drill_<id>` on the same server (aliases untouched), its points
 * are counted and listed for the cross-store join, and the copies are deleted.
 * Takes the same options as `createQdrantSource`.
 */
export function createQdrantDrillTarget(sourceOptions: QdrantSourceOptions): DrillTarget {
  const opts = parseQdrantOptions(sourceOptions);
  const component = opts.name;
  const base = opts.url.replace(/\/+$/, '');
  const secrets = opts.apiKey ? [opts.apiKey] : [];

  async function call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(opts.apiKey ? { 'api-key': opts.apiKey } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal ?? AbortSignal.timeout(opts.timeoutMs),
      });
    } catch (error) {
      throw new BackupError('CONNECTION_FAILED', `${component}: ${method} ${path} failed: ${(error as Error).message}`, { component, hint: 'Check that Qdrant is reachable at the configured url.' });
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = text.slice(0, 300);
      for (const s of secrets) msg = msg.split(s).join('[REDACTED]');
      throw new BackupError(res.status === 404 ? 'NOT_FOUND' : 'VERIFY_FAILED', `${component}: ${method} ${path} answered ${res.status}: ${msg}`, { component });
    }
    return (JSON.parse(text) as { result: T }).result;
  }

  async function listCollections(signal?: AbortSignal): Promise<string[]> {
    return (await call<{ collections: { name: string }[] }>('GET', '/collections', undefined, signal)).collections.map((c) => c.name);
  }

  async function remove(names: string[]): Promise<string[]> {
    const removed: string[] = [];
    for (const name of names) {
      if (!DRILL_SUFFIX_PATTERN.test(name)) throw new BackupError('INTERNAL', `${component}: refusing to delete "${name}": not a drill collection`);
      try {
        await call('DELETE', `/collections/${encodeURIComponent(name)}`);
        removed.push(`qdrant collection "${name}"`);
      } catch (error) {
        if (!(BackupError.isInstance(error) && error.code === 'NOT_FOUND')) throw error;
      }
    }
    return removed;
  }

  async function countCheck(ctx: DrillTargetContext): Promise<DrillCheck> {
    const mismatches: string[] = [];
    let expected = 0;
    let restored = 0;
    let bad = 0;
    const recorded = recordedCollections(ctx, component);
    for (const c of recorded) {
      const target = drillName(c.name, ctx.drillId);
      const n = (await call<{ count: number }>('POST', `/collections/${encodeURIComponent(target)}/points/count`, { exact: true }, ctx.signal)).count;
      restored += n;
      const [lo, hi] = c.pointsCountRange ? [Math.min(...c.pointsCountRange), Math.max(...c.pointsCountRange)] : [c.pointsCount, c.pointsCount];
      expected += c.pointsCount ?? 0;
      if (lo !== null && hi !== null && (n < lo || n > hi)) {
        bad++;
        if (mismatches.length < ctx.maxMismatches) mismatches.push(`${c.name}: ${n} points restored, the manifest has ${lo === hi ? lo : `${lo}..${hi}`}`);
      }
    }
    return {
      name: 'counts',
      component,
      status: bad ? 'fail' : 'pass',
      message: bad
        ? `${bad} of ${recorded.length} collections differ from the manifest (${restored} points restored, ${expected} recorded)`
        : `${recorded.length} collections, ${restored} points: every count matches the manifest`,
      figures: { collections: recorded.length, mismatchedCollections: bad, expectedPoints: expected, restoredPoints: restored },
      ...(bad ? { mismatches } : {}),
    };
  }

  return {
    specVersion: 'v1',
    component,
    describe: (ctx) => {
      const names = (ctx.component.metadata as { collections?: { name: string }[] }).collections?.map((c) => `"${drillName(c.name, ctx.drillId)}"`) ?? [];
      return `qdrant collection${names.length === 1 ? '' : 's'} ${names.join(', ')}`;
    },
    async prepare(ctx) {
      const recorded = recordedCollections(ctx, component);
      const existing = new Set(await listCollections(ctx.signal));
      for (const c of recorded) {
        const target = drillName(c.name, ctx.drillId);
        if (existing.has(target)) throw new BackupError('RESTORE_FAILED', `${component}: collection "${target}" already exists; a drill never overwrites a collection`, { component });
      }
      // The source's own suffix restore (<name>_drill_<id>); aliases: false keeps the live
      // aliases on the live collections, and an alias named like a target is refused.
      return { collectionSuffix: drillName('', ctx.drillId), aliases: false, aliasTargets: 'refuse' };
    },
    async check(ctx) {
      return [await countCheck(ctx)];
    },
    async *joinKeys(ctx: DrillTargetContext, side: JoinSide) {
      if (!side.collection) throw new BackupError('USAGE', `${component}: the join needs a collection on the qdrant side`);
      const target = drillName(side.collection, ctx.drillId);
      let offset: unknown = null;
      for (;;) {
        const page = await call<{ points: { id: string | number; payload?: Record<string, unknown> }[]; next_page_offset?: unknown }>(
          'POST',
          `/collections/${encodeURIComponent(target)}/points/scroll`,
          { limit: PAGE, with_payload: side.payloadField ? [side.payloadField] : false, with_vector: false, ...(offset !== null ? { offset } : {}) },
          ctx.signal,
        );
        for (const p of page.points) {
          if (!side.payloadField) yield String(p.id);
          else {
            const v = p.payload?.[side.payloadField];
            // A point without the field is an orphan under its own id.
            yield v === undefined || v === null ? `(point ${String(p.id)} without ${side.payloadField})` : String(v);
          }
        }
        offset = page.next_page_offset ?? null;
        if (offset === null || page.points.length === 0) break;
      }
    },
    async cleanup(ctx) {
      const recorded = (ctx.component.metadata as { collections?: { name: string }[] }).collections ?? [];
      const existing = new Set(await listCollections());
      return await remove(recorded.map((c) => drillName(c.name, ctx.drillId)).filter((n) => existing.has(n)));
    },
    async sweep(ctx: DrillSweepContext) {
      const names = (await listCollections(ctx.signal)).filter((n) => DRILL_SUFFIX_PATTERN.test(n) && drillIdOf(n) !== ctx.except);
      return await remove(names);
    },
  };
}
