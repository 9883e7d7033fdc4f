import type { Redis } from 'ioredis';
import type { ServerFacts } from './server-info.js';
import { parseInfo } from './server-info.js';
import { redisError } from './redis-errors.js';

/**
 * All-or-nothing restore: the keys go into an empty scratch database first, and reach the live
 * database only once every RESTORE was accepted (flush mode: one MULTI of SWAPDBs; merge mode:
 * the staged keys are moved over). A failure while staging empties the scratch database and the
 * live data is untouched.
 */

/** Maps each selected dump database to its target database (targetDb / dbMap), or throws. */
export function planDestinations(selected: number[], opts: { targetDb?: number | undefined; dbMap?: Record<string, number> | undefined }): Map<number, number> {
  const out = new Map<number, number>();
  if (opts.targetDb !== undefined) {
    if (selected.length !== 1) {
      throw redisError('RESTORE_FAILED', `targetDb ${opts.targetDb} needs exactly one database from the dump, but it holds database(s) ${selected.join(', ') || 'none'}; nothing was changed`, 'Pick one with the databases option (e.g. { databases: [0], targetDb: 5 }), or map each with dbMap ({ "0": 5, "1": 6 }).');
    }
    out.set(selected[0]!, opts.targetDb);
    return out;
  }
  // dbMap restores only the databases it names, each into its mapped index.
  for (const db of selected) {
    if (!opts.dbMap) out.set(db, db);
    else if (opts.dbMap[String(db)] !== undefined) out.set(db, opts.dbMap[String(db)]!);
  }
  if (opts.dbMap && out.size === 0) {
    throw redisError('RESTORE_FAILED', `dbMap names database(s) ${Object.keys(opts.dbMap).join(', ')}, but the dump holds ${selected.join(', ') || 'none'}; nothing was changed`, 'Name databases of the dump in dbMap (see the dry run).');
  }
  const targets = [...out.values()];
  const clash = targets.find((t, i) => targets.indexOf(t) !== i);
  if (clash !== undefined) {
    throw redisError('RESTORE_FAILED', `two databases of the dump would be restored into database ${clash}; nothing was changed`, 'Map each dump database to its own target database in dbMap, or restore only some with the databases option.');
  }
  return out;
}

export interface MemoryFacts {
  usedMemory: number;
  maxMemory: number;
  policy: string;
}

