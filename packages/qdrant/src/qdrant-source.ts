import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  BackupError,
  NotFoundError,
  type BackupSource,
  type SourceBackupContext,
  type SourceBackupResult,
  type SourceCheckResult,
  type SourceRestoreContext,
  type SourceRestoreResult,
  type SourceVerifyContext,
  type SourceVerifyResult,
  type ArtifactRecord,
} from '@scholaria/backup-core';
import {
  parseQdrantOptions,
  restoreOptionsSchema,
  validateCollectionName,
  type QdrantSourceOptions,
  type ResolvedQdrantOptions,
} from './qdrant-options.js';
import { QdrantApi, enc, type AliasOperation, type CallOptions, type ClusterInfo, type CollectionInfo } from './qdrant-api.js';
import { SnapshotVerifier } from './snapshot-verifier.js';
import { snapshotCompatibility, supportsSnapshotChecksum } from './qdrant-version.js';
import { describeTokenAccess, jwtAccess } from './qdrant-token.js';
import {
  captureCandidates,
  createBody,
  mapShards,
  peerDirectory,
  recordedCreateSchema,
  recordedMemberSchema,
  recordedShardSchema,
  shardKeysOf,
  shardLabel,
  shardsOf,
  waitForActiveReplicas,
  type PeerDirectory,
  type RecordedShard,
} from './qdrant-cluster.js';

const SNAPSHOT_SUFFIX = '.snapshot';
const CONTENT_TYPE = 'application/x-tar';

/** What the source records per collection in the manifest (component metadata). */
const recordedCollectionSchema = z.object({
  name: z.string().min(1),
  /** The collection snapshot's artifact (single node); absent when `shards` holds the shard snapshots. */
  artifact: z.string().min(1).optional(),
  /** Points when the snapshot was taken; `pointsCountRange` when writes moved it meanwhile. */
  pointsCount: z.number().int().nonnegative().nullable(),
  pointsCountRange: z.tuple([z.number(), z.number()]).optional(),
  vectors: z.unknown(),
  sparseVectors: z.unknown().optional(),
  shardNumber: z.number().optional(),
  replicationFactor: z.number().optional(),
  aliases: z.array(z.string()),
  snapshot: z
    .object({
      name: z.string(),
      size: z.number(),
      checksum: z.string().nullable(),
      creationTime: z.string().nullable(),
    })
    .optional(),
  /** SHA-256 of the snapshot bytes as downloaded (equals `snapshot.checksum` when Qdrant reported one). */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** Cluster capture: one snapshot per shard, with the peer it came from and the replica placement. */
  shards: z.array(recordedShardSchema).optional(),
  /** Cluster capture: what creating the collection again needs besides vectors and shard numbers. */
  create: recordedCreateSchema.optional(),
}).refine((c) => (c.shards !== undefined ? c.artifact === undefined : c.artifact !== undefined && c.snapshot !== undefined && c.sha256 !== undefined), {
  message: 'a collection records either artifact, snapshot and sha256 (one snapshot) or shards (cluster capture)',
});

const recordedMetadataSchema = z.object({
  qdrantVersion: z.string().optional(),
  collections: z.array(recordedCollectionSchema),
  cluster: z
    .object({
      enabled: z.boolean(),
      peerId: z.string().optional(),
      peers: z.number().optional(),
      /** 'shards': every shard captured from a peer holding it; 'node' (or absent): one node's collection snapshots. */
      mode: z.enum(['node', 'shards']).optional(),
      members: z.array(recordedMemberSchema).optional(),
    })
    .optional(),
});

export type RecordedCollection = z.infer<typeof recordedCollectionSchema>;

function artifactNameFor(collection: string): string {
  // The engine refuses artifact names with a leading dot.
  return `${collection.startsWith('.') ? `_${collection}` : collection}${SNAPSHOT_SUFFIX}`;
}

/** `<collection>.shard-<id>.snapshot`: unambiguous from the right, so no two collections' shards collide. */
function shardArtifactName(collection: string, shardId: number): string {
  return `${collection.startsWith('.') ? `_${collection}` : collection}.shard-${shardId}${SNAPSHOT_SUFFIX}`;
}

function quoteList(names: string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}

function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(url.hostname);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined && (value as Record<string, unknown>)[k] !== null)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Only what identifies the vector layout (names, sizes, distances); tuning params may differ by version. */
function vectorLayout(vectors: unknown): unknown {
  const pick = (p: unknown) => {
    const v = p as { size?: unknown; distance?: unknown; multivector_config?: unknown };
    return { size: v?.size, distance: v?.distance };
  };
  if (vectors && typeof vectors === 'object' && 'size' in vectors && 'distance' in vectors) return pick(vectors);
  if (vectors && typeof vectors === 'object') {
    return Object.fromEntries(Object.entries(vectors).map(([k, v]) => [k, pick(v)]));
  }
  return vectors;
}

