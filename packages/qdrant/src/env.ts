import { z } from 'zod';
import { commaList, defineAdapter, envIssue, envUrl } from '@scholaria/backup-core';

const isHttpUrl = (u: string) => {
  try {
    const url = new URL(u);
    return /^https?:$/.test(url.protocol) && !url.username && !url.password;
  } catch {
    return false;
  }
};

/** `QDRANT_PEER_URLS`: `peer=url` pairs, comma separated; peer is a peer id or a p2p host name. */
const peerUrls = z.string().transform((s, ctx) => {
  const out: Record<string, string> = {};
  for (const item of commaList(s)) {
    const at = item.indexOf('=');
    const key = at > 0 ? item.slice(0, at).trim() : '';
    const url = at > 0 ? item.slice(at + 1).trim() : '';
    if (!key || !isHttpUrl(url)) {
      return envIssue(ctx, `expected peer=url pairs (peer id or p2p host name = http(s) REST URL without credentials), got ${JSON.stringify(item.length > 60 ? `${item.slice(0, 57)}...` : item)}`);
    }
    out[key] = url;
  }
  if (Object.keys(out).length === 0) return envIssue(ctx, 'expected peer=url pairs, comma separated');
  return out;
});

const peerTemplate = z.string().transform((s, ctx) =>
  (s.includes('{host}') || s.includes('{peer_id}')) && isHttpUrl(s.replace(/\{host\}/g, 'h').replace(/\{peer_id\}/g, '1'))
    ? s
    : envIssue(ctx, 'expected an http(s) URL template with {host} or {peer_id}, e.g. https://{host}:6333'),
);

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
    QDRANT_PEER_URLS: {
      schema: peerUrls,
      doc: 'cluster: REST URL of each peer as `peer=url` pairs, comma separated (peer: id from `GET /cluster` or p2p host name); overrides `QDRANT_PEER_URL_TEMPLATE`',
    },
    QDRANT_PEER_URL_TEMPLATE: {
      schema: peerTemplate,
      doc: "cluster: a peer's REST URL from its p2p URI, `{host}` and `{peer_id}` filled in (default: `QDRANT_URL`'s scheme and port with the peer's host)",
    },
  },
  configure: ({ values }): { url: string; apiKey?: string; peerUrls?: Record<string, string>; peerUrlTemplate?: string } | undefined =>
    values.QDRANT_URL
      ? {
          url: values.QDRANT_URL,
          ...(values.QDRANT_API_KEY !== undefined ? { apiKey: values.QDRANT_API_KEY } : {}),
          ...(values.QDRANT_PEER_URLS !== undefined ? { peerUrls: values.QDRANT_PEER_URLS } : {}),
          ...(values.QDRANT_PEER_URL_TEMPLATE !== undefined ? { peerUrlTemplate: values.QDRANT_PEER_URL_TEMPLATE } : {}),
        }
      : undefined,
  async create(config) {
    const { createQdrantSource } = await import('./qdrant-source.js');
    return createQdrantSource(config);
  },
});
