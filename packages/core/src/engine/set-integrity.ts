import { text } from 'node:stream/consumers';
import type { Storage, StorageEntry } from '../interfaces/storage.js';
import { SUMS_FILE, type Manifest } from '../manifest/manifest-schema.js';
import { parseSha256Sums } from '../sha256sums/sha256sums.js';
import type { EngineContext } from './engine-context.js';

/** The artifacts of the components that completed, with their component name. */
export function okArtifacts(manifest: Manifest) {
  return manifest.components.filter((c) => c.status === 'ok').flatMap((c) => c.artifacts.map((a) => ({ ...a, component: c.name })));
}

/**
 * Artifacts the manifest names that the storage listing does not show as objects: missing, or
 * (fs) a symbolic link or special file, which the listing never shows. Such a set is damaged;
 * nothing of it is read through a link.
 */
export function listingProblems(setId: string, manifest: Manifest, files: StorageEntry[]): string[] {
  const listed = new Set(files.map((f) => f.key));
  const problems = okArtifacts(manifest)
    .filter((a) => !listed.has(`${setId}/${a.path}`))
    .map((a) => `artifact ${a.path} is not in the storage listing (missing, a symbolic link, or not a regular file)`);
  // Every backup writes SHA256SUMS before manifest.json.
  if (!listed.has(`${setId}/${SUMS_FILE}`)) problems.push(`${SUMS_FILE} is not in the storage listing (missing, a symbolic link, or not a regular file)`);
  return problems;
}

/**
 * manifest.json and SHA256SUMS must agree on every artifact: the same paths, the same
 * checksums. An artifact rewritten together with one of the two is caught here, before its
 * bytes are compared with the other.
 */
export async function sumsProblems(ctx: EngineContext, storage: Storage, setId: string, manifest: Manifest): Promise<string[]> {
  const problems: string[] = [];
  const artifacts = okArtifacts(manifest);
  let sums: { path: string; sha256: string }[] = [];
  try {
    sums = parseSha256Sums(await text(await storage.get(`${setId}/${SUMS_FILE}`)), `${setId}/${SUMS_FILE}`);
  } catch (error) {
    problems.push(`${SUMS_FILE}: ${ctx.redact((error as Error).message)}`);
    return problems;
  }
  const inSums = new Map(sums.map((s) => [s.path, s.sha256]));
  const inManifest = new Set(artifacts.map((a) => a.path));
  for (const s of sums) if (!inManifest.has(s.path)) problems.push(`${SUMS_FILE} lists ${s.path}, which the manifest does not`);
  for (const a of artifacts) {
    const listed = inSums.get(a.path);
    if (listed === undefined) problems.push(`${SUMS_FILE} does not list ${a.path}`);
    else if (listed !== a.sha256) problems.push(`${SUMS_FILE} and manifest.json disagree on the checksum of ${a.path}`);
  }
  return problems;
}
