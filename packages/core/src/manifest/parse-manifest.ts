import { ManifestError, BackupError } from '../errors/backup-error.js';
import { MANIFEST_FORMAT_VERSION, manifestSchema, type Manifest } from './manifest-schema.js';

/** Parses and validates manifest.json text; errors name the set and every invalid field. */
export function parseManifest(text: string, where = 'manifest.json'): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`${where} is not valid JSON (truncated or corrupt): ${(error as Error).message}`, {
      cause: error,
      hint: 'Treat this set as damaged: run `verify` and restore from another set.',
    });
  }
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
