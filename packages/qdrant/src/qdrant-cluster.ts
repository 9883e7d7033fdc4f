/**
 * Qdrant cluster capture and restore, shard by shard.
 *
 * Backup: `GET /collections/{c}/cluster` on the configured peer gives every shard and the peers
 * holding its replicas; each shard is snapshotted on a peer holding an `Active` replica
 * (`POST /collections/{c}/shards/{s}/snapshots` on that peer's REST URL), downloaded from it
 * (`GET .../shards/{s}/snapshots/{name}`, resumed with `Range`, verified against Qdrant's
 * checksum) and deleted there. When that peer cannot be reached before the download starts,
 * another active replica of the shard is used; a shard with no reachable active replica fails
 * the backup (no set is written without every shard).
 *
 * Restore: the collection is created with the recorded shard number, replication factor and
 * sharding method (shard keys recreated) when missing; each shard snapshot is uploaded to a peer
 * holding that shard (`POST .../shards/{s}/snapshots/upload?priority=snapshot&checksum=...`),
 * which makes it the source of truth and has Qdrant re-sync the other replicas; then the
 * restore waits for every replica to be `Active` again and compares the point count.
 */
import { BackupError, type Logger } from '@scholaria/backup-core';
import { z } from 'zod';
import type { QdrantApi, ClusterInfo, CollectionClusterInfo, CallOptions } from './qdrant-api.js';
import type { ResolvedQdrantOptions } from './qdrant-options.js';

export const recordedReplicaSchema = z.object({ peerId: z.string(), state: z.string() });

