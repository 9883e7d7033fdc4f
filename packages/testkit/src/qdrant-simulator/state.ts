/**
 * In-memory collections of the Qdrant simulator: configs, points and aliases, validated the way
 * Qdrant validates them (vector names and sizes, point id formats) and returned in the shapes of
 * Qdrant's OpenAPI (`CollectionInfo`, `Record`, `ScrollResult`).
 */

export type Distance = 'Cosine' | 'Euclid' | 'Dot' | 'Manhattan';
export type PointId = number | string;
export type VectorValue = number[];
export type PointVector = VectorValue | Record<string, VectorValue>;
export type Payload = Record<string, unknown>;

export interface VectorParams {
  size: number;
  distance: Distance;
  on_disk?: boolean | null;
  [extra: string]: unknown;
}

export type VectorsConfig = VectorParams | Record<string, VectorParams>;

export interface CollectionParams {
  vectors: VectorsConfig;
  shard_number: number;
  replication_factor: number;
  write_consistency_factor: number;
  on_disk_payload: boolean;
  sparse_vectors?: Record<string, unknown>;
}

/** The `config` object of Qdrant's `CollectionInfo`. */
export interface CollectionConfig {
  params: CollectionParams;
  hnsw_config: Record<string, unknown>;
  optimizer_config: Record<string, unknown>;
  wal_config: Record<string, unknown>;
  quantization_config: unknown;
  strict_mode_config: Record<string, unknown>;
}

export interface StoredPoint {
  id: PointId;
  vector: PointVector;
  payload: Payload;
}

export interface SimCollection {
  name: string;
  config: CollectionConfig;
  points: Map<string, StoredPoint>;
  /** Reads of CollectionInfo left that still see the collection optimizing (yellow) after a recovery. */
  indexingReads?: number;
}

/** Thrown by state operations; the server turns it into Qdrant's error envelope. */
export class QdrantSimError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'QdrantSimError';
  }
}

const DISTANCES: readonly string[] = ['Cosine', 'Euclid', 'Dot', 'Manhattan'];
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export const notFound = (what: string) => new QdrantSimError(404, `Not found: ${what}`);
export const wrongInput = (what: string) => new QdrantSimError(400, `Wrong input: ${what}`);
export const badRequest = (what: string) => new QdrantSimError(400, `Bad request: ${what}`);
export const formatError = (what: string) => new QdrantSimError(400, `Format error in JSON body: ${what}`);

export const collectionNotFound = (name: string) => notFound(`Collection \`${name}\` doesn't exist!`);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isSingleVectorParams(v: unknown): v is VectorParams {
  return isObject(v) && typeof v.size === 'number' && typeof v.distance === 'string';
}

