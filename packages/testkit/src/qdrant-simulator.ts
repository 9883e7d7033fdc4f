/**
 * A Qdrant REST API SIMULATOR for tests (no Qdrant server can be installed on the test
 * machines). It is a real HTTP server on loopback that follows Qdrant's OpenAPI for the
 * endpoints the Qdrant source uses: the `{ result, status, time }` envelope, error bodies,
 * the `api-key` header, `wait`, snapshot descriptions and snapshot upload with `priority` and
 * `checksum`. Snapshot files are tar archives in a format of the simulator's own (see
 * ./qdrant-simulator/snapshot-file.ts), not Qdrant's segment format.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { makeTempDir } from './temp-dir.js';
import { registerCleanup } from './cleanup.js';
import {
  QdrantSimError,
  approximateCount,
  badRequest,
  collectionInfo,
  collectionNotFound,
  configFromCreateRequest,
  formatError,
  isObject,
  notFound,
  preparePoint,
  sortedPoints,
  validateCollectionName,
  wrongInput,
  type PointId,
  type PointVector,
  type Payload,
  type SimCollection,
  type VectorsConfig,
} from './qdrant-simulator/state.js';
import { accessDenied, accessFromJwt, canSeeCollection, routeAccess, type Access } from './qdrant-simulator/access.js';
import { accepted, boolParam, clusterStatusBody, fail, majorMinor, ok, randomU64, readJson, receiveUpload, scrollPage, send, snapshotTimestamp, startSnapshotDownload, applyAliasOperations, type SnapshotRecord } from './qdrant-simulator/wire.js';
import { SIM_SNAPSHOT_FORMAT, readSnapshotFile, writeSnapshotFile } from './qdrant-simulator/snapshot-file.js';

export interface QdrantSimulatorOptions {
  /** When set, every endpoint except `/`, `/healthz`, `/readyz`, `/livez` needs it in `api-key` (or `Authorization: Bearer`). */
  apiKey?: string;
  /** A second key that may only read (Qdrant's `read_only_api_key`): writes answer a JSON 403. */
  readOnlyApiKey?: string;
  /**
   * Qdrant's `service.jwt_rbac`: tokens signed HS256 with `apiKey` (see `signQdrantJwt`) are
   * accepted with the rights of their `access` claim.
   */
  jwtRbac?: boolean;
  /** Version reported by `GET /` and written into snapshots. Default '1.13.2'. */
  version?: string;
  /** Flip one byte in the middle of every snapshot download (the reported checksum stays right). */
  corruptDownloads?: boolean;
  /** Report a cluster (`GET /cluster` status 'enabled') with this many peers; omitted: cluster disabled. */
  peers?: number;
  /**
   * How many `GET /collections/{name}` after a snapshot recovery still see the collection
   * optimizing: status `yellow` and an approximate `points_count` that is off. Default 2.
   */
  indexingReadsAfterRecovery?: number;
}

export interface QdrantSimulatorPoint {
  id: PointId;
  vector: PointVector;
  payload: Payload;
}

export interface QdrantSimulatorCollection {
  name: string;
  vectors: VectorsConfig;
  pointsCount: number;
  /** Sorted as Qdrant's scroll returns them (integer ids first, then UUIDs). */
  points: QdrantSimulatorPoint[];
  aliases: string[];
}

export interface QdrantSimulatorRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status?: number;
  /** The `Range` header, when one was sent. */
  range?: string;
}

