import type { Readable } from 'node:stream';
import type { RespConnection } from './resp-connection.js';
import { RespWriter } from './resp-writer.js';
import { RespCommandReader, RespFormatError } from './resp-reader.js';
import { readDumpFooter } from './rdb-version.js';
import { abortedError, printableKey, redisError } from './redis-errors.js';

type Parsed = { kind: 'select'; db: number } | { kind: 'restore'; key: Buffer; args: Buffer[]; payload: Buffer };

const RESTORE = Buffer.from('RESTORE');
const RESTORE_FLAGS = new Set(['REPLACE', 'ABSTTL']);
const RESTORE_FLAGS_WITH_VALUE = new Set(['IDLETIME', 'FREQ']);

function invalid(artifact: string, message: string): Error {
  return redisError('RESTORE_FAILED', `artifact ${artifact} is not a valid logical Redis dump: ${message}`, 'Use an artifact written by this source (mode "logical"); it must contain only SELECT and RESTORE commands.');
}

/** Accepts only the two commands the logical format uses, so a tampered artifact cannot run FLUSHALL, CONFIG, EVAL... */
function interpret(cmd: Buffer[], artifact: string): Parsed {
  const name = cmd[0]!.toString('latin1').toUpperCase();
  if (name === 'SELECT' && cmd.length === 2) {
    const text = cmd[1]!.toString('latin1');
    if (!/^\d{1,7}$/.test(text)) throw invalid(artifact, `bad SELECT argument ${JSON.stringify(text.slice(0, 20))}`);
    return { kind: 'select', db: Number(text) };
  }
  if (name === 'RESTORE' && cmd.length >= 4) {
    const ttl = cmd[2]!.toString('latin1');
    if (!/^\d{1,16}$/.test(ttl)) throw invalid(artifact, `bad RESTORE ttl ${JSON.stringify(ttl.slice(0, 20))}`);
    for (let i = 4; i < cmd.length; i++) {
      const flag = cmd[i]!.toString('latin1').toUpperCase();
      if (RESTORE_FLAGS_WITH_VALUE.has(flag) && i + 1 < cmd.length && /^\d{1,10}$/.test(cmd[i + 1]!.toString('latin1'))) i++;
      else if (!RESTORE_FLAGS.has(flag)) throw invalid(artifact, `unknown RESTORE flag ${JSON.stringify(flag.slice(0, 20))}`);
    }
    return { kind: 'restore', key: cmd[1]!, args: cmd.slice(1), payload: cmd[3]! };
  }
  throw invalid(artifact, `unexpected command ${JSON.stringify(name.slice(0, 30))}`);
}

async function* commands(stream: Readable, artifact: string, signal: AbortSignal): AsyncGenerator<Parsed[]> {
  const reader = new RespCommandReader();
  try {
    for await (const chunk of stream) {
      if (signal.aborted) throw abortedError();
      const parsed = reader.push(chunk as Buffer);
      if (parsed.length) yield parsed.map((c) => interpret(c, artifact));
    }
    reader.end();
  } catch (error) {
    if (error instanceof RespFormatError) throw invalid(artifact, error.message);
    throw error;
  }
}

export interface DumpSummary {
  /** Databases in the order the dump selects them, with their key counts. */
  keyCounts: Record<string, number>;
  databases: number[];
  rdbVersions: number[];
  /** Payloads whose CRC-64 does not match (a corrupted or hand-edited artifact). */
  badChecksums: number;
  keys: number;
  /** Bytes of DUMP payloads per database: a lower bound of the memory the keys take once restored. */
  payloadBytes: Record<string, number>;
}

/** Reads a whole logical artifact without writing anywhere (dry-run, version pre-checks). */
export async function summarizeDump(stream: Readable, artifact: string, signal: AbortSignal): Promise<DumpSummary> {
  const keyCounts: Record<string, number> = {};
  const payloadBytes: Record<string, number> = {};
  const databases: number[] = [];
  const versions = new Set<number>();
  let db: number | undefined;
  let badChecksums = 0;
  let keys = 0;
  for await (const batch of commands(stream, artifact, signal)) {
    for (const c of batch) {
      if (c.kind === 'select') {
        db = c.db;
        if (!(String(db) in keyCounts)) {
          keyCounts[String(db)] = 0;
          payloadBytes[String(db)] = 0;
          databases.push(db);
        }
        continue;
      }
      if (db === undefined) throw invalid(artifact, 'RESTORE before any SELECT');
      keyCounts[String(db)]!++;
      payloadBytes[String(db)]! += c.payload.length;
      keys++;
      const footer = readDumpFooter(c.payload, true);
      if (!footer) badChecksums++;
      else {
        versions.add(footer.rdbVersion);
        if (!footer.crcValid) badChecksums++;
      }
    }
  }
  return { keyCounts, databases, rdbVersions: [...versions].sort((a, b) => a - b), badChecksums, keys, payloadBytes };
}

