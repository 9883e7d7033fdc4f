import { z } from 'zod';
import { ConfigError } from '@scholaria/backup-core';

/** Qdrant refuses these characters in collection names; we refuse them before any request. */
const collectionName = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => !/[<>:"/\\|?*\0\u0001-\u001f]/.test(s) && s !== '.' && s !== '..', {
    message: 'is not a valid Qdrant collection name (no / \\ : * ? " < > | or control characters)',
  });

const parsedUrl = (u: string): URL | undefined => {
  try {
    return new URL(u);
  } catch {
    return undefined;
  }
};
const httpUrl = z
  .string()
  .refine((u) => /^https?:$/.test(parsedUrl(u)?.protocol ?? ''), { message: 'must be an http:// or https:// URL' })
  .refine((u) => !parsedUrl(u)?.username && !parsedUrl(u)?.password, {
    message: 'must not contain credentials; pass the API key as apiKey',
  });

export type RestoreAsFunction = (collection: string) => string | undefined;

export const qdrantOptionsSchema = z
  .object({
    /** Base URL of the Qdrant REST API, with port: 'http://localhost:6333'. A path is kept as prefix. */
    url: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must start with http:// or https://' })
      .refine((u) => new URL(u).username === '' && new URL(u).password === '', {
        message: 'must not contain credentials; pass the API key as apiKey',
      }),
    /** Sent as the `api-key` header. */
    apiKey: z.string().min(1).optional(),
    /** Collections to back up; default: every collection on the server. */
    collections: z.array(collectionName).min(1).optional(),
    /** Keep the snapshot files on the Qdrant server after download (default: delete them). */
    keepSnapshots: z.boolean().default(false),
    /** Timeout of each API call in ms (not snapshot transfers). */
    timeoutMs: z.number().int().positive().default(30_000),
    /** Inactivity timeout in ms of snapshot creation, download and upload: multi-GB snapshots take long. */
    snapshotTimeoutMs: z.number().int().positive().default(60 * 60_000),
    /** Retries of a failed call on transient errors (5xx, 429, connection reset or refused, timeouts). */
    retries: z.number().int().min(0).max(20).default(3),
    /** First retry delay in ms, doubled each retry. */
    retryDelayMs: z.number().int().min(0).default(500),
    /** Restore collections under other names: a map original -> target, or a function. */
    restoreAs: z
      .union([z.record(z.string(), collectionName), z.custom<RestoreAsFunction>((v) => typeof v === 'function')])
      .optional(),
    /**
     * Restore every collection not named in `restoreAs` as `<name><collectionSuffix>`
     * (e.g. '_restored'); also used by `verify()`.
     */
    collectionSuffix: z.string().min(1).max(64).optional(),
    /**
     * Run snapshots through the engine's compression codecs. Off by default: a snapshot is a tar
     * of float32 vectors and graph links that gzip shrinks by under 10 %.
     */
    compress: z.boolean().default(false),
    /**
     * Cluster mode: the REST URL of each peer, keyed by peer id (as `GET /cluster` reports it) or
     * by the host of the peer's p2p URI (`qdrant-1.qdrant-headless`). `GET /cluster` gives only
     * p2p URIs (port 6335), not REST URLs. Peers not listed use `peerUrlTemplate`.
     */
    peerUrls: z.record(z.string().min(1), httpUrl).optional(),
    /**
     * Cluster mode: the REST URL of a peer built from its p2p URI: `{host}` (its host name),
     * `{peer_id}`; e.g. 'https://{host}:6333'. Default: `url`'s scheme, port and path with the
     * peer's host (`http://qdrant-1.qdrant-headless:6333` when `url` is `http://qdrant:6333`).
     */
    peerUrlTemplate: z
      .string()
      .refine((t) => t.includes('{host}') || t.includes('{peer_id}'), { message: 'must contain {host} or {peer_id}' })
      .refine((t) => httpUrl.safeParse(t.replace(/\{host\}/g, 'h').replace(/\{peer_id\}/g, '1')).success, {
        message: 'must be an http:// or https:// URL once {host} and {peer_id} are filled in',
      })
      .optional(),
    /** Component name in manifests and paths; change it to back up two Qdrant servers. */
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/)
      .default('qdrant'),
  })
  .strict();

export type QdrantSourceOptions = z.input<typeof qdrantOptionsSchema>;
export type ResolvedQdrantOptions = z.output<typeof qdrantOptionsSchema>;

export function parseQdrantOptions(options: unknown): ResolvedQdrantOptions {
  const parsed = qdrantOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      const field = issue.path.length ? issue.path.join('.') : '(options)';
      // Never echo a received value: apiKey is a secret.
      return `${field}: ${issue.message}`;
    });
    throw new ConfigError('Invalid Qdrant source options:', issues, {
      component: 'qdrant',
      hint: 'Fix the named options of createQdrantSource(); see the Options table of @scholaria/backup-qdrant.',
    });
  }
  return parsed.data;
}

export const restoreOptionsSchema = z
  .object({
    /** Restore these collections under other names (original -> target). */
    restoreAs: z.record(z.string(), collectionName).optional(),
    /** The same map as `restoreAs` under the name the CLI and drills use; both may be given if they agree. */
    targetCollections: z.record(z.string(), collectionName).optional(),
    /** Restore every collection not named in `restoreAs` as `<name><collectionSuffix>`. */
    collectionSuffix: z.string().min(1).max(64).optional(),
    /**
     * A restore target that is an alias: Qdrant resolves it on upload and overwrites the
     * collection behind it. 'refuse' (default) stops the restore before anything changes;
     * 'resolve' restores into the collection behind the alias and says so in the plan.
     */
    aliasTargets: z.enum(['refuse', 'resolve']).optional(),
    /** Restore only these collections of the set. */
    collections: z.array(z.string().min(1)).min(1).optional(),
    /**
     * Recreate the recorded aliases. Default: true for collections restored under their own name,
     * false for renamed ones (a copy should not take over the live aliases).
     */
    aliases: z.boolean().optional(),
  })
  .passthrough();

export type QdrantRestoreOptions = z.output<typeof restoreOptionsSchema>;

export function validateCollectionName(name: string): string | undefined {
  const r = collectionName.safeParse(name);
  return r.success ? undefined : (r.error.issues[0]?.message ?? 'is not a valid collection name');
}
