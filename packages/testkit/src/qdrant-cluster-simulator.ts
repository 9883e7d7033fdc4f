/**
 * A multi-peer Qdrant CLUSTER simulator for tests: one real HTTP server on loopback per peer,
 * sharing one consensus state (collections, shard placement, replica states, aliases), each
 * peer holding the points of its own replicas and its own shard snapshot files. It follows
 * Qdrant's REST API as read in qdrant/qdrant (commit 74f3e85b, 2026-08) for these endpoints:
 *
 * - `GET /cluster` (src/actix/api/cluster_api.rs; lib/storage/src/types.rs `ClusterStatus`,
 *   `ClusterInfo`, `PeerInfo`: `peers` maps peer ids to their *p2p* URI, port 6335 by default,
 *   not the REST URL). `distributed: false` answers `{ status: "disabled" }` as a standalone node.
 * - `GET /collections/{c}/cluster` (src/actix/api/collections_api.rs `get_cluster_info`;
 *   lib/collection/src/operations/types.rs `CollectionClusterInfo`, `LocalShardInfo`,
 *   `RemoteShardInfo`; replica states as lib/collection/src/shards/replica_set/
 *   replica_set_state.rs `ReplicaState`, serialised `"Active"`, `"Dead"`, ...).
 * - Shard snapshots (src/actix/api/snapshot_api.rs, src/common/snapshots.rs,
 *   lib/collection/src/shards/shard_holder/mod.rs):
 *   `GET|POST /collections/{c}/shards/{s}/snapshots`, `GET|DELETE .../snapshots/{name}`,
 *   `POST .../snapshots/upload?priority&checksum&wait` (POST, not PUT), and
 *   `PUT .../snapshots/recover` `{ location, priority?, checksum?, api_key? }`.
 *   Names are `{collection}-shard-{s}-{YYYY-MM-DD-HH-MM-SS}.snapshot`. The upload answers
 *   `"result": null` (its future yields `()`, src/actix/helpers.rs `time_or_accept` with
 *   lib/api/src/rest/models.rs `ApiResponse`), recover and delete answer `true`. A shard id the
 *   collection does not have is `404 Not found: shard {s} not found` (`shard_not_found_error`);
 *   a shard of the collection that has no replica on the asked peer is
 *   `400 Wrong input: Shard {s} is not a local or queue proxy shard` (create, download, delete)
 *   or `... is not a local shard` (list). An uploaded shard snapshot is recovered from a temp
 *   file (`MaybeTempPath::from(form.snapshot.file.into_temp_path())`): unlike a collection
 *   snapshot upload, nothing is kept on the server. The collection must exist
 *   (`assert_shard_exists`): a shard upload never creates it.
 * - Recovery priority (src/common/snapshots.rs `recover_shard_snapshot_impl`): with no other
 *   active replica the recovered one is activated; otherwise `snapshot` activates it and sets the
 *   other replicas `Dead`, `replica` sets the recovered one `Dead`, `no_sync` activates it and
 *   leaves the others as they are. Qdrant then re-syncs `Dead` replicas from an active one by
 *   shard transfer; the simulator does that after `transferDelayMs` (copying the points).
 * - `PUT /collections/{c}` with `shard_number`, `replication_factor`, `sharding_method`;
 *   `PUT /collections/{c}/shards` (create a shard key: `shard_key`, `shards_number`,
 *   `replication_factor`, `placement`); points upsert/scroll/count, `GET /collections`,
 *   `GET /aliases`, `POST /collections/aliases`, `DELETE /collections/{c}`.
 *
 * Differences, on purpose and listed so none is hidden: points are routed to shards by FNV-1a
 * of the point id modulo the shard count, not Qdrant's hash ring (consistent within the
 * simulator, which is all a shard snapshot round trip needs); replicas are placed round-robin
 * (shard s on peers s, s+1, ... mod N); collection info, count and scroll fail with 500 while
 * a shard has no reachable Active replica (as Qdrant's do: lib/collection/src/collection/
 * collection_ops.rs `info` propagates each shard's error; the message is the simulator's); a peer that is stopped refuses connections while the others keep reporting its
 * replicas with their last state (Qdrant marks them Dead only after a failed operation);
 * uploading a shard snapshot to a peer that holds no replica of that shard is refused with
 * 400 (the source never does it; Qdrant's behaviour there is not modelled); only the
 * read-write `api-key` is modelled (no read-only key, no JWT). Snapshot files use the
 * simulator's own tar format (./qdrant-simulator/snapshot-file.ts), not Qdrant's segments.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeTempDir } from './temp-dir.js';
import { registerCleanup } from './cleanup.js';
import {
  QdrantSimError,
  badRequest,
  collectionNotFound,
  comparePointIds,
  configFromCreateRequest,
  formatError,
  isObject,
  notFound,
  preparePoint,
  validateCollectionName,
  wrongInput,
  type CollectionConfig,
  type SimCollection,
  type StoredPoint,
} from './qdrant-simulator/state.js';
import { accepted, boolParam, clusterStatusBody, fail, majorMinor, ok, randomU64, readJson, receiveUpload, scrollPage, send, snapshotTimestamp, startSnapshotDownload, applyAliasOperations, type SnapshotRecord } from './qdrant-simulator/wire.js';
import { SIM_SNAPSHOT_FORMAT, readSnapshotFile, writeSnapshotFile } from './qdrant-simulator/snapshot-file.js';
import type { QdrantSimulatorCollection } from './qdrant-simulator.js';

export type SimReplicaState = 'Active' | 'Dead' | 'Partial';
type Priority = 'no_sync' | 'snapshot' | 'replica';
const PRIORITIES: readonly string[] = ['no_sync', 'snapshot', 'replica'];

export interface QdrantClusterSimulatorOptions {
  /** Number of peers, default 3. */
  peers?: number;
  apiKey?: string;
  /** Version reported by `GET /` and written into snapshots. Default '1.13.2'. */
  version?: string;
  /** false (only with one peer): `GET /cluster` answers `disabled`, as a standalone Qdrant. Default true. */
  distributed?: boolean;
  /** How long a replica set Dead by a recovery stays Dead before the simulated shard transfer re-syncs it. Default 20 ms. */
  transferDelayMs?: number;
}

