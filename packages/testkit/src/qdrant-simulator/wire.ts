/**
 * What the single-node and the cluster Qdrant simulators share on the wire: Qdrant's JSON
 * envelope, request body and query parsing, the multipart snapshot upload, the Range handling
 * of snapshot downloads, scroll pages and the `GET /cluster` body. Sources, as cited in
 * ../qdrant-simulator.ts and ../qdrant-cluster-simulator.ts:
 * - replies: lib/api/src/rest/models.rs `ApiResponse` (`result`, `status`, `time`); a 202 from
 *   src/actix/helpers.rs `accepted_response` has no `result` member (skip_serializing_if none).
 * - uploads: src/actix/api/snapshot_api.rs (multipart field `snapshot`; only the last path
 *   component of the file name is kept, a UUID without one).
 * - cluster status: src/actix/api/cluster_api.rs, lib/storage/src/types.rs `ClusterStatus`.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import {
  QdrantSimError,
  badRequest,
  collectionNotFound,
  comparePointIds,
  formatError,
  isObject,
  normalizePointId,
  notFound,
  selectPayload,
  selectVector,
  wrongInput,
  type StoredPoint,
} from './state.js';

export function majorMinor(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

export function randomU64(): bigint {
  return randomBytes(8).readBigUInt64BE() | (1n << 62n);
}

/** JSON with u64 numbers written as plain digits, as Qdrant writes peer ids. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `__u64__${v.toString()}__` : v)).replace(
    /"__u64__(\d+)__"/g,
    '$1',
  );
}

export function snapshotTimestamp(date: Date): { suffix: string; creationTime: string } {
  const iso = date.toISOString().slice(0, 19);
  return { suffix: iso.replace('T', '-').replace(/:/g, '-'), creationTime: iso };
}

const elapsed = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

export function send(res: ServerResponse, httpStatus: number, body: unknown): void {
  const text = toJson(body);
  res.writeHead(httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
export const ok = (res: ServerResponse, started: bigint, result: unknown) => send(res, 200, { result, status: 'ok', time: elapsed(started) });
export const accepted = (res: ServerResponse, started: bigint) => send(res, 202, { status: 'accepted', time: elapsed(started) });
export const fail = (res: ServerResponse, started: bigint, error: QdrantSimError) =>
  send(res, error.httpStatus, { status: { error: error.message }, time: elapsed(started) });

/** The JSON body, `{}` when empty; 413 past `maxBytes`. */
export async function readJson(req: IncomingMessage, maxBytes = Infinity): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new QdrantSimError(413, 'Payload too large');
    chunks.push(chunk as Buffer);
  }
  if (chunks.length === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (error) {
    throw formatError((error as Error).message);
  }
}

export function boolParam(query: URLSearchParams, key: string, dflt: boolean): boolean {
  const v = query.get(key);
  if (v === null) return dflt;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw badRequest(`Query deserialize error: ${key}: provided string was not \`true\` or \`false\``);
}

/** A snapshot file the simulator keeps (collection or shard snapshot). */
export interface SnapshotRecord {
  name: string;
  path: string;
  size: number;
  checksum: string;
  creationTime: string;
}

export interface ReceivedUpload {
  path: string;
  checksum: string;
  size: number;
  filename: string;
}

/** Stores the multipart `snapshot` field under `dir` with its SHA-256 and size. */
export async function receiveUpload(req: IncomingMessage, dir: string): Promise<ReceivedUpload> {
  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: req.headers, limits: { files: 1, fields: 16 } });
  } catch (error) {
    req.resume();
    throw badRequest(`Content type error: ${(error as Error).message}`);
  }
  let upload: ReceivedUpload | undefined;
  const writes: Promise<void>[] = [];
  bb.on('file', (field, file, info) => {
    if (field !== 'snapshot' || upload) {
      file.resume();
      return;
    }
    // snapshot_api.rs: only the last path component of the file name is kept, a UUID without one.
    const filename = info.filename ? basename(info.filename.replace(/\\/g, '/')) : randomUUID();
    const entry = { path: join(dir, `${randomUUID()}.upload`), checksum: '', size: 0, filename: filename || randomUUID() };
    upload = entry;
    const hash = createHash('sha256');
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        entry.size += chunk.length;
        cb(null, chunk);
      },
    });
    writes.push(
      pipeline(file, counter, createWriteStream(entry.path, { mode: 0o600 })).then(() => {
        entry.checksum = hash.digest('hex');
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    bb.on('close', resolve);
    bb.on('error', reject);
    req.on('error', reject);
    req.pipe(bb);
  }).catch((error: Error) => {
    throw badRequest(`Multipart error: ${error.message}`);
  });
  await Promise.all(writes);
  if (!upload) throw badRequest('Multipart error: field `snapshot` is missing');
  return upload;
}

/**
 * The byte range a snapshot download sends and its headers written; `undefined` when a 416 was
 * answered. `If-Range` honours the range when it equals one of `validators` (else the whole file).
 */
