import { z } from 'zod';

export const MANIFEST_FORMAT_VERSION = 1 as const;
export const MANIFEST_FILE = 'manifest.json';
export const SUMS_FILE = 'SHA256SUMS';

/** Relative '/'-separated path with no '..', no absolute path, no backslash, no NUL. */
export const safeRelativePath = z
  .string()
  .min(1)
  .refine(
    (p) =>
      !p.startsWith('/') &&
      !p.includes('\\') &&
      !p.includes('\0') &&
      !/^[A-Za-z]:/.test(p) &&
      p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..'),
    { message: 'must be a relative path without "..", "." or empty segments, backslashes or NUL' },
  );

const isoWithOffset = z.string().refine((s) => /T.*(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)), {
  message: 'must be an ISO 8601 timestamp with a UTC offset',
});

export const codecRecordSchema = z.object({
  name: z.string().min(1),
  params: z.record(z.string(), z.unknown()).optional(),
});

export const artifactRecordSchema = z.object({
  /** Name given by the source, unique within the component: 'scholaria.dump'. */
  name: z.string().min(1),
  /** Path of the stored object relative to the set folder: 'postgres/scholaria.dump.zst'. */
  path: safeRelativePath,
  /** Stored bytes (after codecs); at most 2^53 - 1, so an absurd count is refused by name. */
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Bytes the source produced, before codecs. */
  rawSize: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /** Codecs in the order they were applied on backup. */
  codecs: z.array(codecRecordSchema),
  contentType: z.string().optional(),
  /** Shell pipeline that reads the artifact by hand, e.g. 'zstd -d < postgres/x.dump.zst | pg_restore -d DB'. */
  manualRestore: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

export const errorRecordSchema = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string().optional(),
});

export const componentManifestSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  status: z.enum(['ok', 'failed']),
  startedAt: isoWithOffset,
  finishedAt: isoWithOffset,
  durationMs: z.number().nonnegative(),
  artifacts: z.array(artifactRecordSchema),
  metadata: z.record(z.string(), z.unknown()),
  warnings: z.array(z.string()).default([]),
  error: errorRecordSchema.optional(),
});

export const manifestSchema = z.object({
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*_\d{8}_\d{6}(-\d+)?$/),
  tier: z.string().min(1),
  status: z.enum(['complete', 'partial']),
  startedAt: isoWithOffset,
  finishedAt: isoWithOffset,
  timeZone: z.string(),
  host: z.string(),
  library: z.object({ name: z.string(), version: z.string() }),
  components: z.array(componentManifestSchema),
  encryption: z
    .object({
      codec: z.string(),
      /** Key ids of the recipients (never the keys). */
      recipients: z.array(z.string()),
    })
    .optional(),
  storages: z.array(z.string()).default([]),
  tags: z.array(z.string()).default([]),
  /** Size or count drops against the previous set of the tier (core/anomaly); also in the components' warnings. */
  anomalies: z
    .array(
      z.object({
        component: z.string(),
        measure: z.string(),
        previous: z.number(),
        current: z.number(),
        previousSetId: z.string(),
        message: z.string(),
      }),
    )
    .optional(),
});

export type CodecRecordJson = z.infer<typeof codecRecordSchema>;
export type ArtifactRecord = z.infer<typeof artifactRecordSchema>;
export type ComponentManifest = z.infer<typeof componentManifestSchema>;
export type Manifest = z.infer<typeof manifestSchema>;
