import { createHash } from 'node:crypto';

/**
 * The demo's own Qdrant collection. The demo only ever creates, deletes and restores this one
 * collection, so pointing QDRANT_URL at a Qdrant that holds other data leaves that data alone.
 */
export const DEMO_COLLECTION = 'scholaria_quickstart_chunks';

export interface QdrantTarget {
  url: string;
  apiKey?: string;
}

async function call<T>(target: QdrantTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(new URL(path, target.url.endsWith('/') ? target.url : `${target.url}/`), {
    method,
    headers: { 'content-type': 'application/json', ...(target.apiKey ? { 'api-key': target.apiKey } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Qdrant ${method} /${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { result: T }).result;
}

export async function seedQdrant(target: QdrantTarget, points: number, dim = 64): Promise<void> {
  const exists = await call<{ exists: boolean }>(target, 'GET', `collections/${DEMO_COLLECTION}/exists`);
  if (exists.exists) await call(target, 'DELETE', `collections/${DEMO_COLLECTION}`);
  await call(target, 'PUT', `collections/${DEMO_COLLECTION}`, { vectors: { size: dim, distance: 'Cosine' } });
  const batch = 250;
  for (let start = 1; start <= points; start += batch) {
    const list = [];
    for (let id = start; id < Math.min(start + batch, points + 1); id++) {
      list.push({
        id,
        vector: Array.from({ length: dim }, (_, d) => Math.sin(id * 0.37 + d * 1.7)),
        payload: { chunk_id: id, context_id: 1 + (id % 400), topic_id: 1 + (id % 40), text: `Chunk ${id}` },
      });
    }
    await call(target, 'PUT', `collections/${DEMO_COLLECTION}/points?wait=true`, { points: list });
  }
}

export interface CollectionFingerprint {
  points: number;
  /** sha256 over every point (id, vector, payload) in id order. */
  checksum: string;
}

export async function qdrantFingerprint(target: QdrantTarget): Promise<CollectionFingerprint | 'missing'> {
  const exists = await call<{ exists: boolean }>(target, 'GET', `collections/${DEMO_COLLECTION}/exists`);
  if (!exists.exists) return 'missing';
  const hash = createHash('sha256');
  let points = 0;
  let offset: unknown = null;
  do {
    const page: { points: { id: unknown; vector: unknown; payload: unknown }[]; next_page_offset: unknown } = await call(
      target,
      'POST',
      `collections/${DEMO_COLLECTION}/points/scroll`,
      { limit: 500, with_payload: true, with_vector: true, ...(offset === null ? {} : { offset }) },
    );
    for (const p of page.points) hash.update(`${JSON.stringify([p.id, p.vector, p.payload])}\n`);
    points += page.points.length;
    offset = page.next_page_offset ?? null;
  } while (offset !== null);
  return { points, checksum: hash.digest('hex') };
}

export async function deleteDemoCollection(target: QdrantTarget): Promise<void> {
  await call(target, 'DELETE', `collections/${DEMO_COLLECTION}`);
}
