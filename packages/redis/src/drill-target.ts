import { Redis } from 'ioredis';
import { BackupError, ConfigError, type DrillCheck, type DrillSweepContext, type DrillTarget, type DrillTargetContext } from '@scholaria/backup-core';
import { describeTarget, openClient } from './redis-connection.js';
import { parseSourceOptions, type RedisSourceOptions } from './redis-options.js';

export interface RedisDrillOptions {
  /**
   * Database indexes on the live server kept for drills; the dump's databases are restored into
   * them in order (dump db 0 -> first, ...). Default [15]. They must not be databases the set
   * holds: those are live data.
   */
  databases?: number[];
  /** A separate Redis for drills instead (its databases get the dump's own indexes and are flushed after). */
  url?: string;
  /** Celery queues (Redis lists) whose messages must be valid JSON. Default ['celery']. */
  queues?: string[];
}

const SAMPLE = 1000;

function dumpDatabases(ctx: DrillTargetContext): number[] {
  const counts = (ctx.component.metadata as { keyCounts?: Record<string, number>; databases?: unknown }).keyCounts;
  // Databases scanned but empty are in keyCounts with 0: they hold nothing to restore.
  if (counts && typeof counts === 'object') return Object.entries(counts).filter(([, n]) => n > 0).map(([d]) => Number(d)).sort((a, b) => a - b);
  const dbs = (ctx.component.metadata as { databases?: unknown }).databases;
  return Array.isArray(dbs) ? dbs.map(Number).sort((a, b) => a - b) : [0];
}

/**
 * Restore drills for the Redis source: the dump is restored through the source's own
 * targetUrl/dbMap restore into drill databases (or a drill Redis), its keys are counted per
 * database, Celery queues are checked to hold JSON messages, and the drill databases are
 * flushed afterwards. Takes the same connection options as `createRedisSource`.
 */
