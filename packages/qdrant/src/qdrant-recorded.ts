/**
 * What the Qdrant source records in the manifest (per collection, per shard, the cluster) and
 * the small helpers that read it back: artifact names, point-count and vector-layout comparison.
 */
import { z } from 'zod';
import { BackupError } from '@scholaria/backup-core';
import { recordedCreateSchema, recordedMemberSchema, recordedShardSchema } from './qdrant-cluster.js';

export const SNAPSHOT_SUFFIX = '.snapshot';
export const CONTENT_TYPE = 'application/x-tar';

/** What the source records per collection in the manifest (component metadata). */
export const recordedCollectionSchema = z.object({
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

export const recordedMetadataSchema = z.object({
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

export function artifactNameFor(collection: string): string {
  // The engine refuses artifact names with a leading dot.
  return `${collection.startsWith('.') ? `_${collection}` : collection}${SNAPSHOT_SUFFIX}`;
}

/** `<collection>.shard-<id>.snapshot`: unambiguous from the right, so no two collections' shards collide. */
export function shardArtifactName(collection: string, shardId: number): string {
  return `${collection.startsWith('.') ? `_${collection}` : collection}.shard-${shardId}${SNAPSHOT_SUFFIX}`;
}

export function quoteList(names: string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}

export function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(url.hostname);
}

export function stableJson(value: unknown): string {
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
export function vectorLayout(vectors: unknown): unknown {
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

export function describeVectors(vectors: unknown): string {
  const layout = vectorLayout(vectors) as Record<string, unknown>;
  if (layout && 'size' in layout) return `${String(layout.size)}-d ${String(layout.distance)}`;
  return Object.entries(layout ?? {})
    .map(([k, v]) => `${k}: ${String((v as { size?: unknown }).size)}-d ${String((v as { distance?: unknown }).distance)}`)
    .join(', ');
}

export function countMatches(recorded: RecordedCollection, actual: number | null | undefined): boolean {
  if (recorded.pointsCount === null || actual === null || actual === undefined) return true;
  const [lo, hi] = recorded.pointsCountRange
    ? [Math.min(...recorded.pointsCountRange), Math.max(...recorded.pointsCountRange)]
    : [recorded.pointsCount, recorded.pointsCount];
  return actual >= lo && actual <= hi;
}

export function expectedCount(recorded: RecordedCollection): string {
  if (recorded.pointsCountRange) return `${Math.min(...recorded.pointsCountRange)}..${Math.max(...recorded.pointsCountRange)}`;
  return String(recorded.pointsCount);
}

/** The component metadata of a set, parsed; a clear MANIFEST_INVALID when another source wrote it. */
export function parseRecorded(metadata: Record<string, unknown>, component: string): z.infer<typeof recordedMetadataSchema> {
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