export async function memoryFacts(client: Redis): Promise<MemoryFacts> {
  const info = parseInfo(await client.info('memory'));
  return { usedMemory: Number(info.used_memory ?? 0), maxMemory: Number(info.maxmemory ?? 0), policy: info.maxmemory_policy ?? 'unknown' };
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/**
 * Refuses a restore that cannot fit: staged keys sit beside the live data until the swap, so
 * `used_memory + payload bytes` must stay under `maxmemory`. The DUMP payload size is a lower
 * bound of what the keys take once restored, so a refusal here is certain to be right.
 */
export function checkMemory(mem: MemoryFacts, payloadBytes: number, staged: boolean, target: string): void {
  if (mem.maxMemory <= 0) return;
  const need = staged ? mem.usedMemory + payloadBytes : payloadBytes;
  if (need > mem.maxMemory) {
    throw redisError(
      'RESTORE_FAILED',
      `${target} has maxmemory ${mib(mem.maxMemory)} and uses ${mib(mem.usedMemory)}; the dump's values alone take ${mib(payloadBytes)}${staged ? ' and are staged beside the live data until they are swapped in' : ''}, so the restore would run out of memory; nothing was changed`,
      'Raise maxmemory on the target (CONFIG SET maxmemory), free memory, or restore into another Redis with the targetUrl restore option.',
    );
  }
}

/** Picks one empty scratch database per destination, from `wanted` or from the highest indexes down. */
export function chooseScratch(destinations: number[], exclude: number[], facts: ServerFacts, maxDatabases: number | undefined, wanted: number[] | undefined, target: string): number[] {
  const used = (db: number) => (facts.keyspace.get(db)?.keys ?? 0) > 0;
  if (wanted) {
    const bad = wanted.filter((db) => exclude.includes(db) || used(db) || (maxDatabases !== undefined && db >= maxDatabases));
    if (bad.length) {
      throw redisError('RESTORE_FAILED', `scratch database(s) ${bad.join(', ')} on ${target} are not usable (they hold keys, are a restore target, or do not exist); nothing was changed`, 'Name empty databases that no application uses in scratchDbs, or leave it out to pick the highest empty ones.');
    }
    if (wanted.length < destinations.length) {
      throw redisError('RESTORE_FAILED', `the restore writes ${destinations.length} database(s) and needs as many scratch databases; scratchDbs names ${wanted.length}; nothing was changed`, 'Name one empty scratch database per restored database in scratchDbs.');
    }
    return wanted.slice(0, destinations.length);
  }
  const count = maxDatabases ?? 16;
  const free: number[] = [];
  for (let db = count - 1; db >= 0 && free.length < destinations.length; db--) if (!exclude.includes(db) && !used(db)) free.push(db);
  if (free.length < destinations.length) {
    throw redisError(
      'RESTORE_FAILED',
      `an all-or-nothing restore of ${destinations.length} database(s) stages each into an empty scratch database, and ${target} has only ${free.length} empty one(s) besides the targets; nothing was changed`,
      'Raise `databases` in the target\'s redis.conf, restore fewer databases at once (databases option), restore into another Redis (targetUrl), or pass allOrNothing: false to restore straight into the live databases (a failure then leaves them half-filled).',
    );
  }
  return free;
}

/** The ACL rules an all-or-nothing restore needs beyond the straight one's. */
export const STAGING_ACL = { flush: '+dbsize +swapdb +multi +exec', merge: '+dbsize +scan +unlink +move' } as const;

/**
 * Before staging: each command of the swap is tried as a no-op (SWAPDB of a database with itself,
 * an empty MULTI/EXEC, UNLINK/MOVE of a missing key), so a user the ACL refuses learns it before
 * anything is written; then the scratch databases must still be empty (nothing wrote meanwhile).
 */
export async function assertEmpty(client: Redis, scratch: number[], target: string, mode: 'flush' | 'merge' = 'flush'): Promise<void> {
  if (scratch.length) {
    const probe = '__scholaria_backup_probe_missing_key__';
    const p = client.pipeline();
    if (mode === 'flush') p.swapdb(scratch[0]!, scratch[0]!);
    else p.select(scratch[0]!).scan('0', 'COUNT', 1).unlink(probe).move(probe, scratch[0] === 0 ? 1 : 0).select(0);
    const asReplies = (error: Error) => [[error, null]] as [Error, unknown][];
    const replies = (await p.exec().catch(asReplies)) ?? [];
    // An empty-handed transaction proves MULTI/EXEC are allowed (the swap runs in one).
    if (mode === 'flush') replies.push(...((await client.multi().ping().exec().catch(asReplies)) ?? []));
    const refused = replies.find(([err]) => err);
    if (refused) {
      throw redisError(
        'RESTORE_FAILED',
        `${target} refused a command of the all-or-nothing restore (${refused[0]!.message}); nothing was changed`,
        `Grant the restore user ${STAGING_ACL[mode]} as well (see the @scholaria/backup-redis README, least-privilege users), or pass allOrNothing: false to restore straight into the live database(s).`,
      );
    }
  }
  const p = client.pipeline();
  for (const db of scratch) p.select(db).dbsize();
  const results = (await p.exec()) ?? [];
  scratch.forEach((db, i) => {
    const [selErr] = results[i * 2] ?? [];
    const [sizeErr, size] = results[i * 2 + 1] ?? [];
    if (selErr || sizeErr) {
      throw redisError('RESTORE_FAILED', `cannot use database ${db} of ${target} as scratch space: ${(selErr ?? sizeErr)!.message}; nothing was changed`, 'Name a database that exists in scratchDbs, or grant SELECT/DBSIZE.');
    }
    if (Number(size) !== 0) {
      throw redisError('RESTORE_FAILED', `scratch database ${db} of ${target} is not empty (${Number(size)} keys); nothing was changed`, 'Name an empty, unused database in scratchDbs.');
    }
  });
}

/** Empties the scratch databases after a failed staging; the live data was never touched. */
export async function discardStaging(client: Redis, scratch: number[]): Promise<void> {
  const p = client.pipeline();
  for (const db of scratch) p.select(db).flushdb();
  await p.exec();
}

/** Flush mode: swaps every staged database with its target in one transaction, then frees the old data. */
export async function swapIn(client: Redis, pairs: [target: number, scratch: number][], emptied: number[], flushAsync: boolean): Promise<void> {
  const multi = client.multi();
  for (const [t, s] of pairs) multi.swapdb(t, s);
  // Databases the dump holds empty: flushed in the same transaction, after every key was staged.
  for (const t of emptied) multi.select(t).flushdb();
  let replies: [Error | null, unknown][];
  try {
    replies = (await multi.exec()) ?? [];
  } catch (error) {
    replies = [[error as Error, null]];
  }
  const failed = replies.find(([err]) => err);
  if (failed) {
    throw redisError('RESTORE_FAILED', `SWAPDB failed: ${failed[0]!.message}; the live data was not changed and the staged keys are still in the scratch database(s) ${pairs.map(([, s]) => s).join(', ')}`, 'Grant SWAPDB (Redis 4.0+) to the restore user, or pass allOrNothing: false.');
  }
  const p = client.pipeline();
  for (const [, s] of pairs) {
    p.select(s);
    if (flushAsync) p.flushdb('ASYNC');
    else p.flushdb();
  }
  await p.exec();
}

/** Merge mode: moves the staged keys over the target's (a key in both is replaced), batch by batch. */
export async function moveIn(client: Redis, pairs: [target: number, scratch: number][], scanCount: number): Promise<void> {
  for (const [t, s] of pairs) {
    await client.select(s);
    // SCAN returns every key present for the whole scan; go round again while keys remain.
    while (Number(await client.dbsize()) > 0) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scanBuffer(cursor, 'COUNT', scanCount);
      cursor = String(next);
      if (keys.length === 0) continue;
      const p = client.pipeline();
      p.select(t);
      p.unlink(...keys);
      p.select(s);
      for (const k of keys) p.move(k, t);
      const results = (await p.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw redisError('RESTORE_FAILED', `moving staged keys from database ${s} into ${t} failed: ${failed[0]!.message}`, 'Check the target server and retry; keys not moved yet are still in the scratch database.');
      await client.select(s);
    } while (cursor !== '0');
    }
  }
  await client.select(0);
}