export function createRedisDrillTarget(sourceOptions: RedisSourceOptions, drillOptions: RedisDrillOptions = {}): DrillTarget {
  const resolved = parseSourceOptions(sourceOptions);
  const component = resolved.name;
  const drillDbs = drillOptions.databases ?? [15];
  const queues = drillOptions.queues ?? ['celery'];
  const problems: string[] = [];
  if (drillOptions.url && !/^rediss?:\/\//i.test(drillOptions.url)) problems.push('url: must start with redis:// or rediss://');
  if (drillOptions.url && drillOptions.databases) problems.push('set either url (a drill Redis) or databases (drill databases on the live server), not both');
  if (drillDbs.some((d) => !Number.isInteger(d) || d < 0) || new Set(drillDbs).size !== drillDbs.length || drillDbs.length === 0) {
    problems.push('databases: distinct database numbers (0 or more), at least one');
  }
  if (resolved.databases?.some((d) => drillDbs.includes(d)) && !drillOptions.url) {
    problems.push(`databases: ${drillDbs.join(', ')} overlap the databases the source backs up (${resolved.databases.join(', ')}); drill databases must hold no live data`);
  }
  if (drillOptions.url && describeTarget({ ...resolved, url: drillOptions.url, client: undefined, host: undefined, path: undefined, sentinels: undefined }) === describeTarget(resolved)) {
    problems.push('url: is the live Redis; give a separate drill Redis, or use databases on the live one');
  }
  if (problems.length) throw new ConfigError('createRedisDrillTarget: invalid options', problems, { component });

  /** Dump database -> where the drill puts it. */
  function mapping(ctx: DrillTargetContext): Map<number, number> {
    const dbs = dumpDatabases(ctx);
    if (drillOptions.url) return new Map(dbs.map((d) => [d, d]));
    const live = dbs.filter((d) => drillDbs.includes(d));
    if (live.length) {
      throw new BackupError('USAGE', `${component}: drill database(s) ${live.join(', ')} hold live data in set ${ctx.setId}; a drill never writes there`, {
        component,
        hint: 'Choose drill databases the application does not use (BACKUP_DRILL_REDIS_DB).',
      });
    }
    if (dbs.length > drillDbs.length) {
      throw new BackupError('USAGE', `${component}: set ${ctx.setId} holds ${dbs.length} databases (${dbs.join(', ')}) but ${drillDbs.length} drill database(s) are configured`, {
        component,
        hint: `Give as many drill databases as the dump has (BACKUP_DRILL_REDIS_DB=${drillDbs[0]},...), or a separate drill Redis (BACKUP_DRILL_REDIS_URL).`,
      });
    }
    return new Map(dbs.map((d, i) => [d, drillDbs[i]!]));
  }

  async function withClient<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
    if (drillOptions.url) {
      const client = new Redis(drillOptions.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableReadyCheck: false });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return await fn(client);
      } finally {
        client.disconnect();
      }
    }
    const opened = await openClient(resolved);
    try {
      return await fn(opened.client);
    } finally {
      await opened.close();
    }
  }

  const where = (db: number) => `redis ${drillOptions.url ? 'drill server ' : ''}db ${db}`;

  async function flush(dbs: number[]): Promise<string[]> {
    return await withClient(async (c) => {
      const removed: string[] = [];
      for (const db of dbs) {
        await c.select(db);
        const n = await c.dbsize();
        if (n > 0) {
          await c.flushdb();
          removed.push(`${where(db)} (${n} keys)`);
        }
      }
      return removed;
    });
  }

  async function countCheck(ctx: DrillTargetContext, c: Redis): Promise<DrillCheck> {
    const counts = (ctx.component.metadata as { keyCounts?: Record<string, number> }).keyCounts ?? {};
    const mismatches: string[] = [];
    let expected = 0;
    let restored = 0;
    for (const [from, to] of mapping(ctx)) {
      await c.select(to);
      const n = await c.dbsize();
      const want = counts[String(from)] ?? 0;
      expected += want;
      restored += n;
      if (n !== want && mismatches.length < ctx.maxMismatches) mismatches.push(`db ${from} (restored into ${where(to)}): ${n} keys, the manifest has ${want}`);
    }
    return {
      name: 'counts',
      component,
      status: mismatches.length ? 'fail' : 'pass',
      message: mismatches.length ? `key counts differ from the manifest (${restored} restored, ${expected} recorded)` : `${restored} keys in ${mapping(ctx).size} database(s): every count matches the manifest`,
      figures: { expectedKeys: expected, restoredKeys: restored },
      ...(mismatches.length ? { mismatches } : {}),
    };
  }

  async function celeryCheck(ctx: DrillTargetContext, c: Redis): Promise<DrillCheck> {
    const mismatches: string[] = [];
    let lists = 0;
    let messages = 0;
    let invalid = 0;
    for (const [from, to] of mapping(ctx)) {
      await c.select(to);
      for (const queue of queues) {
        const type = await c.type(queue);
        if (type === 'none') continue;
        if (type !== 'list') {
          invalid++;
          if (mismatches.length < ctx.maxMismatches) mismatches.push(`db ${from}: queue "${queue}" is a ${type}, not a list`);
          continue;
        }
        lists++;
        const len = await c.llen(queue);
        for (let start = 0; start < len; start += SAMPLE) {
          ctx.signal.throwIfAborted();
          const items = await c.lrangeBuffer(queue, start, start + SAMPLE - 1);
          items.forEach((item, i) => {
            messages++;
            try {
              JSON.parse(item.toString('utf8'));
            } catch (error) {
              invalid++;
              if (mismatches.length < ctx.maxMismatches) mismatches.push(`db ${from}: "${queue}"[${start + i}] is not valid JSON (${(error as Error).message})`);
            }
          });
        }
      }
    }
    return {
      name: 'celery-queues',
      component,
      status: invalid ? 'fail' : 'pass',
      message: invalid
        ? `${invalid} invalid entr${invalid === 1 ? 'y' : 'ies'} in the Celery queues ${queues.join(', ')}`
        : lists === 0
          ? `no Celery queue (${queues.join(', ')}) in the set (an empty queue is not stored by Redis)`
          : `${lists} queue(s), ${messages} messages: all valid JSON`,
      figures: { queues: lists, messages, invalid },
      ...(invalid ? { mismatches } : {}),
    };
  }

  return {
    specVersion: 'v1',
    component,
    describe: (ctx) => [...mapping(ctx).values()].map(where).join(', '),
    async prepare(ctx) {
      const map = mapping(ctx);
      const busy = await withClient(async (c) => {
        const out: string[] = [];
        for (const to of map.values()) {
          await c.select(to);
          const n = await c.dbsize();
          if (n > 0) out.push(`${where(to)} holds ${n} keys`);
        }
        return out;
      });
      if (busy.length) {
        throw new BackupError('RESTORE_FAILED', `${component}: the drill target is not empty (${busy.join('; ')}) after the sweep`, { component, hint: 'Empty the drill databases by hand, or choose other ones.' });
      }
      // allOrNothing off: no scratch database on the live server; the drill target is throwaway.
      const base = { mode: 'flush', allOrNothing: false } as Record<string, unknown>;
      if (drillOptions.url) return { ...base, targetUrl: drillOptions.url };
      return { ...base, dbMap: Object.fromEntries([...map].map(([from, to]) => [String(from), to])) };
    },
    async check(ctx) {
      return await withClient(async (c) => [await countCheck(ctx, c), await celeryCheck(ctx, c)]);
    },
    async cleanup(ctx) {
      return await flush([...mapping(ctx).values()]);
    },
    async sweep(ctx: DrillSweepContext) {
      // Refuses drill databases that hold live data of the set before anything is flushed.
      if (ctx.component) mapping({ component: ctx.component, setId: '(the set to drill)' } as DrillTargetContext);
      if (!drillOptions.url) return await flush(drillDbs);
      // A drill Redis is the drill's alone: every database with keys is a leftover.
      const used = await withClient(async (c) => [...(await c.info('keyspace')).matchAll(/^db(\d+):keys=/gm)].map((m) => Number(m[1])));
      return await flush(used);
    },
  };
}
