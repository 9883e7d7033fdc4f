/**
 * Qdrant's access control as the simulator models it:
 * - src/common/auth/mod.rs: the `api-key` (or `Authorization: Bearer`) is the read-write key
 *   (global manage access), the read-only key (global read access) or, with `jwt_rbac`, a JWT
 *   signed HS256 with the API key whose `access` claim gives the rights (src/common/auth/claims.rs,
 *   default full access); a missing or wrong key is a plain-text 401 from the middleware
 *   (src/actix/auth.rs).
 * - lib/storage/src/rbac/mod.rs: each handler checks global or collection access; a refusal is
 *   `StorageError::Forbidden`, answered as JSON 403 `{ status: { error: "Forbidden: ..." } }`
 *   (src/actix/helpers.rs) with the messages below.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type CollectionAccessMode = 'r' | 'rw' | 'prw';
export type Access = { global: 'r' | 'm' } | { collections: Map<string, CollectionAccessMode> };

export interface AccessRequirements {
  write?: boolean;
  manage?: boolean;
  extras?: boolean;
}

/** What a route needs: global access, access to one collection, or a listing filtered by access. */
export type RouteAccess =
  | { kind: 'none' }
  | { kind: 'global'; req: AccessRequirements }
  | { kind: 'collection'; collection: string; req: AccessRequirements }
  | { kind: 'filtered' };

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Signs a Qdrant JWT (HS256 with the API key), e.g. `{ access: [{ collection: 'docs', access: 'rw' }] }`. */
export function signQdrantJwt(apiKey: string, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', apiKey).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** The access of a JWT signed with `apiKey`, or undefined when it is not a valid one. */
export function accessFromJwt(token: string, apiKey: string, nowSeconds = Date.now() / 1000): Access | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [head, body, sig] = parts as [string, string, string];
  const expected = createHmac('sha256', apiKey).update(`${head}.${body}`).digest();
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let claims: { exp?: unknown; access?: unknown };
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return undefined;
  }
  if (typeof claims.exp === 'number' && claims.exp < nowSeconds) return undefined;
  const access = claims.access ?? 'm';
  if (access === 'r' || access === 'm') return { global: access };
  if (Array.isArray(access)) {
    const map = new Map<string, CollectionAccessMode>();
    for (const entry of access as { collection?: unknown; access?: unknown }[]) {
      if (typeof entry?.collection !== 'string' || !['r', 'rw', 'prw'].includes(String(entry.access))) return undefined;
      map.set(entry.collection, entry.access as CollectionAccessMode);
    }
    return { collections: map };
  }
  return undefined;
}

/** The Forbidden message of lib/storage/src/rbac/mod.rs, or undefined when the access suffices. */
export function accessDenied(access: Access, need: RouteAccess): string | undefined {
  if (need.kind === 'none' || need.kind === 'filtered') return undefined;
  if (need.kind === 'global') {
    if (!('global' in access)) return 'Global access is required';
    if ((need.req.write || need.req.manage) && access.global === 'r') return 'Global manage access is required';
    return undefined;
  }
  if ('global' in access) {
    if ((need.req.write || need.req.manage) && access.global === 'r') return 'Global manage access is required';
    return undefined;
  }
  const mode = access.collections.get(need.collection);
  if (!mode) return `Access to collection ${need.collection} is required`;
  if (need.req.extras && mode === 'prw') return `Only points access is allowed for collection ${need.collection}`;
  if (need.req.write && mode === 'r') return `Write access to collection ${need.collection} is required`;
  if (need.req.manage) return 'Global manage access is required';
  return undefined;
}

export function canSeeCollection(access: Access, name: string): boolean {
  return 'global' in access || access.collections.has(name);
}

/**
 * The access each simulated route checks (handlers in src/actix/api/*.rs and
 * src/common/collections.rs; snapshot upload: `ActixAccessManage`, global manage).
 */
export function routeAccess(method: string, parts: string[]): RouteAccess {
  const [first, name, sub, subName] = parts;
  if (first === 'cluster') return { kind: 'global', req: {} };
  if (first === 'aliases') return { kind: 'filtered' };
  if (first !== 'collections') return { kind: 'none' };
  if (name === undefined) return { kind: 'filtered' };
  if (name === 'aliases' && parts.length === 2 && method === 'POST') return { kind: 'global', req: { manage: true } };
  if (parts.length === 2) {
    return method === 'GET' ? { kind: 'collection', collection: name, req: {} } : { kind: 'global', req: { manage: true } };
  }
  if (sub === 'snapshots') {
    if (subName === 'upload' && parts.length === 4 && method === 'POST') return { kind: 'global', req: { manage: true } };
    if (method === 'GET') return { kind: 'collection', collection: name, req: { extras: true } };
    return { kind: 'collection', collection: name, req: { write: true, extras: true } };
  }
  if (sub === 'points') {
    const read = method === 'GET' || (method === 'POST' && ['scroll', 'count', 'search', 'query'].includes(subName ?? ''));
    return { kind: 'collection', collection: name, req: read ? {} : { write: true } };
  }
  return { kind: 'collection', collection: name, req: {} };
}
