/**
 * Cluster restore (see qdrant-cluster.ts for the protocol): a cluster-captured collection
 * restored shard by shard onto peers holding each shard.
 */
import { BackupError, type ArtifactRecord, type SourceRestoreContext } from '@scholaria/backup-core';
import type { CallOptions, QdrantApi } from './qdrant-api.js';
import { captureCandidates, createBody, mapShards, shardKeysOf, shardLabel, shardsOf, waitForActiveReplicas, type PeerDirectory, type RecordedShard } from './qdrant-cluster.js';
import type { RecordedCollection } from './qdrant-recorded.js';
import type { SourceCore } from './qdrant-source-core.js';

/**
 * Restores a cluster-captured collection shard by shard: creates it with the recorded layout
 * when missing, uploads each shard snapshot to a peer holding that shard with
 * `priority=snapshot`, waits for the other replicas to be re-synced, and returns the exact count.
 */
export async function restoreShards(
  core: SourceCore,
  ctx: SourceRestoreContext,
  item: {
    recorded: RecordedCollection;
    target: string;
    shards?: { recorded: RecordedShard; artifact: ArtifactRecord; checksum: string }[] | undefined;
  },
  exists: boolean,
  uploadTag: string,
  serverChecksums: boolean,
  call: CallOptions,
  warnings: string[],
  peers: PeerDirectory,
): Promise<number> {
  const { component, opts } = core;
  const a = core.getApi();
  const shards = item.shards ?? [];
  const target = item.target;
  if (!exists) {
    ctx.logger.info(`${component}: creating collection "${target}" with ${shards.length} shard(s)`, { collection: target });
    await a.createCollection(target, createBody(item.recorded), call);
    for (const k of shardKeysOf(shards.map((x) => x.recorded))) {
      await a.createShardKey(
        target,
        { shard_key: k.key, shards_number: k.count, ...(item.recorded.replicationFactor !== undefined ? { replication_factor: item.recorded.replicationFactor } : {}) },
        call,
      );
    }
  }
  const placement = await a.collectionCluster(target, call);
  const { map, problems } = mapShards(
    shards.map((x) => x.recorded),
    shardsOf(placement),
  );
  if (problems.length > 0) {
    throw new BackupError('RESTORE_FAILED', `${component}: collection "${target}" on ${a.target} does not have the backup's shard layout: ${problems.join('; ')}`, {
      component,
      hint: 'Restore into a fresh collection name (restoreAs or collectionSuffix); a different shard count cannot take shard snapshots.',
    });
  }
  const done: string[] = [];
  for (const sh of shards) {
    const label = shardLabel(sh.recorded);
    const targetShard = map.get(sh.recorded.shardId) as number;
    const holders = captureCandidates(placement, targetShard);
    const order = [...holders.active, ...holders.all.map((r) => r.peerId).filter((p) => !holders.active.includes(p))];
    const uploadName = `${uploadTag}-${sh.artifact.name}`.replace(/[^A-Za-z0-9._-]/g, '_');
    const failures: string[] = [];
    let ok = false;
    for (const peerId of order) {
      let api: QdrantApi;
      try {
        api = peerId === placement.peerId && !peers.urls.has(peerId) ? a : peers.api(peerId);
      } catch (error) {
        failures.push((error as Error).message);
        continue;
      }
      ctx.logger.info(`${component}: uploading ${sh.artifact.name} into ${shardLabel({ shardId: targetShard, shardKey: sh.recorded.shardKey })} of "${target}" on ${peers.describe(peerId)}`, {
        collection: target,
        shard: targetShard,
        peer: peerId,
      });
      try {
        await api.upload(
          target,
          async () => ({ stream: await ctx.open(sh.artifact.name), size: sh.artifact.rawSize, filename: uploadName }),
          serverChecksums ? sh.checksum : undefined,
          call,
          targetShard,
        );
        ok = true;
      } catch (error) {
        const e = BackupError.isInstance(error) ? error : api.translate(error, `uploading ${label}`, 'RESTORE_FAILED');
        // The artifact's own checksum failing, or Qdrant refusing the snapshot, will not get better on another peer.
        if (!e.retryable) {
          throw new BackupError(e.code, `${e.message}${done.length ? ` (already restored into "${target}": ${done.join(', ')}; the collection is incomplete until the restore is run again)` : ''}`, {
            component,
            cause: e,
            ...(e.hint ? { hint: e.hint } : {}),
          });
        }
        failures.push(`${peers.describe(peerId)}: ${e.message}`);
        continue;
      }
      // Qdrant recovers an uploaded shard snapshot from a temp file and keeps no copy
      // (snapshot_api.rs upload_shard_snapshot); should a version keep one, it is removed here.
      try {
        for (const d of await api.listShardSnapshots(target, targetShard, call)) {
          if (d.name === uploadName) await api.deleteShardSnapshot(target, targetShard, d.name, call);
        }
      } catch (error) {
        warnings.push(`could not check ${peers.describe(peerId)} for a kept copy of the uploaded "${uploadName}" (${api.translate(error, 'listing shard snapshots', 'RESTORE_FAILED').message})`);
      }
      break;
    }
    if (!ok) {
      throw new BackupError(
        'RESTORE_FAILED',
        `${component}: could not upload ${label} of "${item.recorded.name}" into "${target}" on any peer holding it: ${failures.join('; ') || 'no peer holds it'}${
          done.length ? ` (already restored: ${done.join(', ')}; the collection is incomplete until the restore is run again)` : ''
        }`,
        { component, retryable: true, hint: 'Check that every Qdrant peer is up and reachable (GET /cluster, QDRANT_PEER_URLS / QDRANT_PEER_URL_TEMPLATE), then run the restore again: it replaces every shard.' },
      );
    }
    done.push(label);
  }
  const pending = await waitForActiveReplicas(a, target, opts.snapshotTimeoutMs, call, ctx.logger);
  if (pending.length > 0) {
    warnings.push(`not every replica of "${target}" was re-synced after the restore within ${Math.round(opts.snapshotTimeoutMs / 1000)} s (${pending.join('; ')}); Qdrant keeps re-syncing them from the restored replicas`);
  }
  return await a.settledCount(target, call);
}
