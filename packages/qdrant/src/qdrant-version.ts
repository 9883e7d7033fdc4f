export interface ParsedVersion {
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(version: string): ParsedVersion | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

export type Compatibility =
  | { ok: true; warning?: string }
  | { ok: false; reason: string };

/**
 * Qdrant restores a collection snapshot only into a server of the same minor version
 * ("a snapshot captured from v1.4.1 can only be restored to v1.4.x"). An unknown version on
 * either side is allowed with a warning, so a server that hides its version is not blocked.
 */
export function snapshotCompatibility(recorded: string | undefined, target: string): Compatibility {
  if (!recorded) return { ok: true, warning: 'the backup did not record the Qdrant version; compatibility was not checked' };
  const a = parseVersion(recorded);
  const b = parseVersion(target);
  if (!a || !b) return { ok: true, warning: `cannot compare Qdrant versions "${recorded}" and "${target}"` };
  if (a.major !== b.major || a.minor !== b.minor) {
    return {
      ok: false,
      reason: `the backup was taken from Qdrant ${recorded} but the target runs ${target}; Qdrant restores snapshots only into the same minor version (${a.major}.${a.minor}.x)`,
    };
  }
  if (b.patch < a.patch) {
    return { ok: true, warning: `the target runs Qdrant ${target}, older than the ${recorded} the backup was taken from; Qdrant documents restores into the same or a newer patch release` };
  }
  return { ok: true };
}

/**
 * Qdrant reports a snapshot's `checksum` and verifies a `checksum` given with an upload or
 * recovery since 1.8.0 (qdrant/qdrant#2840, #3381); older servers ignore the parameter.
 * An unknown version is assumed to support it.
 */
export function supportsSnapshotChecksum(version: string): boolean {
  const v = parseVersion(version);
  if (!v) return true;
  return v.major > 1 || (v.major === 1 && v.minor >= 8);
}