export function startSnapshotDownload(
  req: IncomingMessage,
  res: ServerResponse,
  record: { name: string; size: number },
  etag: string,
  validators: string[],
  extraHeaders: Record<string, string> = {},
): { start: number; end: number } | undefined {
  let start = 0;
  let end = record.size - 1;
  let partial = false;
  const range = typeof req.headers.range === 'string' ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range.trim()) : null;
  const ifRange = req.headers['if-range'];
  const rangeValid = ifRange === undefined || (typeof ifRange === 'string' && validators.includes(ifRange));
  if (range && rangeValid) {
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), record.size - 1) : record.size - 1;
    if (start >= record.size || start > end) {
      res.writeHead(416, { 'content-range': `bytes */${record.size}`, 'content-length': 0 });
      res.end();
      return undefined;
    }
    partial = true;
  }
  res.writeHead(partial ? 206 : 200, {
    'content-type': 'application/octet-stream',
    'content-length': end - start + 1,
    'content-disposition': `attachment; filename="${record.name}"`,
    'accept-ranges': 'bytes',
    etag,
    ...extraHeaders,
    ...(partial ? { 'content-range': `bytes ${start}-${end}/${record.size}` } : {}),
  });
  return { start, end };
}

/** `POST /collections/{c}/points/scroll` over `points()` (sorted by id); `simulator` names who refuses filters. */
export function scrollPage(body: unknown, points: () => StoredPoint[], simulator: string) {
  const b = isObject(body) ? body : {};
  if (b.filter !== undefined && b.filter !== null) throw badRequest(`the ${simulator} does not support scroll filters`);
  const limit = b.limit === undefined ? 10 : Number(b.limit);
  if (!Number.isInteger(limit) || limit < 1) throw formatError('limit: expected a positive integer');
  const offset = b.offset === undefined || b.offset === null ? undefined : normalizePointId(b.offset);
  const all = points().filter((p) => offset === undefined || comparePointIds(p.id, offset) >= 0);
  return {
    points: all.slice(0, limit).map((p) => {
      const payload = selectPayload(p.payload, b.with_payload ?? true);
      const vector = selectVector(p.vector, b.with_vector ?? false);
      return { id: p.id, ...(payload !== undefined ? { payload } : {}), ...(vector !== undefined ? { vector } : {}) };
    }),
    next_page_offset: all[limit]?.id ?? null,
  };
}

/** `GET /cluster` of an enabled cluster as seen from `self`; peers listed by their p2p URI. */
export function clusterStatusBody(self: bigint, peers: { id: bigint; index: number }[], leader: bigint) {
  return {
    status: 'enabled',
    peer_id: self,
    peers: Object.fromEntries(peers.map((p) => [p.id.toString(), { uri: `http://qdrant-${p.index}.qdrant-headless:6335/` }])),
    raft_info: { term: 1, commit: 10, pending_operations: 0, leader, role: self === leader ? 'Leader' : 'Follower', is_voter: true },
    consensus_thread_status: { consensus_thread_status: 'working', last_update: new Date().toISOString() },
    message_send_failures: {},
  };
}

/**
 * `POST /collections/aliases`: applied all or nothing to `aliases`. `full` (the single-node
 * simulator) also checks the field types and supports `rename_alias`; the cluster simulator
 * models create and delete only.
 */
export function applyAliasOperations(body: unknown, aliases: Map<string, string>, collections: { has(name: string): boolean }, full: boolean): true {
  if (!isObject(body) || !Array.isArray(body.actions)) throw formatError('missing field `actions`');
  const next = new Map(aliases);
  for (const action of body.actions as unknown[]) {
    if (!isObject(action)) throw formatError('actions: expected objects');
    if (isObject(action.create_alias)) {
      const { collection_name, alias_name } = action.create_alias as { collection_name: string; alias_name: string };
      if (full && (typeof collection_name !== 'string' || typeof alias_name !== 'string')) throw formatError('create_alias needs collection_name and alias_name');
      if (!collections.has(collection_name)) throw collectionNotFound(collection_name);
      if (collections.has(alias_name)) throw wrongInput(`Collection with name \`${alias_name}\` already exists`);
      next.set(alias_name, collection_name);
    } else if (isObject(action.delete_alias)) {
      const { alias_name } = action.delete_alias;
      if (typeof alias_name !== 'string' || !next.has(alias_name)) throw notFound(`Alias ${String(alias_name)} does not exists!`);
      next.delete(alias_name);
    } else if (full && isObject(action.rename_alias)) {
      const { old_alias_name, new_alias_name } = action.rename_alias;
      if (typeof old_alias_name !== 'string' || typeof new_alias_name !== 'string') throw formatError('rename_alias needs old_alias_name and new_alias_name');
      const target = next.get(old_alias_name);
      if (target === undefined) throw notFound(`Alias ${old_alias_name} does not exists!`);
      next.delete(old_alias_name);
      next.set(new_alias_name, target);
    } else {
      throw formatError('unknown alias operation');
    }
  }
  aliases.clear();
  for (const [k, v] of next) aliases.set(k, v);
  return true;
}