export interface QdrantClusterPeer {
  index: number;
  /** u64 as decimal string. */
  peerId: string;
  /** REST URL, e.g. http://127.0.0.1:40123. */
  url: string;
  /** What `GET /cluster` reports for this peer (a p2p URI, not the REST URL). */
  p2pUri: string;
  running(): boolean;
  /** The peer goes down: its server closes, connections are refused. */
  stop(): Promise<void>;
  /** The peer comes back on the same port. */
  start(): Promise<void>;
}

export interface QdrantClusterShardPlacement {
  shardId: number;
  shardKey?: string | number;
  replicas: { peerId: string; state: SimReplicaState; points: number }[];
}

export interface QdrantClusterRequest {
  peer: number;
  method: string;
  path: string;
  query: Record<string, string>;
  status?: number;
}

export interface QdrantClusterFailure {
  /** Peer index; omitted: any peer. */
  peer?: number;
  method?: string;
  path?: string | RegExp;
  count?: number;
  status?: number;
  reset?: boolean;
  /** Snapshot downloads only: send this many body bytes, then break the connection. */
  cutAfterBytes?: number;
}

export interface QdrantClusterSimulator {
  peers: QdrantClusterPeer[];
  /** URL of peer 0. */
  url: string;
  apiKey?: string;
  version: string;
  /** peer id -> REST URL, the mapping a client needs to reach every peer. */
  peerUrls(): Record<string, string>;
  /** Every collection with all its points (read from the first live active replica of each shard). */
  collections(): QdrantSimulatorCollection[];
  placement(collection: string): QdrantClusterShardPlacement[];
  /** Shard snapshot files on the peers. */
  snapshots(): { peer: number; collection: string; shardId: number; name: string; size: number }[];
  requests(): QdrantClusterRequest[];
  failNext(failure?: QdrantClusterFailure): void;
  stop(): Promise<void>;
}

interface Replica {
  state: SimReplicaState;
  points: Map<string, StoredPoint>;
}

interface Shard {
  id: number;
  key?: string | number;
  replicas: Map<string, Replica>;
}

