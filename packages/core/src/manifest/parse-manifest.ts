import { ManifestError, BackupError } from '../errors/backup-error.js';
import { MANIFEST_FORMAT_VERSION, manifestSchema, type Manifest } from './manifest-schema.js';

/**
 * Limits on an untrusted manifest.json. A real one is a few KiB (postgres metadata with
 * thousands of tables stays under 1 MiB); anything past these is refused before JSON.parse.
 */
export const MANIFEST_MAX_BYTES = 8 * 1024 * 1024;
export const MANIFEST_MAX_DEPTH = 32;

/** Deepest nesting of objects/arrays in JSON text, counted without parsing (strings skipped). */
export function jsonDepth(text: string, stopAt = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) {
        max = depth;
        if (max > stopAt) return max;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** The first `__proto__` key anywhere in a parsed JSON value, as a dotted path. */
function protoKey(value: unknown, path: string[], depth = 0): string | undefined {
  if (typeof value !== 'object' || value === null || depth > MANIFEST_MAX_DEPTH) return undefined;
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return [...path, key].join('.');
    const found = protoKey((value as Record<string, unknown>)[key], [...path, key], depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Parses and validates manifest.json text; errors name the set and every invalid field. */
export function parseManifest(text: string, where = 'manifest.json'): Manifest {
  const damaged = 'Treat this set as damaged: run `verify` and restore from another set.';
  if (text.length > MANIFEST_MAX_BYTES) {
    throw new ManifestError(`${where} is ${text.length} bytes, over the ${MANIFEST_MAX_BYTES}-byte limit for a manifest`, { hint: damaged });
  }
  const depth = jsonDepth(text, MANIFEST_MAX_DEPTH);
  if (depth > MANIFEST_MAX_DEPTH) {
    throw new ManifestError(`${where} nests objects or arrays deeper than ${MANIFEST_MAX_DEPTH} levels`, { hint: damaged });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`${where} is not valid JSON (truncated or corrupt): ${(error as Error).message}`, {
      cause: error,
      hint: 'Treat this set as damaged: run `verify` and restore from another set.',
    });
  }
  // JSON.parse makes "__proto__" an own property (no prototype is changed), but a later spread
  // or Object.assign of that object would: refuse it by name.
  const proto = protoKey(raw, []);
  if (proto) throw new ManifestError(`${where} is invalid:\n  - ${proto}: the key "__proto__" is not allowed`, { details: { problems: [`${proto}: the key "__proto__" is not allowed`] }, hint: damaged });
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version > MANIFEST_FORMAT_VERSION) {
    throw new BackupError(
      'UNSUPPORTED_VERSION',
      `${where} has formatVersion ${version}, but this library reads up to ${MANIFEST_FORMAT_VERSION}`,
      { hint: 'Upgrade @scholaria/backup to read sets written by a newer version.' },
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ManifestError(`${where} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      details: { problems },
      hint: 'Treat this set as damaged: run `verify` and restore from another set.',
    });
  }
  const manifest = parsed.data;
  const seen = new Set<string>();
  for (const component of manifest.components) {
    for (const artifact of component.artifacts) {
      if (seen.has(artifact.path)) throw new ManifestError(`${where} lists ${artifact.path} twice`);
      seen.add(artifact.path);
    }
  }
  return manifest;
}

export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifestSchema.parse(manifest), null, 2)}\n`;
}