function describeVectors(vectors: unknown): string {
  const layout = vectorLayout(vectors) as Record<string, unknown>;
  if (layout && 'size' in layout) return `${String(layout.size)}-d ${String(layout.distance)}`;
  return Object.entries(layout ?? {})
    .map(([k, v]) => `${k}: ${String((v as { size?: unknown }).size)}-d ${String((v as { distance?: unknown }).distance)}`)
    .join(', ');
}

function countMatches(recorded: RecordedCollection, actual: number | null | undefined): boolean {
  if (recorded.pointsCount === null || actual === null || actual === undefined) return true;
  const [lo, hi] = recorded.pointsCountRange
    ? [Math.min(...recorded.pointsCountRange), Math.max(...recorded.pointsCountRange)]
    : [recorded.pointsCount, recorded.pointsCount];
  return actual >= lo && actual <= hi;
}

function expectedCount(recorded: RecordedCollection): string {
  if (recorded.pointsCountRange) return `${Math.min(...recorded.pointsCountRange)}..${Math.max(...recorded.pointsCountRange)}`;
  return String(recorded.pointsCount);
}

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

/**
 * Deletes the copy of an uploaded snapshot that Qdrant keeps (qdrant/qdrant#10207). Returns a
 * warning when it stays on the server. A failed upload may have left nothing (a checksum
 * mismatch is refused before the file is kept), so NOT_FOUND is then expected.
 */
async function removeUploadedSnapshot(
  a: QdrantApi,
  target: string,
  name: string,
  uploaded: boolean,
  ctx: SourceRestoreContext,
): Promise<string | undefined> {
  try {
    await a.deleteSnapshot(target, name, { logger: ctx.logger, failCode: 'RESTORE_FAILED' });
    return undefined;
  } catch (error) {
    const e = a.translate(error, `deleting the uploaded snapshot "${name}"`, 'RESTORE_FAILED');
    if (e.code === 'NOT_FOUND' && !uploaded) return undefined;
    const text = `could not delete the uploaded snapshot "${name}" of "${target}" that Qdrant keeps after a restore (${e.message}); delete it by hand to free the disk: curl -X DELETE "$QDRANT_URL/collections/${enc(target)}/snapshots/${enc(name)}" -H "api-key: $QDRANT_API_KEY"`;
    ctx.logger.warn(text);
    return text;
  }
}

