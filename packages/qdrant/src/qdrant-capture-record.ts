/**
 * What capturing one snapshot (a collection's or a shard's) shares, single node and cluster
 * alike: the verifier its bytes stream through, the artifact options, and the parts of the
 * manifest record taken from the snapshot description and the collection info.
 */
import { BackupError, type ArtifactOptions } from '@scholaria/backup-core';
import { enc, type CollectionInfo, type SnapshotDescription } from './qdrant-api.js';
import { SnapshotVerifier } from './snapshot-verifier.js';
import { shardLabel } from './qdrant-cluster.js';
import { CONTENT_TYPE } from './qdrant-recorded.js';

/** Checks the downloaded bytes against the size and checksum Qdrant reported for `desc`. */
export function snapshotVerifier(component: string, collection: string, desc: SnapshotDescription): SnapshotVerifier {
  return new SnapshotVerifier({
    component,
    collection,
    snapshot: desc.name,
    checksum: desc.checksum ?? null,
    ...(typeof desc.size === 'number' ? { size: desc.size } : {}),
  });
}

/** Options of the artifact a snapshot is stored in; `upload` is the curl URL up to its query. */
export function snapshotArtifactOptions(
  compress: boolean,
  desc: SnapshotDescription,
  artifact: string,
  upload: string,
  hintTail: string,
  metadata: Record<string, unknown>,
  qdrantVersion: string,
): ArtifactOptions {
  return {
    contentType: CONTENT_TYPE,
    ...(compress ? {} : { compression: false as const }),
    restoreHint: `curl -fS -X POST "${upload}?priority=snapshot&wait=true${
      desc.checksum ? `&checksum=${desc.checksum}` : ''
    }" -H "api-key: $QDRANT_API_KEY" -F "snapshot=@-;filename=${artifact}"${hintTail}`,
    metadata: { ...metadata, snapshot: desc.name, ...(desc.checksum ? { checksum: desc.checksum } : {}), size: desc.size, qdrantVersion },
  };
}

/** The `snapshot` entry of a recorded collection or shard. */
export function recordedSnapshot(desc: SnapshotDescription): { name: string; size: number; checksum: string | null; creationTime: string | null } {
  return { name: desc.name, size: desc.size, checksum: desc.checksum ?? null, creationTime: desc.creation_time ?? null };
}

/** Points before and after the capture; `moved` when writes changed the count meanwhile. */
export function pointsMovement(before: CollectionInfo | undefined, after: CollectionInfo) {
  const pointsBefore = before?.points_count ?? null;
  const pointsAfter = after.points_count ?? null;
  const moved = pointsBefore !== null && pointsAfter !== null && pointsBefore !== pointsAfter;
  return {
    moved,
    pointsBefore,
    pointsAfter,
    recorded: {
      pointsCount: pointsAfter,
      ...(moved ? { pointsCountRange: [pointsBefore, pointsAfter] as [number, number] } : {}),
    },
  };
}

/** The collection parameters recorded for every capture: vectors, sparse vectors, shard number, replication factor. */
export function recordedParams(params: CollectionInfo['config']['params']) {
  return {
    vectors: params.vectors ?? null,
    ...(params.sparse_vectors ? { sparseVectors: params.sparse_vectors } : {}),
    ...(typeof params.shard_number === 'number' ? { shardNumber: params.shard_number } : {}),
    ...(typeof params.replication_factor === 'number' ? { replicationFactor: params.replication_factor } : {}),
  };
}

/** A shard with no Active replica cannot be captured: the backup fails before a set is written. */
export function noActiveReplicaError(
  component: string,
  collection: string,
  shard: { shardId: number; shardKey?: string | number },
  all: { peerId: string; state: string }[],
): BackupError {
  return new BackupError(
    'SOURCE_FAILED',
    `${component}: ${shardLabel(shard)} of collection "${collection}" has no Active replica to snapshot (${all.map((r) => `peer ${r.peerId}: ${r.state}`).join(', ') || 'no replica listed'})`,
    {
      component,
      retryable: true,
      hint: `Qdrant is recovering this shard or its peers are gone; wait until GET /collections/${enc(collection)}/cluster lists an Active replica of shard ${shard.shardId}, then back up again. No backup set was written.`,
    },
  );
}
