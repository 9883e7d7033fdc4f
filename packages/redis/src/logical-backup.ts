import type { Redis } from 'ioredis';
import { RespWriter } from './resp-writer.js';
import { DUMP_FOOTER_LENGTH } from './rdb-version.js';
import { abortedError, isCommandRefused, printableKey, redisError } from './redis-errors.js';

export interface LogicalDumpSettings {
  databases: number[];
  scanCount: number;
  batchSize: number;
  maxBatchBytes: number;
  signal: AbortSignal;
}

export interface LogicalDumpStats {
  keyCounts: Record<string, number>;
  keys: number;
  /** Keys returned by SCAN that expired or were deleted before DUMP. */
  vanished: number;
  /** Distinct RDB versions of the DUMP payloads. */
  rdbVersions: Set<number>;
  largestValueBytes: number;
}

const RESTORE = Buffer.from('RESTORE');
const REPLACE = Buffer.from('REPLACE');
const ABSTTL = Buffer.from('ABSTTL');
const ZERO = Buffer.from('0');

type PipelineResult = [Error | null, unknown][];

/** Which logical databases exist: CONFIG GET databases, or INFO keyspace where CONFIG is refused (managed services). */
export async function listDatabases(client: Redis): Promise<{ databases: number[]; via: 'config' | 'info' }> {
  try {
    const reply = (await client.config('GET', 'databases')) as string[];
    const count = Number(reply[1]);
    if (Number.isInteger(count) && count > 0) return { databases: Array.from({ length: count }, (_, i) => i), via: 'config' };
  } catch (error) {
    if (!isCommandRefused(error) && !/ERR/.test(String(error))) throw error;
  }
  const info = await client.info('keyspace');
  const found = [...info.matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  return { databases: [...new Set([0, ...found])].sort((a, b) => a - b), via: 'info' };
}

function check(result: PipelineResult, index: number, what: string): unknown {
  const entry = result[index];
  if (!entry) throw redisError('SOURCE_FAILED', `no reply for ${what}`, 'Retry the backup; the connection may have been reset.');
  if (entry[0]) throw entry[0];
  return entry[1];
}

/**
 * Streams every key of the given databases as RESP `SELECT n` and
 * `RESTORE key absttl payload REPLACE ABSTTL` commands. Each round trip carries the SCAN for
 * the next keys together with TIME and DUMP + PTTL for the current ones, and the next round
 * trip is sent before the current one is encoded, so the server and this process work in
 * parallel. The generator only advances when the consumer pulls, which is what keeps memory
 * flat when storage is slower than Redis.
 */
export async function* logicalDump(client: Redis, settings: LogicalDumpSettings, stats: LogicalDumpStats): AsyncGenerator<Buffer> {
  const writer = new RespWriter();
  let batchKeys = settings.batchSize;

  for (const db of settings.databases) {
    if (settings.signal.aborted) throw abortedError();
    try {
      await client.select(db);
    } catch (error) {
      throw redisError('SOURCE_FAILED', `cannot SELECT database ${db}: ${(error as Error).message}`, 'Remove it from the `databases` option, or check the ACL of the backup user.', {
        cause: error,
      });
    }
    writer.command(['SELECT', String(db)]);
    stats.keyCounts[String(db)] = 0;

    let cursor = '0';
    let scanDone = false;
    const queue: Buffer[] = [];

    const send = () => {
      const keys = queue.splice(0, batchKeys);
      const scan = !scanDone && queue.length < settings.scanCount;
      const p = client.pipeline();
      if (scan) p.scanBuffer(cursor, 'COUNT', settings.scanCount);
      p.time();
      for (const k of keys) {
        p.dumpBuffer(k);
        p.pttl(k);
      }
      return { keys, scan, done: p.exec() as Promise<PipelineResult> };
    };

    let inflight: ReturnType<typeof send> | undefined = send();
    while (inflight) {
      const { keys, scan, done } = inflight;
      const result = await done;
      if (settings.signal.aborted) throw abortedError();
      let i = 0;
      if (scan) {
        const [next, found] = check(result, i++, 'SCAN') as [Buffer, Buffer[]];
        cursor = next.toString();
        if (cursor === '0') scanDone = true;
        for (const k of found) queue.push(k);
      }
      const [sec, usec] = check(result, i++, 'TIME') as [string, string];
      const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);

      // Send the next round trip before encoding this one.
      inflight = queue.length > 0 || !scanDone ? send() : undefined;

      let batchBytes = 0;
      for (const key of keys) {
        const dump = result[i++]!;
        const ttl = result[i++]!;
        if (dump[0]) throw dumpFailure(dump[0], key);
        if (ttl[0]) throw dumpFailure(ttl[0], key);
        const payload = dump[1] as Buffer | null;
        const pttl = Number(ttl[1]);
        // Expired or deleted between SCAN and DUMP: nothing to keep.
        if (payload === null || pttl === -2) {
          stats.vanished++;
          continue;
        }
        const at = payload.length - DUMP_FOOTER_LENGTH;
        if (at > 0) stats.rdbVersions.add(payload.readUInt16LE(at));
        if (payload.length > stats.largestValueBytes) stats.largestValueBytes = payload.length;
        batchBytes += payload.length;
        const expireAt = pttl >= 0 ? Buffer.from(String(now + pttl)) : ZERO;
        writer.command([RESTORE, key, expireAt, payload, REPLACE, ABSTTL]);
        stats.keyCounts[String(db)]!++;
        stats.keys++;
      }
      // Fewer keys per round trip while values are big, back up again once they are small.
      if (batchBytes > settings.maxBatchBytes) batchKeys = Math.max(1, Math.floor(batchKeys / 2));
      else if (batchKeys < settings.batchSize && batchBytes < settings.maxBatchBytes / 4) batchKeys = Math.min(settings.batchSize, batchKeys * 2);

      const chunks = writer.take();
      for (const c of chunks) yield c;
    }
  }
  const tail = writer.take();
  for (const c of tail) yield c;
}

function dumpFailure(error: Error, key: Buffer) {
  return redisError('SOURCE_FAILED', `DUMP of key "${printableKey(key)}" failed: ${error.message}`, isCommandRefused(error)
    ? 'The backup user needs DUMP, PTTL, SCAN, SELECT, TIME and INFO on all keys (ACL: +@read +scan +dump +select +time +info ~*).'
    : 'Retry the backup; if it persists, check the server log.', { cause: error });
}