interface ClusterCollection {
  name: string;
  config: CollectionConfig & { params: CollectionConfig['params'] & { sharding_method?: 'auto' | 'custom' } };
  shards: Map<number, Shard>;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export async function startQdrantCluster(options: QdrantClusterSimulatorOptions = {}): Promise<QdrantClusterSimulator> {
  const count = Math.max(1, options.peers ?? 3);
  const distributed = options.distributed ?? true;
  if (!distributed && count > 1) throw new Error('distributed: false needs peers: 1');
  const version = options.version ?? '1.13.2';
  const apiKey = options.apiKey;
  const transferDelayMs = options.transferDelayMs ?? 20;
  const dir = await makeTempDir('qdrant-cluster-');
  const collections = new Map<string, ClusterCollection>();
  const aliases = new Map<string, string>();
  const requestLog: QdrantClusterRequest[] = [];
  const failures: (QdrantClusterFailure & { remaining: number })[] = [];
  let operationId = 0;
  const timers = new Set<NodeJS.Timeout>();

  interface PeerState {
    index: number;
    id: bigint;
    server: Server;
    port: number;
    up: boolean;
    /** `${collection}\u0000${shard}` -> snapshot name -> record */
    snapshots: Map<string, Map<string, SnapshotRecord>>;
  }
  const peers: PeerState[] = [];
  const idOf = (p: PeerState) => p.id.toString();
  const peerById = (id: string) => peers.find((p) => idOf(p) === id);
  const live = (id: string) => peerById(id)?.up === true;

  const getCollection = (name: string): ClusterCollection => {
    const c = collections.get(name) ?? collections.get(aliases.get(name) ?? '');
    if (!c) throw collectionNotFound(name);
    return c;
  };
  const shardOf = (c: ClusterCollection, id: number): Shard => {
    const s = c.shards.get(id);
    if (!s) throw notFound(`shard ${id} not found`);
    return s;
  };
  const localReplica = (s: Shard, peer: PeerState, list = false): Replica => {
    const r = s.replicas.get(idOf(peer));
    if (!r) throw wrongInput(list ? `Shard ${s.id} is not a local shard` : `Shard ${s.id} is not a local or queue proxy shard`);
    return r;
  };
  /** The replica a read uses: an active one on a running peer, this peer's first. */
  const readReplica = (s: Shard, self: PeerState): Replica => {
    const mine = s.replicas.get(idOf(self));
    if (mine && mine.state === 'Active') return mine;
    for (const [id, r] of s.replicas) if (r.state === 'Active' && live(id)) return r;
    throw new QdrantSimError(500, `Service internal error: no active replica of shard ${s.id} is reachable`);
  };
  const allPoints = (c: ClusterCollection, self: PeerState): StoredPoint[] =>
    [...c.shards.values()].flatMap((s) => [...readReplica(s, self).points.values()]).sort((a, b) => comparePointIds(a.id, b.id));

  /** Round-robin: shard s on peers s, s+1, ... (mod N), min(replication_factor, N) replicas. */
  function placeShard(id: number, replicationFactor: number, key?: string | number, placement?: string[]): Shard {
    const ids = placement && placement.length > 0 ? placement : Array.from({ length: Math.min(replicationFactor, peers.length) }, (_, r) => idOf(peers[(id + r) % peers.length] as PeerState));
    return { id, ...(key !== undefined ? { key } : {}), replicas: new Map(ids.map((pid) => [pid, { state: 'Active' as const, points: new Map() }])) };
  }

  function scheduleResync(c: ClusterCollection, s: Shard): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (collections.get(c.name) !== c) return;
      const source = [...s.replicas.entries()].find(([id, r]) => r.state === 'Active' && live(id))?.[1];
      if (!source) return;
      for (const [id, r] of s.replicas) {
        if (r.state !== 'Dead' || !live(id)) continue;
        r.points = new Map([...source.points].map(([k, p]) => [k, structuredClone(p)]));
        r.state = 'Active';
      }
    }, transferDelayMs);
    timers.add(timer);
  }



  function parsePriority(q: URLSearchParams | string | undefined): Priority {
    const p = (typeof q === 'string' || q === undefined ? q : q.get('priority')) ?? 'snapshot';
    if (!PRIORITIES.includes(p)) throw badRequest(`Query deserialize error: unknown variant \`${p}\`, expected one of \`no_sync\`, \`snapshot\`, \`replica\``);
    return p as Priority;
  }

  function createCollection(name: string, body: unknown): void {
    validateCollectionName(name);
    if (collections.has(name)) throw new QdrantSimError(409, `Wrong input: Collection \`${name}\` already exists!`);
    if (aliases.has(name)) throw new QdrantSimError(409, `Wrong input: Alias with name \`${name}\` already exists`);
    const config = configFromCreateRequest(body) as ClusterCollection['config'];
    const method = isObject(body) && body.sharding_method === 'custom' ? 'custom' : 'auto';
    if (method === 'custom') config.params.sharding_method = 'custom';
    const c: ClusterCollection = { name, config, shards: new Map() };
    if (method === 'auto') {
      for (let s = 0; s < config.params.shard_number; s++) c.shards.set(s, placeShard(s, config.params.replication_factor));
    }
    collections.set(name, c);
  }

  function createShardKey(c: ClusterCollection, body: unknown): true {
    if (c.config.params.sharding_method !== 'custom') throw badRequest('Shard key can only be created for collections with custom sharding');
    if (!isObject(body) || (typeof body.shard_key !== 'string' && typeof body.shard_key !== 'number')) throw formatError('missing field `shard_key`');
    const key = body.shard_key;
    if ([...c.shards.values()].some((s) => s.key === key)) throw wrongInput(`Sharding key ${String(key)} already exists for collection ${c.name}`);
    const n = typeof body.shards_number === 'number' ? body.shards_number : c.config.params.shard_number;
    const rf = typeof body.replication_factor === 'number' ? body.replication_factor : c.config.params.replication_factor;
    const placement = Array.isArray(body.placement) ? body.placement.map(String) : undefined;
    for (const pid of placement ?? []) if (!peerById(pid)) throw wrongInput(`Peer ${pid} does not exist`);
    for (let i = 0; i < n; i++) {
      const id = c.shards.size === 0 ? 0 : Math.max(...c.shards.keys()) + 1;
      c.shards.set(id, placeShard(id, rf, key, placement));
    }
    return true;
  }

  function upsert(c: ClusterCollection, body: unknown): void {
    if (!isObject(body) || !Array.isArray(body.points)) throw formatError('expected `points`');
    const sim: SimCollection = { name: c.name, config: c.config, points: new Map() };
    const prepared = body.points.map((p) => preparePoint(sim, p));
    let shards: Shard[];
    if (c.config.params.sharding_method === 'custom') {
      const key = body.shard_key;
      if (key === undefined) throw badRequest('Shard key is required for collections with custom sharding');
      shards = [...c.shards.values()].filter((s) => s.key === key);
      if (shards.length === 0) throw badRequest(`Shard key ${String(key)} not found`);
    } else {
      shards = [...c.shards.values()].sort((a, b) => a.id - b.id);
    }
    for (const p of prepared) {
      const shard = shards[fnv1a(String(p.id)) % shards.length] as Shard;
      for (const [pid, r] of shard.replicas) {
        if (!live(pid)) {
          r.state = 'Dead'; // a failed write marks the replica dead
          continue;
        }
        if (r.state === 'Active' || r.state === 'Partial') r.points.set(String(p.id), structuredClone(p));
      }
    }
  }

  function scroll(c: ClusterCollection, self: PeerState, body: unknown) {
    return scrollPage(body, () => allPoints(c, self), 'Qdrant cluster simulator');
  }


  function collectionInfo(c: ClusterCollection, self: PeerState) {
    const points = allPoints(c, self).length;
    return {
      status: 'green',
      optimizer_status: 'ok',
      indexed_vectors_count: 0,
      points_count: points,
      segments_count: Math.max(1, c.shards.size),
      config: structuredClone(c.config),
      payload_schema: {},
    };
  }

  function clusterInfo(c: ClusterCollection, self: PeerState) {
    const local: unknown[] = [];
    const remote: unknown[] = [];
    for (const s of [...c.shards.values()].sort((a, b) => a.id - b.id)) {
      for (const [pid, r] of s.replicas) {
        const key = s.key !== undefined ? { shard_key: s.key } : {};
        if (pid === idOf(self)) local.push({ shard_id: s.id, ...key, points_count: r.points.size, state: r.state });
        else remote.push({ shard_id: s.id, ...key, peer_id: BigInt(pid), state: r.state });
      }
    }
    return { peer_id: self.id, shard_count: c.shards.size, local_shards: local, remote_shards: remote, shard_transfers: [] };
  }

  const snapKey = (collection: string, shard: number) => `${collection}\u0000${shard}`;
  const describe = (s: SnapshotRecord) => ({ name: s.name, creation_time: s.creationTime, size: s.size, checksum: s.checksum });

  async function createShardSnapshot(c: ClusterCollection, s: Shard, self: PeerState): Promise<SnapshotRecord> {
    const replica = localReplica(s, self);
    const { suffix, creationTime } = snapshotTimestamp(new Date());
    const name = `${c.name}-shard-${s.id}-${suffix}.snapshot`;
    const path = join(dir.path, `${randomUUID()}.snapshot`);
    const { size, checksum } = await writeSnapshotFile(path, {
      meta: {
        format: SIM_SNAPSHOT_FORMAT,
        formatVersion: 1,
        qdrantVersion: version,
        collection: c.name,
        createdAt: new Date().toISOString(),
        config: structuredClone(c.config),
        shardId: s.id,
      },
      points: [...replica.points.values()].sort((a, b) => comparePointIds(a.id, b.id)),
    });
    const record = { name, path, size, checksum, creationTime };
    const m = self.snapshots.get(snapKey(c.name, s.id)) ?? new Map<string, SnapshotRecord>();
    const previous = m.get(name);
    if (previous) await rm(previous.path, { force: true });
    m.set(name, record);
    self.snapshots.set(snapKey(c.name, s.id), m);
    return record;
  }

  /** recover_shard_snapshot_impl: load the file into this peer's replica, then apply the priority. */
  async function recoverShard(c: ClusterCollection, s: Shard, self: PeerState, file: string, priority: Priority): Promise<true> {
    const replica = s.replicas.get(idOf(self));
    if (!replica) throw wrongInput(`Shard ${s.id} is not a local shard`);
    let content;
    try {
      content = await readSnapshotFile(file);
    } catch {
      throw badRequest('Invalid snapshot');
    }
    if (content.meta.shardId === undefined) throw badRequest('Invalid snapshot');
    if (majorMinor(content.meta.qdrantVersion) !== majorMinor(version)) {
      throw wrongInput(`Snapshot of Qdrant ${content.meta.qdrantVersion} is not compatible with Qdrant ${version}`);
    }
    replica.points = new Map(content.points.map((p) => [String(p.id), structuredClone(p)]));
    const others = [...s.replicas.entries()].filter(([pid, r]) => pid !== idOf(self) && r.state === 'Active');
    if (others.length === 0 || priority === 'no_sync') replica.state = 'Active';
    else if (priority === 'snapshot') {
      replica.state = 'Active';
      for (const [, r] of others) r.state = 'Dead';
    } else replica.state = 'Dead';
    if ([...s.replicas.values()].some((r) => r.state === 'Dead')) scheduleResync(c, s);
    return true;
  }


  /** Downloads `location` for `PUT .../snapshots/recover` (snapshots/download.rs). */
  function fetchTo(location: string, key: string | undefined, path: string): Promise<{ checksum: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(location, { headers: key ? { 'api-key': key } : {} }, (res) => {
        if ((res.statusCode ?? 0) >= 400) {
          res.resume();
          reject(new QdrantSimError(500, `Service internal error: Failed to download snapshot from ${location}: status ${res.statusCode}`));
          return;
        }
        const hash = createHash('sha256');
        res.on('data', (chunk: Buffer) => hash.update(chunk));
        pipeline(res, createWriteStream(path)).then(() => resolve({ checksum: hash.digest('hex') }), reject);
      });
      req.on('error', (e) => reject(new QdrantSimError(500, `Service internal error: Failed to download snapshot from ${location}: ${e.message}`)));
      req.end();
    });
  }

  async function download(req: IncomingMessage, res: ServerResponse, record: SnapshotRecord, cut: QdrantClusterFailure | undefined): Promise<void> {
    const etag = `"${record.checksum.slice(0, 16)}-${record.size.toString(16)}"`;
    const sending = startSnapshotDownload(req, res, record, etag, [etag]);
    if (!sending) return;
    const { start, end } = sending;
    let sent = 0;
    for await (const raw of createReadStream(record.path, { start, end, highWaterMark: 16 * 1024 })) {
      const chunk = raw as Buffer;
      if (cut?.cutAfterBytes !== undefined && sent + chunk.length >= cut.cutAfterBytes) {
        res.write(chunk.subarray(0, cut.cutAfterBytes - sent));
        res.socket?.destroy();
        return;
      }
      sent += chunk.length;
      if (res.destroyed) return;
      await new Promise<void>((resolve, reject) => res.write(chunk, (e) => (e ? reject(e) : resolve())));
    }
    res.end();
  }

  function applyAliasActions(body: unknown): true {
    return applyAliasOperations(body, aliases, collections, false);
  }

  function clusterStatus(self: PeerState) {
    if (!distributed) return { status: 'disabled' };
    return clusterStatusBody(self.id, peers, (peers[0] as PeerState).id);
  }

  async function route(self: PeerState, req: IncomingMessage, res: ServerResponse, started: bigint, url: URL, parts: string[]): Promise<void> {
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    const [first, name, sub, shardPart, snapPart, action] = parts;
    if (parts.length === 0 && method === 'GET') return send(res, 200, { title: 'qdrant - vector search engine', version, commit: 'c0ffee'.padEnd(40, '0') });
    if (parts.length === 1 && ['healthz', 'livez', 'readyz'].includes(first ?? '')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('healthz check passed');
      return;
    }
    if (first === 'cluster' && parts.length === 1 && method === 'GET') return ok(res, started, clusterStatus(self));
    if (first === 'aliases' && parts.length === 1 && method === 'GET') {
      return ok(res, started, { aliases: [...aliases.entries()].sort().map(([alias_name, collection_name]) => ({ alias_name, collection_name })) });
    }
    if (first !== 'collections') throw new QdrantSimError(404, `Not found: ${method} ${url.pathname}`);
    if (parts.length === 1 && method === 'GET') return ok(res, started, { collections: [...collections.keys()].sort().map((n) => ({ name: n })) });
    if (name === 'aliases' && parts.length === 2 && method === 'POST') return ok(res, started, applyAliasActions(await readJson(req)));
    if (name === undefined) throw new QdrantSimError(404, `Not found: ${method} ${url.pathname}`);
    if (parts.length === 2) {
      if (method === 'GET') return ok(res, started, collectionInfo(getCollection(name), self));
      if (method === 'PUT') {
        createCollection(name, await readJson(req));
        return ok(res, started, true);
      }
      if (method === 'DELETE') {
        const c = collections.get(name);
        collections.delete(name);
        for (const [alias, target] of [...aliases]) if (target === name) aliases.delete(alias);
        for (const p of peers) for (const key of [...p.snapshots.keys()]) if (c && key.startsWith(`${name}\u0000`)) p.snapshots.delete(key);
        return ok(res, started, Boolean(c));
      }
    }
    const c = getCollection(name);
    if (sub === 'cluster' && parts.length === 3 && method === 'GET') return ok(res, started, clusterInfo(c, self));
    if (sub === 'shards' && parts.length === 3 && method === 'PUT') return ok(res, started, createShardKey(c, await readJson(req)));
    if (sub === 'points') {
      if (parts.length === 3 && method === 'PUT') {
        upsert(c, await readJson(req));
        return ok(res, started, { operation_id: operationId++, status: boolParam(q, 'wait', false) ? 'completed' : 'acknowledged' });
      }
      if (parts.length === 4 && shardPart === 'scroll' && method === 'POST') return ok(res, started, scroll(c, self, await readJson(req)));
      if (parts.length === 4 && shardPart === 'count' && method === 'POST') {
        await readJson(req);
        return ok(res, started, { count: allPoints(c, self).length });
      }
    }
    if (sub === 'shards' && shardPart !== undefined && snapPart === 'snapshots') {
      if (!/^\d+$/.test(shardPart)) throw badRequest(`Path deserialize error: can not parse "${shardPart}" to a u32`);
      const shard = shardOf(c, Number(shardPart));
      const key = snapKey(c.name, shard.id);
      if (parts.length === 5 && method === 'GET') {
        localReplica(shard, self, true);
        return ok(res, started, [...(self.snapshots.get(key)?.values() ?? [])].map(describe));
      }
      if (parts.length === 5 && method === 'POST') {
        localReplica(shard, self);
        const wait = boolParam(q, 'wait', true);
        if (!wait) {
          void createShardSnapshot(c, shard, self).catch(() => undefined);
          return accepted(res, started);
        }
        const record = await createShardSnapshot(c, shard, self);
        if (res.destroyed) return;
        return ok(res, started, describe(record));
      }
      if (parts.length === 6 && action === 'upload' && method === 'POST') {
        const priority = parsePriority(q);
        const checksum = q.get('checksum');
        const wait = boolParam(q, 'wait', true);
        const upload = await receiveUpload(req, dir.path);
        const work = async () => {
          try {
            if (checksum !== null && upload.checksum !== checksum.toLowerCase()) {
              throw new QdrantSimError(400, `Checksum mismatch: expected ${upload.checksum}, actual ${checksum.toLowerCase()}`);
            }
            await recoverShard(c, shard, self, upload.path, priority);
            // The handler's future yields `()`: `"result": null` (recover answers `true`).
            return null;
          } finally {
            // A temp path: removed after the recovery, whatever its outcome.
            await rm(upload.path, { force: true });
          }
        };
        if (!wait) {
          void work().catch(() => undefined);
          return accepted(res, started);
        }
        return ok(res, started, await work());
      }
      if (parts.length === 6 && action === 'recover' && method === 'PUT') {
        const body = await readJson(req);
        if (!isObject(body) || typeof body.location !== 'string') throw formatError('missing field `location`');
        const priority = parsePriority(typeof body.priority === 'string' ? body.priority : undefined);
        const tmp = join(dir.path, `${randomUUID()}.download`);
        try {
          let path = tmp;
          let checksum: string;
          if (/^https?:\/\//.test(body.location)) {
            ({ checksum } = await fetchTo(body.location, typeof body.api_key === 'string' ? body.api_key : undefined, tmp));
          } else {
            const record = self.snapshots.get(key)?.get(body.location);
            if (!record) throw notFound(`Snapshot ${body.location}`);
            path = record.path;
            checksum = record.checksum;
          }
          if (typeof body.checksum === 'string' && body.checksum.toLowerCase() !== checksum) {
            throw wrongInput(`Snapshot checksum mismatch: expected ${body.checksum}, got ${checksum}`);
          }
          return ok(res, started, await recoverShard(c, shard, self, path, priority));
        } finally {
          await rm(tmp, { force: true });
        }
      }
      if (parts.length === 6) {
        localReplica(shard, self);
        const record = self.snapshots.get(key)?.get(action as string);
        if (!record) throw notFound(`Snapshot file \`${action}\` does not exist!`);
        if (method === 'GET') {
          const cut = failures.find((f) => f.remaining > 0 && f.cutAfterBytes !== undefined && matches(f, self, 'GET', url.pathname));
          if (cut) cut.remaining -= 1;
          return await download(req, res, record, cut);
        }
        if (method === 'DELETE') {
          self.snapshots.get(key)?.delete(record.name);
          await rm(record.path, { force: true });
          return boolParam(q, 'wait', true) ? ok(res, started, true) : accepted(res, started);
        }
      }
    }
    throw new QdrantSimError(404, `Not found: ${method} ${url.pathname}`);
  }

  const matches = (f: QdrantClusterFailure, self: PeerState, method: string, path: string) =>
    (f.peer === undefined || f.peer === self.index) &&
    (!f.method || f.method.toUpperCase() === method) &&
    (f.path === undefined || (typeof f.path === 'string' ? path.startsWith(f.path) : f.path.test(path)));

  function handler(self: PeerState) {
    return (req: IncomingMessage, res: ServerResponse) => {
      const started = process.hrtime.bigint();
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const method = req.method ?? 'GET';
      const entry: QdrantClusterRequest = { peer: self.index, method, path: url.pathname, query: Object.fromEntries(url.searchParams) };
      requestLog.push(entry);
      res.on('finish', () => void (entry.status = res.statusCode));
      let parts: string[];
      try {
        parts = url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
      } catch {
        req.resume();
        return fail(res, started, badRequest('invalid path encoding'));
      }
      const injected = failures.find((f) => f.remaining > 0 && f.cutAfterBytes === undefined && matches(f, self, method, url.pathname));
      if (injected) {
        injected.remaining -= 1;
        if (injected.reset) {
          req.socket.destroy();
          return;
        }
        req.resume();
        req.on('end', () => fail(res, started, new QdrantSimError(injected.status ?? 503, 'Service internal error: simulated failure')));
        return;
      }
      if (apiKey && !['/', '/healthz', '/readyz', '/livez'].includes(url.pathname)) {
        const given = req.headers['api-key'] ?? (req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : undefined);
        if (given !== apiKey) {
          req.resume();
          res.writeHead(401, { 'content-type': 'text/plain' });
          res.end(given ? 'Invalid API key or JWT' : 'Must provide an API key or an Authorization bearer token');
          return;
        }
      }
      route(self, req, res, started, url, parts).catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const e = error instanceof QdrantSimError ? error : new QdrantSimError(500, `Service internal error: ${(error as Error).message}`);
        if (!req.complete) req.resume();
        fail(res, started, e);
      });
    };
  }

  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const close = (server: Server) =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  for (let i = 0; i < count; i++) {
    const state = { index: i, id: randomU64(), port: 0, up: true, snapshots: new Map() } as unknown as PeerState;
    state.server = createServer(handler(state));
    state.port = await listen(state.server, 0);
    peers.push(state);
  }
  const unregister = registerCleanup(() => {
    for (const p of peers) {
      p.server.closeAllConnections();
      p.server.close();
    }
  });

  const peerViews: QdrantClusterPeer[] = peers.map((p) => ({
    index: p.index,
    peerId: idOf(p),
    url: `http://127.0.0.1:${p.port}`,
    p2pUri: `http://qdrant-${p.index}.qdrant-headless:6335/`,
    running: () => p.up,
    async stop() {
      if (!p.up) return;
      p.up = false;
      await close(p.server);
    },
    async start() {
      if (p.up) return;
      p.server = createServer(handler(p));
      await listen(p.server, p.port);
      p.up = true;
    },
  }));

  let stopped = false;
  return {
    peers: peerViews,
    url: (peerViews[0] as QdrantClusterPeer).url,
    ...(apiKey !== undefined ? { apiKey } : {}),
    version,
    peerUrls: () => Object.fromEntries(peerViews.map((p) => [p.peerId, p.url])),
    collections: () =>
      [...collections.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((c) => {
          const points = allPoints(c, peers.find((p) => p.up) ?? (peers[0] as PeerState));
          return {
            name: c.name,
            vectors: structuredClone(c.config.params.vectors),
            pointsCount: points.length,
            points: points.map((p) => structuredClone(p)),
            aliases: [...aliases.entries()].filter(([, t]) => t === c.name).map(([a]) => a),
          };
        }),
    placement: (name) =>
      [...getCollection(name).shards.values()]
        .sort((a, b) => a.id - b.id)
        .map((s) => ({
          shardId: s.id,
          ...(s.key !== undefined ? { shardKey: s.key } : {}),
          replicas: [...s.replicas.entries()].map(([peerId, r]) => ({ peerId, state: r.state, points: r.points.size })),
        })),
    snapshots: () =>
      peers.flatMap((p) =>
        [...p.snapshots.entries()].flatMap(([key, m]) => {
          const [collection, shard] = key.split('\u0000') as [string, string];
          return [...m.values()].map((s) => ({ peer: p.index, collection, shardId: Number(shard), name: s.name, size: s.size }));
        }),
      ),
    requests: () => requestLog.map((r) => ({ ...r, query: { ...r.query } })),
    failNext(failure: QdrantClusterFailure = {}) {
      failures.push({ ...failure, remaining: failure.count ?? 1 });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      unregister();
      for (const t of timers) clearTimeout(t);
      for (const p of peers) if (p.up) await close(p.server);
      await dir.remove();
    },
  };
}
