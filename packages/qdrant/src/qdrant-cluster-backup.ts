/**
 * Cluster capture (see qdrant-cluster.ts for the protocol): every shard of a collection
 * snapshotted on a peer holding an Active replica, with the replica placement recorded.
 */
import { pipeline } from 'node:stream/promises';
import { BackupError, type SourceBackupContext } from '@scholaria/backup-core';
import { enc, type CallOptions, type CollectionInfo, type QdrantApi } from './qdrant-api.js';
import { noActiveReplicaError, pointsMovement, recordedParams, recordedSnapshot, snapshotArtifactOptions, snapshotVerifier } from './qdrant-capture-record.js';
import { captureCandidates, shardLabel, shardsOf, type PeerDirectory, type RecordedShard } from './qdrant-cluster.js';
import { shardArtifactName, type RecordedCollection } from './qdrant-recorded.js';
import type { SourceCore } from './qdrant-source-core.js';

/**
 * Snapshots one shard on a peer holding an Active replica and stores it. A peer that fails
 * before the download starts (down, unreachable, refusing) is skipped for the next active
 * replica; once bytes flow into the artifact, a failure fails the backup.
 */
export async function captureShard(
  core: SourceCore,
  ctx: SourceBackupContext,
  name: string,
  shard: { shardId: number; shardKey?: string | number },
  placement: Awaited<ReturnType<QdrantApi['collectionCluster']>>,
  version: string,
  call: CallOptions,
  warnings: string[],
  peers: PeerDirectory,
): Promise<RecordedShard> {
  const { component, opts } = core;
  const label = shardLabel(shard);
  const { active, all } = captureCandidates(placement, shard.shardId);
  if (active.length === 0) throw noActiveReplicaError(component, name, shard, all);
  const failures: string[] = [];
  for (const peerId of active) {
    let api: QdrantApi;
    let desc: Awaited<ReturnType<QdrantApi['createSnapshot']>>;
    let response: Awaited<ReturnType<QdrantApi['download']>>;
    let before: Set<string>;
    try {
      api = peers.api(peerId);
      before = new Set((await api.listShardSnapshots(name, shard.shardId, call)).map((d) => d.name));
      ctx.logger.info(`${component}: creating a snapshot of ${label} of "${name}" on ${peers.describe(peerId)}`, { collection: name, shard: shard.shardId, peer: peerId });
      desc = await api.createSnapshot(name, before, call, shard.shardId);
    } catch (error) {
      const message = BackupError.isInstance(error) ? error.message : String(error);
      failures.push(`${peers.describe(peerId)}: ${message}`);
      if (active.indexOf(peerId) < active.length - 1) ctx.logger.warn(`${component}: ${label} of "${name}" could not be snapshotted on ${peers.describe(peerId)}; trying another replica`, { error: message });
      continue;
    }
    const cleanUp = async () => {
      const fresh = desc.failedAttempts > 0 ? await api.snapshotsSince(name, before, call, shard.shardId).catch(() => []) : [];
      const names = [...new Set([...fresh.map((d) => d.name).filter((n) => n !== desc.name), ...(opts.keepSnapshots ? [] : [desc.name])])];
      for (const n of names) {
        try {
          await api.deleteShardSnapshot(name, shard.shardId, n, { logger: ctx.logger });
        } catch (error) {
          warnings.push(
            `could not delete snapshot "${n}" of ${label} of "${name}" on ${peers.describe(peerId)} (${api.translate(error, 'deleting a shard snapshot').message}); delete it by hand: curl -X DELETE "${api.target}/collections/${enc(name)}/shards/${shard.shardId}/snapshots/${enc(n)}" -H "api-key: $QDRANT_API_KEY"`,
          );
        }
      }
    };
    try {
      response = await api.download(name, desc.name, call, shard.shardId);
    } catch (error) {
      await cleanUp();
      const message = BackupError.isInstance(error) ? error.message : String(error);
      failures.push(`${peers.describe(peerId)}: ${message}`);
      continue;
    }
    const artifact = shardArtifactName(name, shard.shardId);
    let bytes = 0;
    let digest = '';
    try {
      const verifier = snapshotVerifier(component, name, desc);
      const sink = ctx.artifact(
        artifact,
        snapshotArtifactOptions(
          opts.compress,
          desc,
          artifact,
          `$QDRANT_PEER_URL/collections/${enc(name)}/shards/${shard.shardId}/snapshots/upload`,
          `  # QDRANT_PEER_URL: a peer holding shard ${shard.shardId} (GET /collections/${enc(name)}/cluster)`,
          { collection: name, shardId: shard.shardId, ...(shard.shardKey !== undefined ? { shardKey: shard.shardKey } : {}), peerId },
          version,
        ),
      );
      try {
        await pipeline(response, verifier, sink, { signal: ctx.signal });
      } catch (error) {
        throw api.translate(error, `downloading snapshot "${desc.name}" of ${label} of collection "${name}" from ${peers.describe(peerId)}`);
      }
      bytes = verifier.bytes;
      digest = verifier.digest as string;
    } finally {
      await cleanUp();
    }
    if (!desc.checksum) warnings.push(`Qdrant ${version} did not report a checksum for the snapshot of ${label} of "${name}"; the SHA-256 computed while downloading protects the stored bytes (SHA256SUMS)`);
    if (failures.length > 0) warnings.push(`${label} of "${name}" was captured from ${peers.describe(peerId)} because ${failures.join('; ')}`);
    let pointsCount: number | null = null;
    try {
      pointsCount = (await api.collectionCluster(name, call)).replicas.find((r) => r.shardId === shard.shardId && r.peerId === peerId)?.pointsCount ?? null;
    } catch {
      // The count per shard is informative only.
    }
    ctx.logger.info(`${component}: stored ${artifact}`, { collection: name, shard: shard.shardId, peer: peerId, bytes, sha256: digest });
    return {
      shardId: shard.shardId,
      ...(shard.shardKey !== undefined ? { shardKey: shard.shardKey } : {}),
      artifact,
      peerId,
      replicas: all,
      pointsCount,
      snapshot: recordedSnapshot(desc),
      sha256: digest,
    };
  }
  throw new BackupError(
    'SOURCE_FAILED',
    `${component}: could not snapshot ${label} of collection "${name}" on any peer holding an Active replica: ${failures.join('; ')}`,
    {
      component,
      retryable: true,
      hint: 'A Qdrant peer is down or unreachable from here: check GET /cluster and the peer URLs (QDRANT_PEER_URLS / QDRANT_PEER_URL_TEMPLATE), then back up again. No backup set was written.',
    },
  );
}

