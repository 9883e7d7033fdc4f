/**
 * Backup of a single Qdrant node (or one node of a cluster not captured shard by shard): one
 * collection snapshot per collection, streamed through the checksum verifier into an artifact;
 * and the `backup` operation that picks single-node or cluster capture.
 */
import { pipeline } from 'node:stream/promises';
import { BackupError, NotFoundError, type SourceBackupContext, type SourceBackupResult } from '@scholaria/backup-core';
import { enc, type CallOptions, type ClusterInfo, type CollectionInfo, type QdrantApi } from './qdrant-api.js';
import { pointsMovement, recordedParams, recordedSnapshot, snapshotArtifactOptions, snapshotVerifier } from './qdrant-capture-record.js';
import { supportsSnapshotChecksum } from './qdrant-version.js';
import { peerDirectory } from './qdrant-cluster.js';
import { backupShardedCollection } from './qdrant-cluster-backup.js';
import { artifactNameFor, quoteList, type RecordedCollection } from './qdrant-recorded.js';
import type { SourceCore } from './qdrant-source-core.js';

/**
 * Deletes snapshots of `collection` that appeared during this run besides the one it used:
 * the work of failed creation attempts that Qdrant finished anyway.
 */
async function sweepOrphans(
  a: QdrantApi,
  collection: string,
  before: Set<string>,
  used: string,
  ctx: SourceBackupContext,
  warnings: string[],
): Promise<void> {
  let fresh: { name: string }[];
  try {
    fresh = (await a.snapshotsSince(collection, before, { logger: ctx.logger })).filter((d) => d.name !== used);
  } catch {
    return;
  }
  for (const orphan of fresh) {
    try {
      await a.deleteSnapshot(collection, orphan.name, { logger: ctx.logger });
      ctx.logger.info(`deleted snapshot "${orphan.name}" of "${collection}" left by a failed creation attempt`);
    } catch (error) {
      warnings.push(
        `could not delete snapshot "${orphan.name}" of "${collection}" left by a failed creation attempt (${a.translate(error, 'deleting a snapshot').message}); delete it by hand: curl -X DELETE "$QDRANT_URL/collections/${enc(collection)}/snapshots/${enc(orphan.name)}" -H "api-key: $QDRANT_API_KEY"`,
      );
    }
  }
}

export async function backupCollection(
  core: SourceCore,
  ctx: SourceBackupContext,
  name: string,
  aliasesOf: (c: string) => string[],
  version: string,
  call: CallOptions,
  warnings: string[],
): Promise<RecordedCollection> {
  const { component, opts } = core;
  const a = core.getApi();
  const before: CollectionInfo = await a.collection(name, call);
  ctx.logger.info(`${component}: creating a snapshot of collection "${name}"`, { collection: name, points: before.points_count });
  // What exists before, so a retried creation can find the snapshot of its failed attempt.
  let existingSnapshots: Set<string> | undefined;
  try {
    existingSnapshots = new Set((await a.listSnapshots(name, call)).map((d) => d.name));
  } catch (error) {
    ctx.logger.warn(`${component}: could not list the snapshots of "${name}" (${a.translate(error, 'listing snapshots').message}); a retried creation may leave one behind`);
  }
  const desc = await a.createSnapshot(name, existingSnapshots, call);
  try {
    const after: CollectionInfo = await a.collection(name, call);
    const artifact = artifactNameFor(name);
    const response = await a.download(name, desc.name, call);
    const verifier = snapshotVerifier(component, name, desc);
    const sink = ctx.artifact(
      artifact,
      snapshotArtifactOptions(opts.compress, desc, artifact, `$QDRANT_URL/collections/${enc(name)}/snapshots/upload`, '', { collection: name }, version),
    );
    try {
      await pipeline(response, verifier, sink, { signal: ctx.signal });
    } catch (error) {
      throw a.translate(error, `downloading snapshot "${desc.name}" of collection "${name}"`);
    }
    if (!desc.checksum) {
      warnings.push(
        `Qdrant ${version} did not report a checksum for the snapshot of "${name}"${
          supportsSnapshotChecksum(version) ? '' : ' (Qdrant reports one from 1.8 on)'
        }; the SHA-256 computed while downloading protects the stored bytes (SHA256SUMS)`,
      );
    }
    const { moved, pointsBefore, pointsAfter, recorded } = pointsMovement(before, after);
    if (moved) {
      warnings.push(
        `collection "${name}" changed while its snapshot was taken (${pointsBefore} -> ${pointsAfter} points); the snapshot holds one of these states`,
      );
    }
    ctx.logger.info(`${component}: stored ${artifact}`, { collection: name, bytes: verifier.bytes, sha256: verifier.digest });
    return {
      name,
      artifact,
      ...recorded,
      ...recordedParams(after.config.params),
      aliases: aliasesOf(name),
      snapshot: recordedSnapshot(desc),
      sha256: verifier.digest as string,
    };
  } finally {
    // Only after a failed attempt: without one, a new snapshot is somebody else's (the user's,
    // another run's) and must stay.
    if (existingSnapshots && desc.failedAttempts > 0) await sweepOrphans(a, name, existingSnapshots, desc.name, ctx, warnings);
    if (!opts.keepSnapshots) {
      try {
        await a.deleteSnapshot(name, desc.name, { logger: ctx.logger });
      } catch (error) {
        const e = a.translate(error, `deleting snapshot "${desc.name}"`);
        warnings.push(
          `could not delete snapshot "${desc.name}" of "${name}" on the server (${e.message}); delete it by hand: curl -X DELETE "$QDRANT_URL/collections/${enc(name)}/snapshots/${enc(desc.name)}" -H "api-key: $QDRANT_API_KEY"`,
        );
      }
    }
  }
}

