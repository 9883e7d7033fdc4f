/**
 * What an API key that is a Qdrant JWT allows, read from its (unverified) payload: Qdrant's
 * `Claims.access` (src/common/auth/claims.rs) is `"m"` (global manage, the default when absent),
 * `"r"` (global read) or a list of `{ collection, access: "r" | "rw" | "prw" }`
 * (lib/storage/src/rbac/mod.rs). Only used to refuse early with a clear message; the server
 * still decides.
 */
export type TokenAccess = { global: 'r' | 'm' } | { collections: { collection: string; access: string }[] };

export function jwtAccess(apiKey: string | undefined): TokenAccess | undefined {
  if (!apiKey) return undefined;
  const parts = apiKey.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return undefined;
  let claims: { access?: unknown };
  try {
    claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as { access?: unknown };
  } catch {
    return undefined;
  }
  if (!claims || typeof claims !== 'object') return undefined;
  const access = claims.access ?? 'm';
  if (access === 'r' || access === 'm') return { global: access };
  if (Array.isArray(access)) {
    return {
      collections: access
        .filter((a): a is { collection: string; access: string } => typeof a?.collection === 'string')
        .map((a) => ({ collection: a.collection, access: String(a.access) })),
    };
  }
  return undefined;
}

export function describeTokenAccess(access: TokenAccess): string {
  if ('global' in access) return access.global === 'r' ? 'global read-only access ("r")' : 'global manage access ("m")';
  return `access to ${access.collections.map((c) => `"${c.collection}" (${c.access})`).join(', ') || 'no collection'} only`;
}