/** Cluster capture of one collection: every shard from a peer holding it, with the placement. */
export async function backupShardedCollection(
  core: SourceCore,
  ctx: SourceBackupContext,
  name: string,
  aliasesOf: (c: string) => string[],
  version: string,
  call: CallOptions,
  warnings: string[],
  peers: PeerDirectory,
): Promise<RecordedCollection> {
  const { component } = core;
  const a = core.getApi();
  const placement = await a.collectionCluster(name, call);
  // Every shard needs an Active replica: refuse before any snapshot is made.
  for (const shard of shardsOf(placement)) {
    const { active, all } = captureCandidates(placement, shard.shardId);
    if (active.length === 0) throw noActiveReplicaError(component, name, shard, all);
  }
  // Qdrant's collection info asks every shard (collection_ops.rs `info`) and fails while one is
  // unreachable; the shard captures below then name the shard and the peers, so it may wait.
  let before: CollectionInfo | undefined;
  try {
    before = await a.collection(name, call);
  } catch (error) {
    ctx.logger.warn(`${component}: could not read collection "${name}" before capturing its shards`, { error: BackupError.isInstance(error) ? error.message : String(error) });
  }
  if (placement.transfers > 0) {
    warnings.push(`collection "${name}" had ${placement.transfers} shard transfer(s) running during the backup; each shard was captured from an Active replica`);
  }
  const shards = shardsOf(placement);
  if (placement.shardCount !== shards.length) {
    throw new BackupError('SOURCE_FAILED', `${component}: collection "${name}" reports ${placement.shardCount} shards but lists replicas of ${shards.length}`, {
      component,
      retryable: true,
      hint: `Check GET /collections/${enc(name)}/cluster on ${a.target}; a peer may be joining or leaving. Back up again once it is stable.`,
    });
  }
  ctx.logger.info(`${component}: collection "${name}" has ${shards.length} shard(s) on ${new Set(placement.replicas.map((r) => r.peerId)).size} peer(s)`, { collection: name });
  const recordedShards: RecordedShard[] = [];
  for (const shard of shards) {
    if (ctx.signal.aborted) throw new BackupError('ABORTED', `${component}: backup aborted`, { component, retryable: true });
    recordedShards.push(await captureShard(core, ctx, name, shard, placement, version, call, warnings, peers));
  }
  const after: CollectionInfo = await a.collection(name, call);
  const { moved, pointsBefore, pointsAfter, recorded } = pointsMovement(before, after);
  if (moved) warnings.push(`collection "${name}" changed while its shards were captured (${pointsBefore} -> ${pointsAfter} points); each shard snapshot holds one moment`);
  const params = after.config.params as typeof after.config.params & { sharding_method?: 'auto' | 'custom' };
  return {
    name,
    ...recorded,
    ...recordedParams(params),
    aliases: aliasesOf(name),
    shards: recordedShards,
    create: {
      shardingMethod: params.sharding_method === 'custom' ? 'custom' : 'auto',
      ...(typeof params.write_consistency_factor === 'number' ? { writeConsistencyFactor: params.write_consistency_factor } : {}),
      ...(typeof params.on_disk_payload === 'boolean' ? { onDiskPayload: params.on_disk_payload } : {}),
      ...(after.config.hnsw_config ? { hnswConfig: after.config.hnsw_config } : {}),
      ...(after.config.quantization_config ? { quantizationConfig: after.config.quantization_config } : {}),
    },
  };
}