export async function backupQdrant(core: SourceCore, ctx: SourceBackupContext): Promise<SourceBackupResult> {
  const { component, opts } = core;
  const a = core.getApi();
  const call: CallOptions = { signal: ctx.signal, logger: ctx.logger, failCode: 'SOURCE_FAILED' };
  const warnings: string[] = [];
  const { version, commit } = await a.version(call);
  const available = await a.collections(call);
  let selected: string[];
  if (opts.collections) {
    selected = [...new Set(opts.collections)];
    const missing = selected.filter((c) => !available.includes(c));
    if (missing.length > 0) {
      throw new NotFoundError(
        `${component}: collection${missing.length > 1 ? 's' : ''} ${quoteList(missing)} not found on Qdrant at ${a.target}`,
        {
          component,
          hint: available.length
            ? `The server has ${quoteList(available)}; fix the collections option (aliases are not accepted, use collection names).`
            : 'The server has no collections at all: is url pointing at the right Qdrant?',
        },
      );
    }
  } else {
    selected = available;
  }
  const aliases = await a.aliases(call);
  const aliasesOf = (c: string) =>
    aliases
      .filter((x) => x.collection_name === c)
      .map((x) => x.alias_name)
      .sort();
  let cluster: ClusterInfo = { enabled: false, peers: [] };
  try {
    cluster = await a.cluster(call);
  } catch (error) {
    warnings.push(`could not read the cluster status (${a.translate(error, 'reading GET /cluster').message}); assuming a single node`);
  }
  // A cluster of several peers: every shard from a peer holding it. One node: its collection snapshots, as always.
  const sharded = cluster.enabled && cluster.peers.length > 1;
  const peers = sharded ? peerDirectory(a, opts, cluster, component) : undefined;
  if (peers) {
    ctx.logger.info(`${component}: Qdrant runs as a cluster of ${cluster.peers.length} peers; capturing every shard from a peer holding it`, {
      peers: Object.fromEntries(cluster.peers.map((p) => [p.id, peers.urls.get(p.id) ?? `p2p ${p.uri}`])),
    });
  }
  if (selected.length === 0) warnings.push(`Qdrant at ${a.target} has no collections; nothing was backed up`);

  const collections: RecordedCollection[] = [];
  for (const name of selected) {
    if (ctx.signal.aborted) throw new BackupError('ABORTED', `${component}: backup aborted`, { component, retryable: true });
    collections.push(
      peers ? await backupShardedCollection(core, ctx, name, aliasesOf, version, call, warnings, peers) : await backupCollection(core, ctx, name, aliasesOf, version, call, warnings),
    );
  }
  return {
    metadata: {
      tool: '@scholaria/backup-qdrant (snapshot API)',
      qdrantVersion: version,
      ...(commit ? { qdrantCommit: commit } : {}),
      url: a.target,
      cluster: {
        enabled: cluster.enabled,
        ...(cluster.peerId ? { peerId: cluster.peerId } : {}),
        peers: cluster.enabled ? cluster.peers.length : 1,
        mode: peers ? 'shards' : 'node',
        ...(peers ? { members: cluster.peers.map((p) => ({ peerId: p.id, uri: p.uri, url: peers.urls.get(p.id) ?? '' })) } : {}),
      },
      snapshotsKeptOnServer: opts.keepSnapshots,
      collections,
    },
    warnings,
  };
}
