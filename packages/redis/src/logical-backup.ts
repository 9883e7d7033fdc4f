import type { Redis } from 'ioredis';
import { RespWriter, encodeCommand } from './resp-writer.js';
import type { Reply, RespConnection } from './resp-connection.js';
import { DUMP_FOOTER_LENGTH } from './rdb-version.js';
import { abortedError, isCommandRefused, printableKey, redisError } from './redis-errors.js';

export interface LogicalDumpSettings {
  databases: number[];
  scanCount: number;
  batchSize: number;
  maxBatchBytes: number;
  /** Round trips kept queued on the connection. */
  depth: number;
  /**
   * PEXPIRETIME (Redis 7.0+) gives the exact absolute expiry; older servers get TIME + PTTL,
   * which is early by at most the time the server spends on one batch.
   */
  useExpireTime: boolean;
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

const SCAN = Buffer.from('SCAN');
const COUNT = Buffer.from('COUNT');
/** Constant parts of the commands, encoded once: a key costs its own bytes and lengths only. */
const TIME_COMMAND = Buffer.from('*1\r\n$4\r\nTIME\r\n');
const DUMP_HEAD = Buffer.from('*2\r\n$4\r\nDUMP\r\n');
const PTTL_HEAD = Buffer.from('*2\r\n$4\r\nPTTL\r\n');
const PEXPIRETIME_HEAD = Buffer.from('*2\r\n$11\r\nPEXPIRETIME\r\n');
const RESTORE_HEAD = Buffer.from('*6\r\n$7\r\nRESTORE\r\n');
const RESTORE_TAIL = Buffer.from('$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n');

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

function fail(reply: Reply | undefined, what: string): never {
  if (reply instanceof Error) {
    throw redisError('SOURCE_FAILED', `${what} failed: ${reply.message}`, isCommandRefused(reply)
      ? 'The backup user needs SCAN, DUMP, PEXPIRETIME/PTTL, SELECT, TIME and INFO on all keys (ACL: +@read +scan +dump +select +time +info ~*).'
      : 'Retry the backup; if it persists, check the server log.', { cause: reply });
  }
  throw redisError('SOURCE_FAILED', `unexpected reply to ${what}`, 'Retry the backup; if it persists, check that the server speaks RESP2.');
}

/**
 * Streams every key of the given databases as RESP `SELECT n` and
 * `RESTORE key absttl payload REPLACE ABSTTL` commands. Each round trip carries the SCAN for
 * the next keys together with DUMP + PEXPIRETIME (or TIME, DUMP + PTTL) for the current ones,
 * and the next round trip is sent before the current one is encoded, so the server and this
 * process work in parallel. The generator only advances when the consumer pulls, which is what
 * keeps memory flat when storage is slower than Redis.
 */
export async function* logicalDump(conn: RespConnection, settings: LogicalDumpSettings, stats: LogicalDumpStats): AsyncGenerator<Buffer> {
  const writer = new RespWriter();
  const request = new RespWriter();
  let batchKeys = settings.batchSize;
  const scanCount = String(settings.scanCount);
  const expiryHead = settings.useExpireTime ? PEXPIRETIME_HEAD : PTTL_HEAD;

  for (const db of settings.databases) {
    if (settings.signal.aborted) throw abortedError();
    const [selected] = await conn.send([encodeCommand(['SELECT', String(db)])], 1);
    if (selected instanceof Error) {
      throw redisError('SOURCE_FAILED', `cannot SELECT database ${db}: ${selected.message}`, 'Remove it from the `databases` option, or check the ACL of the backup user.', {
        cause: selected,
      });
    }
    writer.command(['SELECT', String(db)]);
    const dbName = String(db);
    stats.keyCounts[dbName] = 0;
    let dbKeys = 0;

    let cursor = '0';
    let scanDone = false;
    let scanInFlight = false;
    const queue: Buffer[] = [];
    const inflight: { keys: Buffer[]; scan: boolean; done: Promise<Reply[]> }[] = [];

    // Keeps up to `depth` round trips queued on the connection so Redis always has the next
    // batch waiting. SCAN is sequential (each cursor comes from the previous reply), so at most
    // one round trip carries a SCAN; it asks for more keys than one round trip consumes.
    const fill = () => {
      while (inflight.length < settings.depth) {
        const scan = !scanDone && !scanInFlight && queue.length < batchKeys * settings.depth;
        if (queue.length === 0 && !scan) return;
        const keys = queue.splice(0, batchKeys);
        if (scan) {
          request.command([SCAN, cursor, COUNT, scanCount]);
          scanInFlight = true;
        }
        if (!settings.useExpireTime) request.raw(TIME_COMMAND);
        for (const k of keys) request.raw(DUMP_HEAD).bulk(k).raw(expiryHead).bulk(k);
        const expected = (scan ? 1 : 0) + (settings.useExpireTime ? 0 : 1) + keys.length * 2;
        inflight.push({ keys, scan, done: conn.send(request.take(), expected) });
      }
    };

    fill();
    while (inflight.length) {
      const { keys, scan, done } = inflight.shift()!;
      const result = await done;
      if (settings.signal.aborted) throw abortedError();
      let i = 0;
      if (scan) {
        const reply = result[i++];
        if (!Array.isArray(reply) || !Buffer.isBuffer(reply[0]) || !Array.isArray(reply[1])) fail(reply, 'SCAN');
        cursor = (reply[0] as Buffer).toString('latin1');
        if (cursor === '0') scanDone = true;
        scanInFlight = false;
        for (const k of reply[1] as Buffer[]) queue.push(k);
      }
      let now = 0;
      if (!settings.useExpireTime) {
        const reply = result[i++];
        if (!Array.isArray(reply)) fail(reply, 'TIME');
        now = Number(String(reply[0])) * 1000 + Math.floor(Number(String(reply[1])) / 1000);
      }

      // Queue the next round trips before encoding this one.
      fill();

      let batchBytes = 0;
      for (const key of keys) {
        const payload = result[i++];
        const expiry = result[i++];
        if (payload instanceof Error) throw dumpFailure(payload, key);
        if (expiry instanceof Error) throw dumpFailure(expiry, key);
        // Expired or deleted between SCAN and DUMP: nothing to keep.
        if (payload === null || expiry === -2) {
          stats.vanished++;
          continue;
        }
        if (!Buffer.isBuffer(payload) || typeof expiry !== 'number') fail(payload, 'DUMP');
        const at = payload.length - DUMP_FOOTER_LENGTH;
        if (at > 0) stats.rdbVersions.add(payload.readUInt16LE(at));
        if (payload.length > stats.largestValueBytes) stats.largestValueBytes = payload.length;
        batchBytes += payload.length;
        writer.raw(RESTORE_HEAD).bulk(key).bulkInteger(expiry < 0 ? 0 : settings.useExpireTime ? expiry : now + expiry).bulk(payload).raw(RESTORE_TAIL);
        dbKeys++;
      }
      stats.keys += dbKeys - stats.keyCounts[dbName]!;
      stats.keyCounts[dbName] = dbKeys;
      // Fewer keys per round trip while values are big, back up again once they are small.
      if (batchBytes > settings.maxBatchBytes) batchKeys = Math.max(1, Math.floor(batchKeys / 2));
      else if (batchKeys < settings.batchSize && batchBytes < settings.maxBatchBytes / 4) batchKeys = Math.min(settings.batchSize, batchKeys * 2);

      for (const c of writer.take()) yield c;
    }
  }
  for (const c of writer.take()) yield c;
}

function dumpFailure(error: Error, key: Buffer) {
  return redisError('SOURCE_FAILED', `DUMP of key "${printableKey(key)}" failed: ${error.message}`, isCommandRefused(error)
    ? 'The backup user needs DUMP, PEXPIRETIME/PTTL, SCAN, SELECT, TIME and INFO on all keys (ACL: +@read +scan +dump +select +time +info ~*).'
    : 'Retry the backup; if it persists, check the server log.', { cause: error });
}
