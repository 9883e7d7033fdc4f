/**
 * Test data written and read through Qdrant's REST API with the official client, so the same
 * helpers work against the simulator and against a real Qdrant (QDRANT_URL).
 */
import { QdrantClient } from '@qdrant/js-client-rest';

export function clientFor(url: string, apiKey?: string): QdrantClient {
  const u = new URL(url);
  return new QdrantClient({
    url: `${u.protocol}//${u.host}`,
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
    ...(u.pathname.replace(/\/+$/, '') ? { prefix: u.pathname.replace(/\/+$/, '') } : {}),
    checkCompatibility: false,
    headers: apiKey ? { 'api-key': apiKey } : {},
  });
}

/** Deterministic pseudo-random numbers, so a failing comparison is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

export interface SeedNames {
  /** Named vectors (text: 4-d Cosine, title: 3-d Dot), integer ids. */
  docs: string;
  /** One unnamed 8-d Euclid vector, UUID ids. */
  chunks: string;
  docsAlias: string;
  chunksAlias: string;
}

export function seedNames(prefix = ''): SeedNames {
  return {
    docs: `${prefix}docs`,
    chunks: `${prefix}chunks`,
    docsAlias: `${prefix}docs_live`,
    chunksAlias: `${prefix}chunks_current`,
  };
}

function uuid(i: number): string {
  const hex = (i * 2654435761).toString(16).padStart(8, '0').slice(-8);
  return `${hex}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

export async function seed(client: QdrantClient, names: SeedNames = seedNames()): Promise<void> {
  const r = rng(42);
  await client.createCollection(names.docs, {
    vectors: { text: { size: 4, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } },
  });
  await client.upsert(names.docs, {
    wait: true,
    points: Array.from({ length: 25 }, (_, i) => ({
      id: i + 1,
      vector: { text: [r(), r(), r(), r()], title: [r(), r(), r()] },
      payload: {
        title: `문서 ${i + 1} — “quoted” & <tagged>`,
        topic: ['math', 'physics', 'history'][i % 3],
        tags: i % 2 ? ['a', 'b'] : [],
        meta: { page: i, score: i / 7, draft: i % 5 === 0, nested: { deep: [1, { x: null }] } },
      },
    })),
  });
  await client.createCollection(names.chunks, { vectors: { size: 8, distance: 'Euclid' } });
  await client.upsert(names.chunks, {
    wait: true,
    points: Array.from({ length: 15 }, (_, i) => ({
      id: uuid(i + 1),
      vector: Array.from({ length: 8 }, () => r()),
      payload: { chunk: i, text: `chunk ${i} of the corpus`, context_id: (i % 4) + 1 },
    })),
  });
  await client.updateCollectionAliases({
    actions: [
      { create_alias: { collection_name: names.docs, alias_name: names.docsAlias } },
      { create_alias: { collection_name: names.chunks, alias_name: names.chunksAlias } },
    ],
  });
}

export interface PointDump {
  id: string | number;
  vector: unknown;
  payload: unknown;
}

/** Every point with vector and payload, in id order. */
export async function readPoints(client: QdrantClient, collection: string): Promise<PointDump[]> {
  const out: PointDump[] = [];
  let offset: string | number | undefined;
  for (;;) {
    const page = await client.scroll(collection, {
      limit: 100,
      with_payload: true,
      with_vector: true,
      ...(offset !== undefined ? { offset } : {}),
    });
    for (const p of page.points) out.push({ id: p.id, vector: p.vector ?? null, payload: p.payload ?? null });
    const next = page.next_page_offset;
    if (next === null || next === undefined) break;
    offset = next as string | number;
  }
  return out;
}

export async function aliasMap(client: QdrantClient): Promise<Record<string, string>> {
  const res = await client.getAliases();
  return Object.fromEntries(res.aliases.map((a) => [a.alias_name, a.collection_name]));
}

/** Deletes the collections (and with them their aliases), as a data loss would. */
export async function dropAll(client: QdrantClient, names: string[]): Promise<void> {
  for (const n of names) await client.deleteCollection(n);
}