export function createQdrantSource(options: QdrantSourceOptions): BackupSource {
  const opts: ResolvedQdrantOptions = parseQdrantOptions(options);
  const component = opts.name;
  let api: QdrantApi | undefined;
  // Lazily: constructing the source (and an engine holding it) never touches the network.
  const getApi = () => (api ??= new QdrantApi(opts, component));

  /**
   * Target name of a recorded collection: the call's `restoreAs` entry, else the call's
   * `collectionSuffix`, else the factory's `restoreAs`, else the factory's `collectionSuffix`.
   */
  const restoreTarget = (collection: string, override?: Record<string, string>, suffix?: string): string => {
    const fromCall = override?.[collection];
    if (fromCall) return fromCall;
    if (suffix) return `${collection}${suffix}`;
    const factory = opts.restoreAs;
    const fromFactory = typeof factory === 'function' ? factory(collection) : factory?.[collection];
    if (fromFactory) return fromFactory;
    return opts.collectionSuffix ? `${collection}${opts.collectionSuffix}` : collection;
  };

  function parseRecorded(metadata: Record<string, unknown>): z.infer<typeof recordedMetadataSchema> {
    const parsed = recordedMetadataSchema.safeParse(metadata);
    if (!parsed.success) {
      throw new BackupError(
        'MANIFEST_INVALID',
        `${component}: the manifest's ${component} metadata is not what the Qdrant source records (${parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; ')})`,
        { component, hint: 'Was this component backed up by another source? Restore it with the source that wrote it.' },
      );
    }
    return parsed.data;
  }

  async function backupCollection(
    ctx: SourceBackupContext,
    name: string,
    aliasesOf: (c: string) => string[],
    version: string,
    call: CallOptions,
    warnings: string[],
  ): Promise<RecordedCollection> {
    const a = getApi();
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
      const verifier = new SnapshotVerifier({
        component,
        collection: name,
        snapshot: desc.name,
        checksum: desc.checksum ?? null,
        ...(typeof desc.size === 'number' ? { size: desc.size } : {}),
      });
      const sink = ctx.artifact(artifact, {
        contentType: CONTENT_TYPE,
        ...(opts.compress ? {} : { compression: false as const }),
        restoreHint: `curl -fS -X POST "$QDRANT_URL/collections/${enc(name)}/snapshots/upload?priority=snapshot&wait=true${
          desc.checksum ? `&checksum=${desc.checksum}` : ''
        }" -H "api-key: $QDRANT_API_KEY" -F "snapshot=@-;filename=${artifact}"`,
        metadata: {
          collection: name,
          snapshot: desc.name,
          ...(desc.checksum ? { checksum: desc.checksum } : {}),
          size: desc.size,
          qdrantVersion: version,
        },
      });
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
      const pointsBefore = before.points_count ?? null;
      const pointsAfter = after.points_count ?? null;
      const moved = pointsBefore !== null && pointsAfter !== null && pointsBefore !== pointsAfter;
      if (moved) {
        warnings.push(
          `collection "${name}" changed while its snapshot was taken (${pointsBefore} -> ${pointsAfter} points); the snapshot holds one of these states`,
        );
      }
      ctx.logger.info(`${component}: stored ${artifact}`, { collection: name, bytes: verifier.bytes, sha256: verifier.digest });
      const params = after.config.params;
      return {
        name,
        artifact,
        pointsCount: pointsAfter,
        ...(moved ? { pointsCountRange: [pointsBefore, pointsAfter] as [number, number] } : {}),
        vectors: params.vectors ?? null,
        ...(params.sparse_vectors ? { sparseVectors: params.sparse_vectors } : {}),
        ...(typeof params.shard_number === 'number' ? { shardNumber: params.shard_number } : {}),
        ...(typeof params.replication_factor === 'number' ? { replicationFactor: params.replication_factor } : {}),
        aliases: aliasesOf(name),
        snapshot: {
          name: desc.name,
          size: desc.size,
          checksum: desc.checksum ?? null,
          creationTime: desc.creation_time ?? null,
        },
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

  /**
   * Snapshots one shard on a peer holding an Active replica and stores it. A peer that fails
   * before the download starts (down, unreachable, refusing) is skipped for the next active
   * replica; once bytes flow into the artifact, a failure fails the backup.
   */
  async function captureShard(
    ctx: SourceBackupContext,
    name: string,
    shard: { shardId: number; shardKey?: string | number },
    placement: Awaited<ReturnType<QdrantApi['collectionCluster']>>,
    version: string,
    call: CallOptions,
    warnings: string[],
    peers: PeerDirectory,
  ): Promise<RecordedShard> {
    const label = shardLabel(shard);
    const { active, all } = captureCandidates(placement, shard.shardId);
    if (active.length === 0) {
      throw new BackupError(
        'SOURCE_FAILED',
        `${component}: ${label} of collection "${name}" has no Active replica to snapshot (${all.map((r) => `peer ${r.peerId}: ${r.state}`).join(', ') || 'no replica listed'})`,
        {
          component,
          retryable: true,
          hint: `Qdrant is recovering this shard or its peers are gone; wait until GET /collections/${enc(name)}/cluster lists an Active replica of shard ${shard.shardId}, then back up again. No backup set was written.`,
        },
      );
    }
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
        const verifier = new SnapshotVerifier({
          component,
          collection: name,
          snapshot: desc.name,
          checksum: desc.checksum ?? null,
          ...(typeof desc.size === 'number' ? { size: desc.size } : {}),
        });
        const sink = ctx.artifact(artifact, {
          contentType: CONTENT_TYPE,
          ...(opts.compress ? {} : { compression: false as const }),
          restoreHint: `curl -fS -X POST "$QDRANT_PEER_URL/collections/${enc(name)}/shards/${shard.shardId}/snapshots/upload?priority=snapshot&wait=true${
            desc.checksum ? `&checksum=${desc.checksum}` : ''
          }" -H "api-key: $QDRANT_API_KEY" -F "snapshot=@-;filename=${artifact}"  # QDRANT_PEER_URL: a peer holding shard ${shard.shardId} (GET /collections/${enc(name)}/cluster)`,
          metadata: {
            collection: name,
            shardId: shard.shardId,
            ...(shard.shardKey !== undefined ? { shardKey: shard.shardKey } : {}),
            peerId,
            snapshot: desc.name,
            ...(desc.checksum ? { checksum: desc.checksum } : {}),
            size: desc.size,
            qdrantVersion: version,
          },
        });
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
        snapshot: { name: desc.name, size: desc.size, checksum: desc.checksum ?? null, creationTime: desc.creation_time ?? null },
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
  async function backupShardedCollection(
    ctx: SourceBackupContext,
    name: string,
    aliasesOf: (c: string) => string[],
    version: string,
    call: CallOptions,
    warnings: string[],
    peers: PeerDirectory,
  ): Promise<RecordedCollection> {
    const a = getApi();
    const placement = await a.collectionCluster(name, call);
    // Every shard needs an Active replica: refuse before any snapshot is made.
    for (const shard of shardsOf(placement)) {
      const { active, all } = captureCandidates(placement, shard.shardId);
      if (active.length > 0) continue;
      throw new BackupError(
        'SOURCE_FAILED',
        `${component}: ${shardLabel(shard)} of collection "${name}" has no Active replica to snapshot (${all.map((r) => `peer ${r.peerId}: ${r.state}`).join(', ') || 'no replica listed'})`,
        {
          component,
          retryable: true,
          hint: `Qdrant is recovering this shard or its peers are gone; wait until GET /collections/${enc(name)}/cluster lists an Active replica of shard ${shard.shardId}, then back up again. No backup set was written.`,
        },
      );
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
      recordedShards.push(await captureShard(ctx, name, shard, placement, version, call, warnings, peers));
    }
    const after: CollectionInfo = await a.collection(name, call);
    const pointsBefore = before?.points_count ?? null;
    const pointsAfter = after.points_count ?? null;
    const moved = pointsBefore !== null && pointsAfter !== null && pointsBefore !== pointsAfter;
    if (moved) warnings.push(`collection "${name}" changed while its shards were captured (${pointsBefore} -> ${pointsAfter} points); each shard snapshot holds one moment`);
    const params = after.config.params as typeof after.config.params & { sharding_method?: 'auto' | 'custom' };
    return {
      name,
      pointsCount: pointsAfter,
      ...(moved ? { pointsCountRange: [pointsBefore, pointsAfter] as [number, number] } : {}),
      vectors: params.vectors ?? null,
      ...(params.sparse_vectors ? { sparseVectors: params.sparse_vectors } : {}),
      ...(typeof params.shard_number === 'number' ? { shardNumber: params.shard_number } : {}),
      ...(typeof params.replication_factor === 'number' ? { replicationFactor: params.replication_factor } : {}),
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

  /**
   * Restores a cluster-captured collection shard by shard: creates it with the recorded layout
   * when missing, uploads each shard snapshot to a peer holding that shard with
   * `priority=snapshot`, waits for the other replicas to be re-synced, and returns the exact count.
   */
  async function restoreShards(
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
    const a = getApi();
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

  const source: BackupSource = {
    specVersion: 'v1',
    name: component,

    async backup(ctx: SourceBackupContext): Promise<SourceBackupResult> {
      const a = getApi();
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
          peers ? await backupShardedCollection(ctx, name, aliasesOf, version, call, warnings, peers) : await backupCollection(ctx, name, aliasesOf, version, call, warnings),
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
    },

    async restore(ctx: SourceRestoreContext): Promise<SourceRestoreResult> {
      const a = getApi();
      const call: CallOptions = { signal: ctx.signal, logger: ctx.logger, failCode: 'RESTORE_FAILED' };
      const recorded = parseRecorded(ctx.component.metadata);
      const parsedOptions = restoreOptionsSchema.safeParse(ctx.options ?? {});
      if (!parsedOptions.success) {
        throw new BackupError(
          'USAGE',
          `${component}: invalid restore options: ${parsedOptions.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`,
          {
            component,
            hint: "componentOptions.qdrant accepts { restoreAs? / targetCollections?: { original: target }, collectionSuffix?: string, aliasTargets?: 'refuse' | 'resolve', collections?: string[], aliases?: boolean }.",
          },
        );
      }
      const ropts = parsedOptions.data;
      for (const [from, to] of Object.entries(ropts.targetCollections ?? {})) {
        const other = ropts.restoreAs?.[from];
        if (other !== undefined && other !== to) {
          throw new BackupError('USAGE', `${component}: restoreAs and targetCollections give "${from}" two targets ("${other}" and "${to}")`, {
            component,
            hint: 'Pass one map (targetCollections and restoreAs are the same option).',
          });
        }
      }
      const targetMap = ropts.targetCollections || ropts.restoreAs ? { ...ropts.targetCollections, ...ropts.restoreAs } : undefined;
      const recordedNames = recorded.collections.map((c) => c.name);
      if (ropts.collections) {
        const unknown = ropts.collections.filter((c) => !recordedNames.includes(c));
        if (unknown.length) {
          throw new BackupError('USAGE', `${component}: ${quoteList(unknown)} ${unknown.length > 1 ? 'are' : 'is'} not in this backup set`, {
            component,
            hint: recordedNames.length ? `The set holds ${quoteList(recordedNames)}.` : 'The set holds no Qdrant collections.',
          });
        }
      }
      const chosen = recorded.collections.filter((c) => !ropts.collections || ropts.collections.includes(c.name));
      const items = chosen.map((c) => {
        const target = restoreTarget(c.name, targetMap, ropts.collectionSuffix);
        const invalid = validateCollectionName(target);
        if (invalid) {
          throw new BackupError('USAGE', `${component}: restore target "${target}" for "${c.name}" ${invalid}`, {
            component,
            hint: 'Fix restoreAs or collectionSuffix.',
          });
        }
        const findArtifact = (name: string, what: string): ArtifactRecord => {
          const found = ctx.component.artifacts.find((x) => x.name === name);
          if (!found) {
            throw new BackupError('MANIFEST_INVALID', `${component}: the manifest lists ${what} of collection "${c.name}" but no artifact "${name}"`, {
              component,
              hint: 'The set is incomplete for this collection; restore it from another set.',
            });
          }
          return found;
        };
        const shards = c.shards?.map((sh) => {
          const art = findArtifact(sh.artifact, shardLabel(sh));
          return { recorded: sh, artifact: art, checksum: (art.metadata?.checksum as string | undefined) ?? sh.sha256 };
        });
        const artifact = shards ? undefined : findArtifact(c.artifact as string, 'the snapshot');
        const checksum = artifact ? ((artifact.metadata?.checksum as string | undefined) ?? (c.sha256 as string)) : '';
        const withAliases = ropts.aliases ?? target === c.name;
        return { recorded: c, target, artifact, shards, checksum, withAliases, viaAlias: undefined as string | undefined };
      });
      const targets = items.map((i) => i.target);
      const dup = targets.find((t, i) => targets.indexOf(t) !== i);
      if (dup) throw new BackupError('USAGE', `${component}: two collections would be restored into "${dup}"`, { component, hint: 'Give each a distinct restoreAs target.' });

      // Preflight (dry-run and real alike): reachable, authorised, same minor version.
      const token = jwtAccess(opts.apiKey);
      if (token && !('global' in token && token.global === 'm')) {
        // snapshot_api.rs upload_snapshot: ActixAccessManage, i.e. global manage access.
        throw new BackupError(
          'AUTH_FAILED',
          `${component}: the API key is a Qdrant JWT with ${describeTokenAccess(token)}; restoring a snapshot into Qdrant needs global manage access`,
          {
            component,
            hint: 'Restore with the read-write API key (service.api_key) or a JWT whose claims hold "access": "m". A collection-scoped token can back up (it needs "rw" on each collection) but not restore.',
          },
        );
      }
      const { version } = await a.version(call);
      const compat = snapshotCompatibility(recorded.qdrantVersion, version);
      if (!compat.ok) {
        throw new BackupError('UNSUPPORTED_VERSION', `${component}: cannot restore into Qdrant at ${a.target}: ${compat.reason}`, {
          component,
          hint: `Restore into a Qdrant ${recorded.qdrantVersion ?? ''} server (same major.minor, e.g. the qdrant/qdrant:v${recorded.qdrantVersion ?? 'X.Y.Z'} image), then upgrade it if needed.`,
        });
      }
      const warnings: string[] = compat.warning ? [compat.warning] : [];
      // Qdrant before 1.8 ignores `checksum` on upload: do not claim it verified anything.
      const serverChecksums = supportsSnapshotChecksum(version);
      if (!serverChecksums && items.length > 0) {
        warnings.push(
          `Qdrant ${version} does not verify an uploaded snapshot's checksum (from 1.8 on it does); the artifacts' SHA-256 is verified while they are read from storage`,
        );
      }
      const existing = new Set(await a.collections(call));
      const currentAliases = await a.aliases(call);
      const aliasTarget = new Map(currentAliases.map((x) => [x.alias_name, x.collection_name]));

      // Qdrant resolves an alias in the upload path to the collection behind it
      // (lib/storage/src/content_manager/toc/mod.rs resolve_name), so "create collection X"
      // would overwrite the live collection X points at.
      for (const i of items) {
        const behind = aliasTarget.get(i.target);
        if (behind === undefined) continue;
        if ((ropts.aliasTargets ?? 'refuse') === 'refuse') {
          throw new BackupError(
            'USAGE',
            `${component}: restore target "${i.target}" (for "${i.recorded.name}") is an alias of collection "${behind}" on ${a.target}: Qdrant would overwrite "${behind}"`,
            {
              component,
              hint: `Restore into a collection name that is not an alias (restoreAs or collectionSuffix), or pass aliasTargets: 'resolve' to replace "${behind}" on purpose.`,
            },
          );
        }
        i.viaAlias = i.target;
        i.target = behind;
      }
      {
        const resolved = items.map((i) => i.target);
        const twice = resolved.find((t, n) => resolved.indexOf(t) !== n);
        if (twice) {
          throw new BackupError('USAGE', `${component}: two collections would be restored into "${twice}" (through an alias)`, {
            component,
            hint: 'Give each a distinct restoreAs target.',
          });
        }
      }

      // Qdrant refuses a snapshot whose vectors config or shard number differ from the existing
      // collection ("Snapshot is not compatible with existing collection", recover.rs), after
      // the earlier collections of the set were already replaced: compare them all first.
      const incompatible: string[] = [];
      for (const i of items) {
        if (!existing.has(i.target)) continue;
        const live = (await a.collection(i.target, call)).config.params;
        if (stableJson(live.vectors ?? null) !== stableJson(i.recorded.vectors ?? null)) {
          const same = describeVectors(live.vectors) === describeVectors(i.recorded.vectors);
          incompatible.push(
            `collection "${i.target}" on ${a.target} has vectors ${describeVectors(live.vectors)}, the backup recorded ${describeVectors(i.recorded.vectors)}${
              same ? ' (vector parameters such as on_disk, hnsw or quantization differ)' : ''
            }`,
          );
        }
        if (i.shards) {
          // Shards are restored one by one into the shard of the same id (or key): the layouts must match.
          const { problems } = mapShards(i.shards.map((x) => x.recorded), shardsOf(await a.collectionCluster(i.target, call)));
          for (const p of problems) incompatible.push(`collection "${i.target}" on ${a.target}: ${p}`);
        } else if (typeof i.recorded.shardNumber === 'number' && typeof live.shard_number === 'number' && live.shard_number !== i.recorded.shardNumber) {
          incompatible.push(`collection "${i.target}" on ${a.target} has ${live.shard_number} shards, the backup recorded ${i.recorded.shardNumber}`);
        }
      }
      if (incompatible.length > 0) {
        throw new BackupError(
          'RESTORE_FAILED',
          `${component}: Qdrant cannot restore these snapshots over the existing collections (nothing was changed): ${incompatible.join('; ')}`,
          {
            component,
            hint: 'Restore into fresh collection names (restoreAs or collectionSuffix), or delete those collections first if replacing them is intended.',
          },
        );
      }

      const plan: string[] = [];
      if (items.length === 0) plan.push('nothing to restore: the set holds no Qdrant collections');
      for (const i of items) {
        const via = i.viaAlias ? ` (restore target "${i.viaAlias}" is an alias of "${i.target}")` : '';
        if (i.shards) {
          const n = i.shards.length;
          const layout = `${n} shard${n === 1 ? '' : 's'}${i.recorded.replicationFactor ? `, replication factor ${i.recorded.replicationFactor}` : ''}`;
          const from = `${n} shard snapshot${n === 1 ? '' : 's'} (${expectedCount(i.recorded)} points, ${describeVectors(i.recorded.vectors)}, from Qdrant ${recorded.qdrantVersion ?? '?'})`;
          plan.push(
            existing.has(i.target)
              ? `replace the ${layout} of collection "${i.target}"${via} (exists, its data will be overwritten) with ${from}, each uploaded to a peer holding that shard`
              : `create collection "${i.target}" (${layout}) and upload ${from}, each to a peer holding that shard`,
          );
          continue;
        }
        const source = `${(i.artifact as ArtifactRecord).path} (${expectedCount(i.recorded)} points, ${describeVectors(i.recorded.vectors)}, from Qdrant ${recorded.qdrantVersion ?? '?'})`;
        plan.push(
          existing.has(i.target)
            ? `replace collection "${i.target}"${via} (exists, its data will be overwritten) with ${source}`
            : `create collection "${i.target}" from ${source}`,
        );
      }
      const actions: AliasOperation[] = [];
      for (const i of items) {
        for (const alias of i.recorded.aliases) {
          if (!i.withAliases) {
            plan.push(`leave alias "${alias}" unchanged ("${i.recorded.name}" is restored as "${i.target}"; pass aliases: true to move it)`);
            continue;
          }
          if (existing.has(alias) || items.some((x) => x.target === alias)) {
            throw new BackupError('RESTORE_FAILED', `${component}: cannot recreate alias "${alias}": a collection with that name exists on ${a.target}`, {
              component,
              hint: 'Rename or delete that collection, or restore with aliases: false.',
            });
          }
          const current = aliasTarget.get(alias);
          if (current === i.target) {
            plan.push(`alias "${alias}" already points at "${i.target}"`);
            continue;
          }
          if (current !== undefined) actions.push({ delete_alias: { alias_name: alias } });
          actions.push({ create_alias: { collection_name: i.target, alias_name: alias } });
          plan.push(`point alias "${alias}" at "${i.target}"${current !== undefined ? ` (now at "${current}")` : ''}`);
        }
      }
      const metadata = { qdrantVersion: version, url: a.target, targets: Object.fromEntries(items.map((i) => [i.recorded.name, i.target])) };
      if (ctx.dryRun) return { plan, warnings, metadata };

      const restored: { collection: string; target: string; pointsCount: number | null }[] = [];
      const mismatches: string[] = [];
      // The name Qdrant stores the upload under (snapshots/<target>/<name>): unique per run, so
      // it never replaces a snapshot of the user's, and deleted again below.
      const uploadTag = `scholaria-restore-${ctx.setId}-${randomBytes(4).toString('hex')}`;
      let targetPeers: PeerDirectory | undefined;
      const peersOfTarget = async (): Promise<PeerDirectory> => {
        if (targetPeers) return targetPeers;
        let cluster: ClusterInfo = { enabled: false, peers: [] };
        try {
          cluster = await a.cluster(call);
        } catch (error) {
          ctx.logger.warn(`${component}: could not read the cluster status (${a.translate(error, 'reading GET /cluster', 'RESTORE_FAILED').message}); assuming a single node`);
        }
        targetPeers = peerDirectory(a, opts, cluster, component);
        return targetPeers;
      };
      for (const i of items) {
        if (i.shards) {
          const count = await restoreShards(ctx, i, existing.has(i.target), uploadTag, serverChecksums, call, warnings, await peersOfTarget());
          restored.push({ collection: i.recorded.name, target: i.target, pointsCount: count });
          if (!countMatches(i.recorded, count)) mismatches.push(`"${i.target}" has ${String(count)} points, the backup recorded ${expectedCount(i.recorded)}`);
          continue;
        }
        const art = i.artifact as ArtifactRecord;
        ctx.logger.info(`${component}: uploading ${art.name} into collection "${i.target}"`, { collection: i.target });
        const uploadName = `${uploadTag}-${art.name}`.replace(/[^A-Za-z0-9._-]/g, '_');
        let uploaded = false;
        try {
          await a.upload(
            i.target,
            async () => ({ stream: await ctx.open(art.name), size: art.rawSize, filename: uploadName }),
            serverChecksums ? i.checksum : undefined,
            call,
          );
          uploaded = true;
          const count = await a.settledCount(i.target, call);
          restored.push({ collection: i.recorded.name, target: i.target, pointsCount: count });
          if (!countMatches(i.recorded, count)) {
            mismatches.push(`"${i.target}" has ${String(count)} points, the backup recorded ${expectedCount(i.recorded)}`);
          }
        } finally {
          const left = await removeUploadedSnapshot(a, i.target, uploadName, uploaded, ctx);
          if (left) warnings.push(left);
        }
      }
      if (actions.length > 0) await a.updateAliases(actions, call);

      if (mismatches.length > 0) {
        // Only a backup of one node of a cluster (before shard capture) may legitimately miss points.
        const multiPeer = recorded.cluster?.mode !== 'shards' && (recorded.cluster?.peers ?? 1) > 1;
        const message = `${component}: points_count after restore differs from the backup: ${mismatches.join('; ')}`;
        if (multiPeer) {
          warnings.push(`${message} (expected: the backup came from one peer of a cluster)`);
        } else {
          throw new BackupError('RESTORE_FAILED', message, {
            component,
            hint: 'Something wrote to the collection during the restore, or the snapshot is not the one recorded; run the restore again and compare with verify.',
          });
        }
      }
      return { plan, warnings, metadata: { ...metadata, restored } };
    },

    async check(checkOptions?: { signal?: AbortSignal }): Promise<SourceCheckResult> {
      const a = getApi();
      const call: CallOptions = { ...(checkOptions?.signal ? { signal: checkOptions.signal } : {}), failCode: 'SOURCE_FAILED' };
      const problems: string[] = [];
      const warnings: string[] = [];
      const details: Record<string, unknown> = { url: a.target };
      const problem = (e: unknown, op: string) => {
        const err = a.translate(e, op);
        problems.push(err.hint ? `${err.message}. ${err.hint}` : err.message);
      };
      if (opts.apiKey && a.url.protocol === 'http:' && !isLoopback(a.url)) {
        warnings.push(`the API key is sent over plain http to ${a.target}; use https`);
      }
      try {
        const { version } = await a.version(call);
        details.version = version;
      } catch (e) {
        problem(e, 'reading the server version');
        return { ok: false, details, problems, warnings };
      }
      try {
        const names = await a.collections(call);
        details.collections = names;
        const missing = (opts.collections ?? []).filter((c) => !names.includes(c));
        if (missing.length) problems.push(`collection${missing.length > 1 ? 's' : ''} ${quoteList(missing)} configured but not on the server`);
      } catch (e) {
        problem(e, 'listing collections');
      }
      try {
        const cluster = await a.cluster(call);
        details.cluster = { enabled: cluster.enabled, peers: cluster.enabled ? cluster.peers.length : 1, ...(cluster.peerId ? { peerId: cluster.peerId } : {}) };
        if (cluster.enabled && cluster.peers.length > 1) {
          // Backups snapshot each shard on a peer holding it: every peer must be reachable here.
          const peers = peerDirectory(a, opts, cluster, component);
          (details.cluster as Record<string, unknown>).peerUrls = Object.fromEntries(cluster.peers.map((p) => [p.id, peers.urls.get(p.id) ?? null]));
          for (const p of cluster.peers) {
            try {
              await peers.api(p.id).version(call);
            } catch (e) {
              const err = BackupError.isInstance(e) ? e : a.translate(e, `reaching peer ${p.id}`);
              problems.push(
                `Qdrant peer ${p.id} (p2p ${p.uri}) is not reachable at ${peers.urls.get(p.id) ?? '(no URL)'}: ${err.message}. Set QDRANT_PEER_URLS or QDRANT_PEER_URL_TEMPLATE so every peer's REST API is reachable; a backup snapshots each shard on a peer holding it`,
              );
            }
          }
        }
      } catch (e) {
        warnings.push(`could not read the cluster status: ${a.translate(e, 'reading GET /cluster').message}`);
      }
      return { ok: problems.length === 0, details, problems, warnings };
    },

    async verify(ctx: SourceVerifyContext): Promise<SourceVerifyResult> {
      const a = getApi();
      const call: CallOptions = { signal: ctx.signal, logger: ctx.logger, failCode: 'VERIFY_FAILED' };
      const recorded = parseRecorded(ctx.component.metadata);
      const mismatches: string[] = [];
      let aliases: { alias_name: string; collection_name: string }[] = [];
      try {
        aliases = await a.aliases(call);
      } catch (e) {
        const err = a.translate(e, 'listing aliases', 'VERIFY_FAILED');
        return { ok: false, mismatches: [err.message] };
      }
      for (const c of recorded.collections) {
        const target = restoreTarget(c.name);
        let info: CollectionInfo;
        try {
          info = await a.collection(target, call);
        } catch (e) {
          const err = a.translate(e, `reading collection "${target}"`, 'VERIFY_FAILED');
          mismatches.push(err.code === 'NOT_FOUND' ? `collection "${target}" does not exist` : err.message);
          continue;
        }
        // points_count of CollectionInfo is an estimate; compare the exact count.
        let count: number | null | undefined = info.points_count;
        try {
          count = await a.exactCount(target, call);
        } catch (e) {
          mismatches.push(a.translate(e, `counting the points of "${target}"`, 'VERIFY_FAILED').message);
          continue;
        }
        if (!countMatches(c, count)) {
          mismatches.push(`collection "${target}" has ${String(count)} points, the backup recorded ${expectedCount(c)}`);
        }
        if (stableJson(vectorLayout(info.config.params.vectors)) !== stableJson(vectorLayout(c.vectors))) {
          mismatches.push(
            `collection "${target}" has vectors ${describeVectors(info.config.params.vectors)}, the backup recorded ${describeVectors(c.vectors)}`,
          );
        }
        if (target === c.name) {
          for (const alias of c.aliases) {
            const at = aliases.find((x) => x.alias_name === alias)?.collection_name;
            if (at !== target) mismatches.push(`alias "${alias}" ${at ? `points at "${at}"` : 'is missing'}, the backup had it on "${target}"`);
          }
        }
      }
      return { ok: mismatches.length === 0, mismatches };
    },
  };
  return source;
}