export interface QdrantSimulatorFailure {
  /** How many matching requests fail. Default 1. */
  count?: number;
  /** HTTP status of the failure, default 503. Ignored with `reset`. */
  status?: number;
  /** Destroy the socket instead of answering (the client sees ECONNRESET). */
  reset?: boolean;
  method?: string;
  /** Matches the request path (a string matches as a prefix). */
  path?: string | RegExp;
  /**
   * Only for snapshot downloads: send the status line, headers and this many body bytes, then
   * destroy the socket (a transfer broken midway). `status` and `reset` are ignored.
   */
  cutAfterBytes?: number;
  /**
   * Qdrant still does the work and only the answer is lost, as behind a proxy whose timeout
   * fires first: Qdrant runs the request in a spawned task that finishes even when the client
   * is gone (src/actix/helpers.rs `time_or_accept`: `tokio::task::spawn`). The client gets
   * `status` (default 504) once the request has been processed. Ignored with `reset`.
   */
  processAnyway?: boolean;
  /**
   * With `processAnyway`: the proxy answers after this many ms even while Qdrant is still
   * working (a proxy timeout shorter than the request); the work then finishes later on its own.
   * Omitted: the answer comes once the work is done.
   */
  answerAfterMs?: number;
  /**
   * Test hook for snapshot creation (`POST /collections/{c}/snapshots`): the snapshot takes this
   * long to write (a big collection). As in Qdrant, its name carries the time the creation
   * started (lib/collection/src/collection/snapshots.rs `create_snapshot` formats
   * `<collection>-<peer>-<time>.snapshot` before writing) and nothing is sent on the connection
   * until it is done (snapshot_api.rs `create_snapshot` awaits the task with `wait=true`).
   * Combine with `processAnyway` to also lose the answer; alone, the answer is just late.
   */
  workMs?: number;
  /**
   * Test hooks for snapshot downloads (a slow or stalled network; Qdrant itself streams the file
   * as fast as the client reads it): send one byte every `trickleEveryMs` for `trickleForMs`,
   * then the rest at full speed. `status` and `reset` are ignored.
   */
  trickleEveryMs?: number;
  trickleForMs?: number;
  /** Only for snapshot downloads: after `stallAfterBytes` (default 1) body bytes, send nothing for `stallMs`, then the rest. */
  stallMs?: number;
  stallAfterBytes?: number;
}

export interface QdrantSimulator {
  /** Base URL, e.g. http://127.0.0.1:40123 (no trailing slash). */
  url: string;
  apiKey?: string;
  version: string;
  /** This node's peer id (a u64, as a decimal string). */
  peerId: string;
  /** Folder holding the snapshot files. */
  snapshotsDir: string;
  stop(): Promise<void>;
  /** A deep copy of every collection with its points and aliases. */
  collections(): QdrantSimulatorCollection[];
  /** Snapshot files currently on the "server". */
  snapshots(): { collection: string; name: string; size: number; checksum: string }[];
  /** Every request received so far, in order. */
  requests(): QdrantSimulatorRequest[];
  setCorruptDownloads(on: boolean): void;
  /** Makes the next matching request(s) fail, to exercise retries. */
  failNext(failure?: QdrantSimulatorFailure): void;
}

const PRIORITIES = ['no_sync', 'snapshot', 'replica'] as const;
type Priority = (typeof PRIORITIES)[number];
const AUTH_WHITELIST = new Set(['/', '/healthz', '/readyz', '/livez']);
const MAX_JSON_BODY = 64 * 1024 * 1024;

/** JSON with sorted keys and no null members: Qdrant compares the configs as structs. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined && o[k] !== null)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Swallows an answer nobody receives (see `processAnyway`). */
class ServerResponseSink {
  headersSent = false;
  statusCode = 200;
  writeHead(status: number): this {
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }
  setHeader(): this {
    return this;
  }
  write(_chunk: unknown, cb?: (e?: Error) => void): boolean {
    cb?.();
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    return this;
  }
  on(): this {
    return this;
  }
  once(): this {
    return this;
  }
}

