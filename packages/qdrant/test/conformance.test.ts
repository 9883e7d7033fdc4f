import { sourceConformance, startQdrantSimulator } from '@scholaria/backup-testkit';
import { createQdrantSource } from '../src/index.js';
import { aliasMap, clientFor, readPoints, seed, seedNames } from './helpers/fixtures.js';

const API_KEY = 'conformance-qdrant-key-5d1e';

sourceConformance({
  name: 'qdrant',
  // Qdrant artifacts are stored with compression: false, so the suite's default gzip codec would
  // not touch them; the engine round trip test covers the stored layout.
  codecs: [],
  async setup() {
    const sim = await startQdrantSimulator({ apiKey: API_KEY });
    const client = clientFor(sim.url, API_KEY);
    const names = seedNames();
    await seed(client, names);
    return {
      source: createQdrantSource({ url: sim.url, apiKey: API_KEY, retries: 1, retryDelayMs: 5 }),
      async fingerprint() {
        const collections = (await client.getCollections()).collections.map((c) => c.name).sort();
        const points: Record<string, unknown> = {};
        for (const c of collections) points[c] = await readPoints(client, c);
        return { collections, points, aliases: await aliasMap(client) };
      },
      async damage() {
        await client.deleteCollection(names.docs);
        await client.upsert(names.chunks, {
          wait: true,
          points: [{ id: '00000000-0000-4000-8000-000000000999', vector: [1, 1, 1, 1, 1, 1, 1, 1], payload: { stray: true } }],
        });
      },
      secrets: [API_KEY],
      async teardown() {
        await sim.stop();
      },
    };
  },
});