/** What the source records per shard of a collection captured from a cluster. */
export const recordedShardSchema = z.object({
  shardId: z.number().int().nonnegative(),
  shardKey: z.union([z.string(), z.number()]).optional(),
  artifact: z.string().min(1),
  /** The peer the snapshot was taken on and downloaded from. */
  peerId: z.string(),
  /** Every replica of the shard at backup time (placement). */
  replicas: z.array(recordedReplicaSchema),
  /** Points in the captured replica (its `local_shards` entry), when the peer reported it. */
  pointsCount: z.number().int().nonnegative().nullable(),
  snapshot: z.object({ name: z.string(), size: z.number(), checksum: z.string().nullable(), creationTime: z.string().nullable() }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type RecordedShard = z.infer<typeof recordedShardSchema>;

/** The parts of the collection config a restore needs to create the collection before its shards. */
export const recordedCreateSchema = z.object({
  shardingMethod: z.enum(['auto', 'custom']).optional(),
  writeConsistencyFactor: z.number().optional(),
  onDiskPayload: z.boolean().optional(),
  hnswConfig: z.unknown().optional(),
  quantizationConfig: z.unknown().optional(),
});

export const recordedMemberSchema = z.object({ peerId: z.string(), uri: z.string(), url: z.string() });

export interface PeerDirectory {
  /** Peer id -> REST URL (credentials never included). */
  urls: Map<string, string>;
  api(peerId: string): QdrantApi;
  describe(peerId: string): string;
}

/** Host of a p2p URI such as `http://qdrant-1.qdrant-headless:6335/`, or undefined. */
function uriHost(uri: string): string | undefined {
  try {
    return new URL(uri).hostname || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The REST URL of a peer: `peerUrls` by peer id or by p2p host, else `peerUrlTemplate`, else
 * the configured `url` for the peer that answers there, else `url`'s scheme, port and path with
 * the peer's p2p host (Qdrant's defaults: REST 6333, p2p 6335 on the same host).
 */
export function peerRestUrl(opts: Pick<ResolvedQdrantOptions, 'url' | 'peerUrls' | 'peerUrlTemplate'>, entryPeerId: string | undefined, peer: { id: string; uri: string }): string | undefined {
  const host = uriHost(peer.uri);
  const mapped = opts.peerUrls?.[peer.id] ?? (host ? opts.peerUrls?.[host] : undefined);
  if (mapped) return mapped;
  if (opts.peerUrlTemplate && (host || !opts.peerUrlTemplate.includes('{host}'))) {
    return opts.peerUrlTemplate.replace(/\{host\}/g, host ?? '').replace(/\{peer_id\}/g, peer.id);
  }
  if (peer.id === entryPeerId) return opts.url;
  if (!host) return undefined;
  const entry = new URL(opts.url);
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${entry.protocol}//${h}${entry.port ? `:${entry.port}` : ''}${entry.pathname.replace(/\/+$/, '')}`;
}

export function peerDirectory(entry: QdrantApi, opts: ResolvedQdrantOptions, cluster: ClusterInfo, component: string): PeerDirectory {
  const urls = new Map<string, string>();
  for (const p of cluster.peers) {
    const url = peerRestUrl(opts, cluster.peerId, p);
    if (url) urls.set(p.id, url);
  }
  const apis = new Map<string, QdrantApi>();
  const uriOf = (id: string) => cluster.peers.find((p) => p.id === id)?.uri ?? '?';
  return {
    urls,
    describe: (id) => `peer ${id} (${urls.get(id) ?? `p2p ${uriOf(id)}`})`,
    api(peerId) {
      const cached = apis.get(peerId);
      if (cached) return cached;
      const url = urls.get(peerId);
      if (!url) {
        throw new BackupError('CONFIG_INVALID', `${component}: no REST URL for Qdrant peer ${peerId} (p2p ${uriOf(peerId)})`, {
          component,
          hint: 'Set QDRANT_PEER_URLS (peer=url pairs; option peerUrls) or QDRANT_PEER_URL_TEMPLATE (e.g. https://{host}:6333; option peerUrlTemplate).',
        });
      }
      const api = url === opts.url ? entry : entry.forPeer(url);
      apis.set(peerId, api);
      return api;
    },
  };
}

/** Active replicas first (the configured peer's own first), then the rest; only `Active` ones may be captured. */
export function captureCandidates(placement: CollectionClusterInfo, shardId: number): { active: string[]; all: { peerId: string; state: string }[] } {
  const all = placement.replicas.filter((r) => r.shardId === shardId).map((r) => ({ peerId: r.peerId, state: r.state }));
  const active = all
    .filter((r) => r.state === 'Active')
    .map((r) => r.peerId)
    .sort((x, y) => Number(y === placement.peerId) - Number(x === placement.peerId) || x.localeCompare(y));
  return { active, all };
}

/** The shard ids of a placement with their keys, ascending. */
export function shardsOf(placement: CollectionClusterInfo): { shardId: number; shardKey?: string | number }[] {
  const seen = new Map<number, string | number | undefined>();
  for (const r of placement.replicas) if (!seen.has(r.shardId)) seen.set(r.shardId, r.shardKey);
  return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([shardId, shardKey]) => ({ shardId, ...(shardKey !== undefined ? { shardKey } : {}) }));
}

/** "shard 0 (key "eu") ..." for messages. */
export function shardLabel(s: { shardId: number; shardKey?: string | number | undefined }): string {
  return `shard ${s.shardId}${s.shardKey !== undefined ? ` (key ${JSON.stringify(s.shardKey)})` : ''}`;
}

/**
 * Polls `GET /collections/{c}/cluster` until no replica is `Dead`/`Partial`/recovering and no
 * shard transfer runs (Qdrant re-syncs the other replicas after a `priority=snapshot` recovery),
 * up to `timeoutMs`. Returns the replicas still not active, empty when all are.
 */
export async function waitForActiveReplicas(api: QdrantApi, collection: string, timeoutMs: number, call: CallOptions, logger?: Logger): Promise<string[]> {
  const started = Date.now();
  let delay = 50;
  for (;;) {
    const info = await api.collectionCluster(collection, call);
    const pending = info.replicas.filter((r) => r.state !== 'Active').map((r) => `shard ${r.shardId} on peer ${r.peerId} is ${r.state}`);
    if (pending.length === 0 && info.transfers === 0) return [];
    if (Date.now() - started > timeoutMs) return pending.length ? pending : [`${info.transfers} shard transfer(s) still running`];
    if (delay >= 1000) logger?.info(`waiting for the replicas of "${collection}" to be re-synced: ${pending.join('; ')}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 2000);
  }
}

/** The body of `PUT /collections/{c}` that recreates a recorded collection's layout. */
export function createBody(recorded: {
  vectors: unknown;
  sparseVectors?: unknown;
  shardNumber?: number | undefined;
  replicationFactor?: number | undefined;
  create?: z.infer<typeof recordedCreateSchema> | undefined;
}): Record<string, unknown> {
  const c = recorded.create ?? {};
  return {
    vectors: recorded.vectors,
    ...(recorded.sparseVectors ? { sparse_vectors: recorded.sparseVectors } : {}),
    ...(c.shardingMethod === 'custom' ? { sharding_method: 'custom' } : {}),
    // With custom sharding shard_number is the count per shard key (given per key below).
    ...(c.shardingMethod !== 'custom' && recorded.shardNumber !== undefined ? { shard_number: recorded.shardNumber } : {}),
    ...(recorded.replicationFactor !== undefined ? { replication_factor: recorded.replicationFactor } : {}),
    ...(c.writeConsistencyFactor !== undefined ? { write_consistency_factor: c.writeConsistencyFactor } : {}),
    ...(c.onDiskPayload !== undefined ? { on_disk_payload: c.onDiskPayload } : {}),
    ...(c.hnswConfig && typeof c.hnswConfig === 'object' ? { hnsw_config: c.hnswConfig } : {}),
    ...(c.quantizationConfig && typeof c.quantizationConfig === 'object' ? { quantization_config: c.quantizationConfig } : {}),
  };
}

/** Shard keys in the order of their first shard id, with how many shards each has. */
export function shardKeysOf(shards: { shardId: number; shardKey?: string | number | undefined }[]): { key: string | number; count: number }[] {
  const out: { key: string | number; count: number }[] = [];
  for (const s of [...shards].sort((a, b) => a.shardId - b.shardId)) {
    if (s.shardKey === undefined) continue;
    const e = out.find((x) => x.key === s.shardKey);
    if (e) e.count += 1;
    else out.push({ key: s.shardKey, count: 1 });
  }
  return out;
}

/**
 * Maps each recorded shard to a shard of the target: by id for auto sharding; for custom
 * sharding by (key, n-th shard of that key), since the target may number them differently.
 * Returns the problems when the layouts differ (different shard count, missing keys).
 */
export function mapShards(
  recorded: { shardId: number; shardKey?: string | number | undefined }[],
  target: { shardId: number; shardKey?: string | number | undefined }[],
): { map: Map<number, number>; problems: string[] } {
  const map = new Map<number, number>();
  const problems: string[] = [];
  const group = (list: typeof recorded) => {
    const g = new Map<string, number[]>();
    for (const s of [...list].sort((a, b) => a.shardId - b.shardId)) {
      const k = s.shardKey === undefined ? '' : JSON.stringify(s.shardKey);
      g.set(k, [...(g.get(k) ?? []), s.shardId]);
    }
    return g;
  };
  const want = group(recorded);
  const have = group(target);
  for (const [k, ids] of want) {
    const there = have.get(k) ?? [];
    if (there.length !== ids.length) {
      problems.push(`${k ? `shard key ${k}: ` : ''}the backup has ${ids.length} shard${ids.length === 1 ? '' : 's'}, the target has ${there.length}`);
      continue;
    }
    ids.forEach((id, n) => map.set(id, there[n] as number));
  }
  for (const k of have.keys()) if (!want.has(k)) problems.push(`the target has shard key ${k}, which the backup does not`);
  return { map, problems };
}