export function validateCollectionName(name: string): void {
  if (name.length === 0 || name.length > 255 || /[<>:"/\\|?*\0\u0001-\u001f]/.test(name) || name === '.' || name === '..') {
    throw formatError(`collection name "${name}" contains characters that are not allowed`);
  }
}

function parseVectorParams(where: string, v: unknown): VectorParams {
  if (!isObject(v)) throw formatError(`${where}: expected an object with size and distance`);
  const { size, distance } = v;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 65536) {
    throw formatError(`${where}.size: expected a positive integer`);
  }
  if (typeof distance !== 'string' || !DISTANCES.includes(distance)) {
    throw formatError(`${where}.distance: unknown variant \`${String(distance)}\`, expected one of ${DISTANCES.map((d) => `\`${d}\``).join(', ')}`);
  }
  return { ...v, size, distance: distance as Distance };
}

export function parseVectorsConfig(v: unknown): VectorsConfig {
  if (v === undefined) throw formatError('missing field `vectors`');
  if (isSingleVectorParams(v)) return parseVectorParams('vectors', v);
  if (!isObject(v) || Object.keys(v).length === 0) throw formatError('vectors: expected {size, distance} or a map of named vector params');
  const named: Record<string, VectorParams> = {};
  for (const [name, params] of Object.entries(v)) {
    if (name === '') throw formatError('vectors: vector name must not be empty');
    named[name] = parseVectorParams(`vectors.${name}`, params);
  }
  return named;
}

/** Builds a full `CollectionConfig` from a `PUT /collections/{name}` body, with Qdrant's defaults. */
export function configFromCreateRequest(body: unknown): CollectionConfig {
  if (!isObject(body)) throw formatError('expected a JSON object');
  const vectors = parseVectorsConfig(body.vectors);
  const num = (key: string, dflt: number) => {
    const value = body[key];
    if (value === undefined || value === null) return dflt;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw formatError(`${key}: expected a positive integer`);
    return value;
  };
  const obj = (key: string, dflt: Record<string, unknown>) => (isObject(body[key]) ? { ...dflt, ...(body[key] as Record<string, unknown>) } : dflt);
  return {
    params: {
      vectors,
      shard_number: num('shard_number', 1),
      replication_factor: num('replication_factor', 1),
      write_consistency_factor: num('write_consistency_factor', 1),
      on_disk_payload: typeof body.on_disk_payload === 'boolean' ? body.on_disk_payload : true,
      ...(isObject(body.sparse_vectors) ? { sparse_vectors: body.sparse_vectors } : {}),
    },
    hnsw_config: obj('hnsw_config', { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false }),
    optimizer_config: obj('optimizers_config', {
      deleted_threshold: 0.2,
      vacuum_min_vector_number: 1000,
      default_segment_number: 0,
      max_segment_size: null,
      memmap_threshold: null,
      indexing_threshold: 20000,
      flush_interval_sec: 5,
      max_optimization_threads: null,
    }),
    wal_config: obj('wal_config', { wal_capacity_mb: 32, wal_segments_ahead: 0 }),
    quantization_config: body.quantization_config ?? null,
    strict_mode_config: obj('strict_mode_config', { enabled: false }),
  };
}

/** Qdrant accepts unsigned integers and UUIDs (with or without dashes) and returns UUIDs dashed, lower case. */
export function normalizePointId(id: unknown): PointId {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id;
  if (typeof id === 'string' && UUID_RE.test(id)) {
    const hex = id.replace(/-/g, '').toLowerCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  throw formatError(`value ${JSON.stringify(id)} is not a valid point ID, valid values are either an unsigned integer or a UUID`);
}

function storeVector(v: number[], params: VectorParams, where: string): number[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw formatError(`${where}: expected an array of numbers`);
  }
  if (v.length !== params.size) {
    throw wrongInput(`Vector dimension error: expected dim: ${params.size}, got ${v.length}`);
  }
  // Qdrant stores float32 and normalises vectors of Cosine collections on insert.
  let out = v.map((x) => Math.fround(x));
  if (params.distance === 'Cosine') {
    const norm = Math.sqrt(out.reduce((s, x) => s + x * x, 0));
    if (norm > 0) out = out.map((x) => Math.fround(x / norm));
  }
  return out;
}

export function preparePoint(collection: SimCollection, raw: unknown): StoredPoint {
  if (!isObject(raw)) throw formatError('points: expected objects with id and vector');
  const id = normalizePointId(raw.id);
  const vectors = collection.config.params.vectors;
  let vector: PointVector;
  if (isSingleVectorParams(vectors)) {
    const v = Array.isArray(raw.vector) ? raw.vector : isObject(raw.vector) && Array.isArray(raw.vector['']) ? raw.vector[''] : undefined;
    if (!v) throw wrongInput(`Not existing vector name error: the collection has one unnamed vector; point ${JSON.stringify(id)} sent named vectors`);
    vector = storeVector(v as number[], vectors, 'vector');
  } else {
    if (!isObject(raw.vector)) throw wrongInput(`Not existing vector name error: point ${JSON.stringify(id)} must send named vectors (${Object.keys(vectors).join(', ')})`);
    const named: Record<string, number[]> = {};
    for (const [name, v] of Object.entries(raw.vector)) {
      const params = vectors[name];
      if (!params) throw wrongInput(`Not existing vector name error: ${name}`);
      named[name] = storeVector(v as number[], params, `vector.${name}`);
    }
    vector = named;
  }
  const payload = raw.payload === undefined || raw.payload === null ? {} : raw.payload;
  if (!isObject(payload)) throw formatError('payload: expected an object');
  return { id, vector, payload: structuredClone(payload) };
}

/** Integer ids sort before UUIDs, each in ascending order, as Qdrant's scroll returns them. */
export function comparePointIds(a: PointId, b: PointId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedPoints(collection: SimCollection): StoredPoint[] {
  return [...collection.points.values()].sort((a, b) => comparePointIds(a.id, b.id));
}

/**
 * `points_count` is "approximate" (Qdrant's OpenAPI, CollectionInfo.points_count) and "might be
 * unreliable during the indexing process" (CountRequest.exact). While a recovered collection is
 * still optimizing (status yellow) the simulator reports a count that is off on purpose.
 */
export function approximateCount(collection: SimCollection): number {
  const count = collection.points.size;
  return collection.indexingReads ? count + Math.max(1, Math.floor(count / 8)) : count;
}

export function collectionInfo(collection: SimCollection): Record<string, unknown> {
  const count = approximateCount(collection);
  const indexing = Boolean(collection.indexingReads);
  if (collection.indexingReads) collection.indexingReads -= 1;
  return {
    status: indexing ? 'yellow' : 'green',
    optimizer_status: 'ok',
    indexed_vectors_count: 0,
    points_count: count,
    segments_count: Math.max(1, collection.config.params.shard_number),
    config: structuredClone(collection.config),
    payload_schema: {},
  };
}

export function selectPayload(payload: Payload, withPayload: unknown): Payload | undefined {
  if (withPayload === false) return undefined;
  if (Array.isArray(withPayload)) return Object.fromEntries(Object.entries(payload).filter(([k]) => withPayload.includes(k)));
  if (isObject(withPayload) && Array.isArray(withPayload.include)) {
    const inc = withPayload.include as unknown[];
    return Object.fromEntries(Object.entries(payload).filter(([k]) => inc.includes(k)));
  }
  if (isObject(withPayload) && Array.isArray(withPayload.exclude)) {
    const exc = withPayload.exclude as unknown[];
    return Object.fromEntries(Object.entries(payload).filter(([k]) => !exc.includes(k)));
  }
  return structuredClone(payload);
}

export function selectVector(vector: PointVector, withVector: unknown): PointVector | undefined {
  if (withVector === true) return structuredClone(vector);
  if (Array.isArray(withVector) && !Array.isArray(vector)) {
    return Object.fromEntries(Object.entries(vector).filter(([k]) => withVector.includes(k)));
  }
  return undefined;
}

export { isObject };