export async function startQdrantSimulator(options: QdrantSimulatorOptions = {}): Promise<QdrantSimulator> {
  const version = options.version ?? '1.13.2';
  const apiKey = options.apiKey;
  const readOnlyApiKey = options.readOnlyApiKey;
  const indexingReadsAfterRecovery = options.indexingReadsAfterRecovery ?? 2;
  const jwtRbac = options.jwtRbac ?? false;
  let corruptDownloads = options.corruptDownloads ?? false;
  const peerIds: bigint[] = Array.from({ length: Math.max(1, options.peers ?? 1) }, () => randomU64());
  const peerId = peerIds[0] as bigint;
  const clusterEnabled = options.peers !== undefined;

  const dir = await makeTempDir('qdrant-simulator-');
  const snapshotsDir = dir.path;
  const collections = new Map<string, SimCollection>();
  const aliases = new Map<string, string>();
  const snapshots = new Map<string, Map<string, SnapshotRecord>>();
  const requestLog: QdrantSimulatorRequest[] = [];
  const failures: (QdrantSimulatorFailure & { remaining: number })[] = [];
  /** `workMs` of the failure that matched a request (see QdrantSimulatorFailure.workMs). */
  const snapshotWork = new WeakMap<IncomingMessage, number>();
  const shapesDownload = (f: QdrantSimulatorFailure) =>
    f.cutAfterBytes !== undefined || f.trickleEveryMs !== undefined || f.stallMs !== undefined;
  let operationId = 0;

  // send, ok, accepted (src/actix/helpers.rs `accepted_response`: a 202 has no `result`) and
  // fail come from ./qdrant-simulator/wire.ts, shared with the cluster simulator.
  const text = (res: ServerResponse, httpStatus: number, body: string) => {
    res.writeHead(httpStatus, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const getCollection = (name: string): SimCollection => {
    const c = collections.get(name) ?? collections.get(aliases.get(name) ?? '');
    if (!c) throw collectionNotFound(name);
    return c;
  };
  const aliasesOf = (name: string) =>
    [...aliases.entries()].filter(([, c]) => c === name).map(([alias_name, collection_name]) => ({ alias_name, collection_name }));



  async function createSnapshot(collection: SimCollection, workMs = 0): Promise<SnapshotRecord> {
    const { suffix, creationTime } = snapshotTimestamp(new Date());
    const name = `${collection.name}-${peerId.toString()}-${suffix}.snapshot`;
    if (workMs > 0) await new Promise((resolve) => setTimeout(resolve, workMs));
    const path = join(snapshotsDir, `${randomUUID()}.snapshot`);
    const { size, checksum } = await writeSnapshotFile(path, {
      meta: {
        format: SIM_SNAPSHOT_FORMAT,
        formatVersion: 1,
        qdrantVersion: version,
        collection: collection.name,
        createdAt: new Date().toISOString(),
        config: structuredClone(collection.config),
      },
      points: sortedPoints(collection),
    });
    const record: SnapshotRecord = { name, path, size, checksum, creationTime };
    const forCollection = snapshots.get(collection.name) ?? new Map<string, SnapshotRecord>();
    const previous = forCollection.get(name);
    if (previous) await rm(previous.path, { force: true });
    forCollection.set(name, record);
    snapshots.set(collection.name, forCollection);
    return record;
  }

  // SnapshotDescription.checksum and the upload's `checksum` parameter exist from Qdrant 1.8.0
  // (qdrant/qdrant#2840, #3381); an older server omits the first and ignores the second.
  const hasChecksums = (() => {
    const [major = 0, minor = 0] = version.split('.').map(Number);
    return major > 1 || (major === 1 && minor >= 8);
  })();
  const describe = (s: SnapshotRecord) => ({
    name: s.name,
    creation_time: s.creationTime,
    size: s.size,
    ...(hasChecksums ? { checksum: s.checksum } : {}),
  });


  /**
   * Follows lib/storage/src/content_manager/snapshots/recover.rs `_do_recover_from_snapshot`:
   * the name in the path is resolved through the aliases (toc/mod.rs `resolve_name`: an alias
   * wins over a collection of the same name), a missing collection is created from the
   * snapshot's config, and an existing one must have the snapshot's vectors config and shard
   * number ("Snapshot is not compatible with existing collection"). The priority only decides
   * between this node and *other active replicas*; the simulator is a single node holding every
   * replica, so every priority activates the snapshot's data (recover.rs: "If this is the only
   * replica, we can activate it").
   */
  async function recover(name: string, uploadPath: string, _priority: Priority): Promise<true> {
    let content;
    try {
      content = await readSnapshotFile(uploadPath);
    } catch (error) {
      throw wrongInput(`Snapshot is not a valid snapshot archive: ${(error as Error).message}`);
    }
    if (majorMinor(content.meta.qdrantVersion) !== majorMinor(version)) {
      throw wrongInput(
        `Snapshot of Qdrant ${content.meta.qdrantVersion} is not compatible with Qdrant ${version}: snapshots restore only into the same minor version`,
      );
    }
    const realName = aliases.get(name) ?? name;
    const existing = collections.get(realName);
    if (existing) {
      const live = existing.config.params;
      const snap = content.meta.config.params;
      if (canonicalJson(live.vectors) !== canonicalJson(snap.vectors)) {
        throw wrongInput(
          `Snapshot is not compatible with existing collection: Collection vectors: ${JSON.stringify(live.vectors)} Snapshot Vectors: ${JSON.stringify(snap.vectors)}`,
        );
      }
      if (live.shard_number !== snap.shard_number) {
        throw wrongInput(
          `Snapshot is not compatible with existing collection: Collection shard number: ${live.shard_number} Snapshot shard number: ${snap.shard_number}`,
        );
      }
    }
    collections.set(realName, {
      name: realName,
      config: existing ? existing.config : structuredClone(content.meta.config),
      points: new Map(content.points.map((p) => [String(p.id), structuredClone(p)])),
      // A recovered collection is optimized (indexed) afterwards: yellow for a while.
      indexingReads: indexingReadsAfterRecovery,
    });
    return true;
  }

  function applyAliasActions(body: unknown): true {
    return applyAliasOperations(body, aliases, collections, true);
  }

  function upsert(collection: SimCollection, body: unknown): void {
    if (!isObject(body)) throw formatError('expected a JSON object');
    let raw: unknown[];
    if (Array.isArray(body.points)) raw = body.points;
    else if (isObject(body.batch) && Array.isArray(body.batch.ids)) {
      const { ids, vectors, payloads } = body.batch as { ids: unknown[]; vectors?: unknown; payloads?: unknown[] };
      raw = ids.map((id, i) => ({
        id,
        vector: Array.isArray(vectors)
          ? vectors[i]
          : isObject(vectors)
            ? Object.fromEntries(Object.entries(vectors).map(([k, list]) => [k, (list as unknown[])[i]]))
            : undefined,
        payload: payloads?.[i],
      }));
    } else throw formatError('expected `points` or `batch`');
    const prepared = raw.map((p) => preparePoint(collection, p));
    for (const p of prepared) collection.points.set(String(p.id), p);
  }


  function scroll(collection: SimCollection, body: unknown) {
    return scrollPage(body, () => sortedPoints(collection), 'Qdrant simulator');
  }

  function clusterStatus() {
    if (!clusterEnabled) return { status: 'disabled' };
    return clusterStatusBody(
      peerId,
      peerIds.map((id, index) => ({ id, index })),
      peerId,
    );
  }

  /** src/common/auth/mod.rs `validate_request`: the key's access, or a plain-text 401 (src/actix/auth.rs). */
  function authenticate(req: IncomingMessage, path: string): Access | { status: number; message: string } {
    if (!apiKey || AUTH_WHITELIST.has(path)) return { global: 'm' };
    const header = req.headers['api-key'];
    const bearer = req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : undefined;
    const key = (Array.isArray(header) ? header[0] : header) ?? bearer;
    if (!key) return { status: 401, message: 'Must provide an API key or an Authorization bearer token' };
    if (key === apiKey) return { global: 'm' };
    if (readOnlyApiKey && key === readOnlyApiKey) return { global: 'r' };
    if (jwtRbac) {
      const access = accessFromJwt(key, apiKey);
      if (access) return access;
    }
    return { status: 401, message: 'Invalid API key or JWT' };
  }

  async function route(req: IncomingMessage, res: ServerResponse, started: bigint, url: URL, parts: string[], access: Access): Promise<void> {
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    const [first, name, sub, subName, action] = parts;

    if (parts.length === 0 && method === 'GET') {
      return send(res, 200, { title: 'qdrant - vector search engine', version, commit: 'c0ffee'.padEnd(40, '0') });
    }
    if (parts.length === 1 && ['healthz', 'livez', 'readyz'].includes(first ?? '') && method === 'GET') {
      return text(res, 200, 'healthz check passed');
    }
    if (first === 'cluster' && parts.length === 1 && method === 'GET') return ok(res, started, clusterStatus());
    if (first === 'aliases' && parts.length === 1 && method === 'GET') {
      return ok(res, started, {
        aliases: [...aliases.entries()]
          .filter(([, collection]) => canSeeCollection(access, collection))
          .sort()
          .map(([alias_name, collection_name]) => ({ alias_name, collection_name })),
      });
    }
    if (first !== 'collections') throw new QdrantSimError(404, `Not found: ${method} ${url.pathname}`);

    if (parts.length === 1 && method === 'GET') {
      // toc.all_collections(access): a collection-scoped token lists only its collections.
      return ok(res, started, {
        collections: [...collections.keys()]
          .filter((n) => canSeeCollection(access, n))
          .sort()
          .map((n) => ({ name: n })),
      });
    }
    // GET /collections/aliases is not an endpoint: Qdrant reads it as the collection "aliases".
    if (name === 'aliases' && parts.length === 2 && method === 'POST') {
      return ok(res, started, applyAliasActions(await readJson(req, MAX_JSON_BODY)));
    }
    if (name === undefined) throw new QdrantSimError(404, `Not found: ${method} ${url.pathname}`);

    if (parts.length === 2) {
      if (method === 'GET') return ok(res, started, collectionInfo(getCollection(name)));
      if (method === 'PUT') {
        validateCollectionName(name);
        const body = await readJson(req, MAX_JSON_BODY);
        if (collections.has(name)) throw new QdrantSimError(409, `Wrong input: Collection \`${name}\` already exists!`);
        if (aliases.has(name)) throw new QdrantSimError(409, `Wrong input: Alias with name \`${name}\` already exists`);
        collections.set(name, { name, config: configFromCreateRequest(body), points: new Map() });
        return ok(res, started, true);
      }
      if (method === 'DELETE') {
        const existed = collections.delete(name);
        for (const [alias, target] of [...aliases]) if (target === name) aliases.delete(alias);
        return ok(res, started, existed);
      }
    }
    if (sub === 'exists' && parts.length === 3 && method === 'GET') return ok(res, started, { exists: collections.has(name) });
    if (sub === 'aliases' && parts.length === 3 && method === 'GET') {
      const c = getCollection(name);
      return ok(res, started, { aliases: aliasesOf(c.name) });
    }
    if (sub === 'points') {
      const c = getCollection(name);
      if (parts.length === 3 && method === 'PUT') {
        const wait = boolParam(q, 'wait', false);
        upsert(c, await readJson(req, MAX_JSON_BODY));
        return ok(res, started, { operation_id: operationId++, status: wait ? 'completed' : 'acknowledged' });
      }
      if (parts.length === 4 && subName === 'scroll' && method === 'POST') return ok(res, started, scroll(c, await readJson(req, MAX_JSON_BODY)));
      if (parts.length === 4 && subName === 'count' && method === 'POST') {
        // CountRequest.exact defaults to true (Qdrant's OpenAPI); false gives the estimate.
        const body = await readJson(req, MAX_JSON_BODY);
        const exact = !(isObject(body) && body.exact === false);
        return ok(res, started, { count: exact ? c.points.size : approximateCount(c) });
      }
    }
    if (sub === 'snapshots') {
      if (parts.length === 3 && method === 'GET') {
        const c = getCollection(name);
        return ok(res, started, [...(snapshots.get(c.name)?.values() ?? [])].map(describe));
      }
      if (parts.length === 3 && method === 'POST') {
        const c = getCollection(name);
        const wait = boolParam(q, 'wait', true);
        const workMs = snapshotWork.get(req) ?? 0;
        if (!wait) {
          void createSnapshot(c, workMs).catch(() => undefined);
          return accepted(res, started);
        }
        const record = await createSnapshot(c, workMs);
        if (res.destroyed) return; // the client is gone; the snapshot stays, as in Qdrant
        return ok(res, started, describe(record));
      }
      if (parts.length === 4 && subName === 'upload' && method === 'POST' && action === undefined) {
        return await handleUpload(req, res, started, name, q);
      }
      if (parts.length === 4 && subName !== undefined) {
        const c = getCollection(name);
        const record = snapshots.get(c.name)?.get(subName);
        if (!record) throw notFound(`Snapshot file \`${subName}\` does not exist!`);
        if (method === 'GET') return await download(req, res, record, url.pathname);
        if (method === 'DELETE') {
          const wait = boolParam(q, 'wait', true);
          snapshots.get(c.name)?.delete(subName);
          await rm(record.path, { force: true });
          return wait ? ok(res, started, true) : accepted(res, started);
        }
      }
    }
    throw new QdrantSimError(404, `Not found: ${method} ${url.pathname}`);
  }

  /**
   * A local snapshot file is served by actix-files `NamedFile` (lib/collection/src/common/
   * snapshot_stream.rs `SnapshotStream::LocalFS`): `Accept-Ranges: bytes`, an ETag and
   * Last-Modified, `Range: bytes=N-[M]` answered 206 with `Content-Range`, an unsatisfiable
   * range 416, and `If-Range` that no longer matches the full file with 200.
   */
  async function download(req: IncomingMessage, res: ServerResponse, record: SnapshotRecord, path: string): Promise<void> {
    const etag = `"${record.checksum.slice(0, 16)}-${record.size.toString(16)}"`;
    const lastModified = new Date(`${record.creationTime}Z`).toUTCString();
    const sending = startSnapshotDownload(req, res, record, etag, [etag, lastModified], { 'last-modified': lastModified });
    if (!sending) return;
    const { start, end } = sending;
    const flipAt = corruptDownloads ? Math.floor(record.size / 2) : -1;
    let offset = start;
    const cut = failures.find(
      (f) =>
        f.remaining > 0 &&
        shapesDownload(f) &&
        (!f.method || f.method.toUpperCase() === 'GET') &&
        (f.path === undefined || (typeof f.path === 'string' ? path.startsWith(f.path) : f.path.test(path))),
    );
    if (cut) cut.remaining -= 1;
    let sent = 0;
    const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => res.write(chunk, (e) => (e ? reject(e) : resolve())));
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const trickleUntil = cut?.trickleEveryMs !== undefined ? Date.now() + (cut.trickleForMs ?? 0) : 0;
    let stallPending = cut?.stallMs !== undefined;
    /** Sends `chunk` shaped by the trickle/stall hooks; false when the client went away. */
    const shapedWrite = async (chunk: Buffer): Promise<boolean> => {
      let rest = chunk;
      while (rest.length > 0) {
        if (res.destroyed) return false;
        if (stallPending && sent >= (cut?.stallAfterBytes ?? 1)) {
          stallPending = false;
          await pause(cut?.stallMs ?? 0);
          continue;
        }
        const trickling = Date.now() < trickleUntil;
        const limit = stallPending ? Math.max(1, (cut?.stallAfterBytes ?? 1) - sent) : rest.length;
        const n = trickling ? 1 : Math.min(limit, rest.length);
        await write(rest.subarray(0, n));
        sent += n;
        rest = rest.subarray(n);
        if (trickling) await pause(cut?.trickleEveryMs ?? 0);
      }
      return true;
    };
    for await (const raw of createReadStream(record.path, { start, end, highWaterMark: 16 * 1024 })) {
      let chunk = raw as Buffer;
      if (flipAt >= offset && flipAt < offset + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[flipAt - offset] = (chunk[flipAt - offset] ?? 0) ^ 0xff;
      }
      offset += chunk.length;
      if (cut && !(cut.cutAfterBytes === undefined)) {
        if (sent + chunk.length < cut.cutAfterBytes) {
          sent += chunk.length;
          if (res.destroyed) return;
          await write(chunk);
          continue;
        }
        // Flush what fits, then break the connection midway.
        await write(chunk.subarray(0, (cut.cutAfterBytes as number) - sent));
        res.socket?.destroy();
        return;
      }
      if (!(await shapedWrite(chunk))) return;
    }
    res.end();
  }

  async function handleUpload(req: IncomingMessage, res: ServerResponse, started: bigint, name: string, q: URLSearchParams): Promise<void> {
    validateCollectionName(name);
    // Qdrant's default priority is `snapshot` (lib/collection/src/operations/snapshot_ops.rs,
    // `#[default] Snapshot` on SnapshotPriority).
    const priorityParam = q.get('priority') ?? 'snapshot';
    if (!(PRIORITIES as readonly string[]).includes(priorityParam)) {
      req.resume();
      throw badRequest(`Query deserialize error: unknown variant \`${priorityParam}\`, expected one of \`no_sync\`, \`snapshot\`, \`replica\``);
    }
    const checksum = hasChecksums ? q.get('checksum') : null;
    if (checksum !== null && !/^[0-9a-fA-F]{64}$/.test(checksum)) {
      req.resume();
      throw badRequest('Validation error in query parameters: checksum: must be a SHA256 hash (64 hex characters)');
    }
    const wait = boolParam(q, 'wait', true);
    const upload = await receiveUpload(req, snapshotsDir);
    const work = async () => {
      if (checksum !== null && upload.checksum !== checksum.toLowerCase()) {
        // The multipart temp file is dropped: nothing stays on the server.
        await rm(upload.path, { force: true });
        throw new QdrantSimError(400, `Checksum mismatch: expected ${upload.checksum}, actual ${checksum.toLowerCase()}`);
      }
      // src/actix/api/snapshot_api.rs `do_save_uploaded_snapshot`: the upload is moved into
      // snapshots/<collection name as in the path>/<uploaded file name> and recovered from
      // there as a persistent local file (snapshots/download.rs `MaybeTempPath::Persistent`):
      // Qdrant keeps it, after a successful recovery and after a failed one
      // (qdrant/qdrant#10207). A file of the same name is replaced.
      const kept = keepUploadedFile(name, upload);
      return await recover(name, kept.path, priorityParam as Priority);
    };
    if (!wait) {
      void work().catch(() => undefined);
      return accepted(res, started);
    }
    return ok(res, started, await work());
  }

  function keepUploadedFile(pathName: string, upload: { path: string; checksum: string; size: number; filename: string }): SnapshotRecord {
    const record: SnapshotRecord = {
      name: upload.filename,
      path: upload.path,
      size: upload.size,
      checksum: upload.checksum,
      creationTime: new Date().toISOString().slice(0, 19),
    };
    const forCollection = snapshots.get(pathName) ?? new Map<string, SnapshotRecord>();
    const previous = forCollection.get(record.name);
    if (previous) void rm(previous.path, { force: true });
    forCollection.set(record.name, record);
    snapshots.set(pathName, forCollection);
    return record;
  }

  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const parts = url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
    const entry: QdrantSimulatorRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      ...(typeof req.headers.range === 'string' ? { range: req.headers.range } : {}),
    };
    requestLog.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });

    const injected = failures.find(
      (f) =>
        f.remaining > 0 &&
        !shapesDownload(f) &&
        (!f.method || f.method.toUpperCase() === entry.method) &&
        (f.path === undefined || (typeof f.path === 'string' ? url.pathname.startsWith(f.path) : f.path.test(url.pathname))),
    );
    if (injected) {
      injected.remaining -= 1;
      if (injected.workMs !== undefined) snapshotWork.set(req, injected.workMs);
      if (injected.workMs !== undefined && !injected.processAnyway && !injected.reset) {
        // Only slow: the request is handled normally, late.
        handle(req, res, started, url, parts, entry);
        return;
      }
      if (injected.reset) {
        req.socket.destroy();
        return;
      }
      if (injected.processAnyway) {
        // The work happens; the answer the client sees is the proxy's.
        const sink = new ServerResponseSink();
        const access = authenticate(req, url.pathname);
        if (!('status' in access)) {
          let answered = false;
          const answer = () => {
            if (answered) return;
            answered = true;
            text(res, injected.status ?? 504, 'upstream request timeout');
          };
          if (injected.answerAfterMs !== undefined) setTimeout(answer, injected.answerAfterMs);
          route(req, sink as unknown as ServerResponse, started, url, parts, access).catch(() => undefined).finally(answer);
          return;
        }
      }
      req.resume();
      req.on('end', () => fail(res, started, new QdrantSimError(injected.status ?? 503, 'Service internal error: simulated failure')));
      return;
    }
    handle(req, res, started, url, parts, entry);
  });

  function handle(req: IncomingMessage, res: ServerResponse, started: bigint, url: URL, parts: string[], entry: QdrantSimulatorRequest): void {
    const access = authenticate(req, url.pathname);
    if ('status' in access) {
      req.resume();
      text(res, access.status, access.message);
      return;
    }
    const forbidden = accessDenied(access, routeAccess(entry.method, parts));
    if (forbidden) {
      // Checked before the body is read (snapshot_api.rs: ActixAccessManage comes before the
      // MultipartForm extractor, GHSA-3v92-w72v-j994).
      req.resume();
      fail(res, started, new QdrantSimError(403, `Forbidden: ${forbidden}`));
      return;
    }
    route(req, res, started, url, parts, access).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const simError =
        error instanceof QdrantSimError ? error : new QdrantSimError(500, `Service internal error: ${(error as Error).message}`);
      if (!req.complete) req.resume();
      fail(res, started, simError);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  let stopped = false;
  const unregister = registerCleanup(() => {
    server.closeAllConnections();
    server.close();
  });
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await dir.remove();
  };

  return {
    url: `http://127.0.0.1:${port}`,
    ...(apiKey !== undefined ? { apiKey } : {}),
    version,
    peerId: peerId.toString(),
    snapshotsDir,
    stop,
    collections: () =>
      [...collections.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((c) => ({
          name: c.name,
          vectors: structuredClone(c.config.params.vectors),
          pointsCount: c.points.size,
          points: sortedPoints(c).map((p) => structuredClone(p)),
          aliases: aliasesOf(c.name).map((a) => a.alias_name),
        })),
    snapshots: () =>
      [...snapshots.entries()].flatMap(([collection, m]) =>
        [...m.values()].map((s) => ({ collection, name: s.name, size: s.size, checksum: s.checksum })),
      ),
    requests: () => requestLog.map((r) => ({ ...r, query: { ...r.query } })),
    setCorruptDownloads(on: boolean) {
      corruptDownloads = on;
    },
    failNext(failure: QdrantSimulatorFailure = {}) {
      failures.push({ ...failure, remaining: failure.count ?? 1 });
    },
  };
}
