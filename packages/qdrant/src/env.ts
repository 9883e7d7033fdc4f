import { z } from 'zod';
import { defineAdapter, envUrl } from '@scholaria/backup-core';

/** The Qdrant source's `.env` descriptor: on when `QDRANT_URL` is set. */
export const qdrantSourceEnv = defineAdapter({
  kind: 'source',
  name: 'qdrant',
  title: 'Qdrant source (`@scholaria/backup-qdrant`)',
  enabledBy: 'QDRANT_URL',
  env: {
    QDRANT_URL: { schema: envUrl(['http:', 'https:'], 'http://qdrant:6333'), url: true, doc: "`http://` or `https://` URL of Qdrant's REST API" },
    QDRANT_API_KEY: {
      schema: z.string().regex(/^[^\s\p{Cc}]+$/u, { message: 'expected a key without spaces or control characters' }),
      secret: true,
      doc: '*secret*; no spaces or control characters',
    },
  },
  configure: ({ values }): { url: string; apiKey?: string } | undefined =>
    values.QDRANT_URL ? { url: values.QDRANT_URL, ...(values.QDRANT_API_KEY !== undefined ? { apiKey: values.QDRANT_API_KEY } : {}) } : undefined,
  async create(config) {
    const { createQdrantSource } = await import('./qdrant-source.js');
    return createQdrantSource(config);
  },
});