export interface RestoreSettings {
  /** 'flush' sends FLUSHDB to each destination database before its first RESTORE. */
  mode: 'flush' | 'merge';
  /**
   * Where the keys of dump database `db` go; undefined skips that database; null means it was
   * announced empty (manifest keyCounts), so a key in it fails the restore.
   */
  destination: (db: number) => number | null | undefined;
  batchSize: number;
  maxBatchBytes: number;
  /** FLUSHDB ASYNC (Redis 4.0+) frees memory in the background. */
  flushAsync: boolean;
  signal: AbortSignal;
}

export interface RestoreStats {
  keyCounts: Record<string, number>;
  flushed: number[];
  keys: number;
}

/**
 * Sends the dump back pipelined: batches of up to `batchSize` commands (or `maxBatchBytes`),
 * with at most two batches in flight. The artifact is read only as fast as Redis answers.
 */
export async function restoreDump(conn: RespConnection, stream: Readable, artifact: string, settings: RestoreSettings, stats: RestoreStats): Promise<void> {
  let failure: unknown;
  const inflight: Promise<void>[] = [];
  const writer = new RespWriter();
  let labels: string[] = [];
  let pendingBytes = 0;
  let db: number | undefined;
  let to: number | undefined;
  let skipping = false;
  const flushed = new Set<number>();

  const submit = async () => {
    if (labels.length === 0) return;
    const sent = labels;
    const exec = conn.send(writer.take(), sent.length).then((replies) => {
      replies.forEach((reply, i) => {
        if (reply instanceof Error && failure === undefined) {
          failure = redisError('RESTORE_FAILED', `${sent[i]} failed: ${reply.message}`, /payload version or checksum/i.test(reply.message)
            ? 'The dump comes from a newer Redis than the target; restore into a Redis at least as new as the one backed up (see the dry-run report).'
            : 'Check the target server (memory limit, ACL permissions for RESTORE/FLUSHDB/SELECT) and retry.', { cause: reply });
        }
      });
    });
    inflight.push(
      exec.catch((error: unknown) => {
        failure ??= error;
      }),
    );
    labels = [];
    pendingBytes = 0;
    if (inflight.length >= 2) await inflight.shift();
    if (failure !== undefined) throw failure;
  };

  for await (const batch of commands(stream, artifact, settings.signal)) {
    for (const c of batch) {
      if (c.kind === 'select') {
        db = c.db;
        const dest = settings.destination(db);
        skipping = dest === undefined;
        if (dest === undefined) continue;
        if (dest === null) {
          to = undefined;
          continue;
        }
        to = dest;
        writer.command(['SELECT', String(to)]);
        labels.push(`SELECT ${to}`);
        stats.keyCounts[String(db)] ??= 0;
        if (settings.mode === 'flush' && !flushed.has(to)) {
          flushed.add(to);
          stats.flushed.push(to);
          writer.command(settings.flushAsync ? ['FLUSHDB', 'ASYNC'] : ['FLUSHDB']);
          labels.push(`FLUSHDB of database ${to}`);
        }
        continue;
      }
      if (db === undefined) throw invalid(artifact, 'RESTORE before any SELECT');
      if (skipping) continue;
      if (to === undefined) throw invalid(artifact, `database ${db} holds keys but the manifest counts none for it`);
      writer.command([RESTORE, ...c.args]);
      labels.push(`RESTORE of key "${printableKey(c.key)}" in database ${to}`);
      pendingBytes += c.payload.length;
      stats.keyCounts[String(db)]!++;
      stats.keys++;
    }
    if (labels.length >= settings.batchSize || pendingBytes >= settings.maxBatchBytes) await submit();
  }
  await submit();
  await Promise.all(inflight);
  if (failure !== undefined) throw failure;
}
