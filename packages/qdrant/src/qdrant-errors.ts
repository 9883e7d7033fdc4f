import { BackupError, ChecksumError, type BackupErrorCode } from '@scholaria/backup-core';

/** An HTTP answer >= 400 from Qdrant, before it is translated into a BackupError. */
export class QdrantHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
    this.name = 'QdrantHttpError';
  }
}

export class QdrantTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no data for ${ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`}`);
    this.name = 'QdrantTimeoutError';
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errorChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current && chain.length < 8) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

function networkCode(error: unknown): string | undefined {
  for (const e of errorChain(error)) {
    const code = (e as { code?: unknown })?.code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/** Qdrant answers `{ status: { error } }` for API errors and plain text from its auth layer. */
export function qdrantErrorText(body: unknown): string {
  if (typeof body === 'string') return body.trim().slice(0, 500);
  if (body && typeof body === 'object') {
    const status = (body as { status?: unknown }).status;
    if (status && typeof status === 'object' && typeof (status as { error?: unknown }).error === 'string') {
      return (status as { error: string }).error;
    }
    try {
      return JSON.stringify(body).slice(0, 500);
    } catch {
      return '';
    }
  }
  return '';
}

export interface TranslateContext {
  /** What we were doing, e.g. 'creating a snapshot of collection "docs"'. */
  op: string;
  /** 'http://host:6333' without credentials. */
  target: string;
  hasApiKey: boolean;
  /** Code of failures that are not network, auth or not-found: SOURCE_FAILED or RESTORE_FAILED. */
  failCode: BackupErrorCode;
  secrets: string[];
  /** Component name recorded on the error. */
  component: string;
}

function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('[REDACTED]');
  return out;
}

/** Recognises the error shapes of @qdrant/js-client-rest (ApiError: status + data) and of our raw HTTP. */
function httpStatusOf(error: unknown): { status: number; body: unknown } | undefined {
  if (error instanceof QdrantHttpError) return { status: error.status, body: error.body };
  const e = error as { status?: unknown; data?: unknown };
  if (e && typeof e === 'object' && typeof e.status === 'number' && 'data' in e) return { status: e.status, body: e.data };
  return undefined;
}

/** Turns anything a Qdrant call threw into a BackupError that names the call, the server and what to do. */
export function translateError(error: unknown, ctx: TranslateContext): BackupError {
  if (BackupError.isInstance(error)) return error;
  const { op, target } = ctx;
  const make = (code: BackupErrorCode, message: string, hint: string, retryable = false) =>
    new BackupError(code, redact(message, ctx.secrets), { cause: error, component: ctx.component, hint, retryable });

  const http = httpStatusOf(error);
  if (http) {
    const text = qdrantErrorText(http.body);
    const detail = `HTTP ${http.status}${text ? `: ${text}` : ''}`;
    if (http.status === 401) {
      return make(
        'AUTH_FAILED',
        `Qdrant at ${target} rejected the request while ${op} (${detail})`,
        ctx.hasApiKey
          ? 'The API key is wrong: set apiKey to the server\'s service.api_key (QDRANT__SERVICE__API_KEY).'
          : 'The server requires an API key: pass apiKey (e.g. from the QDRANT_API_KEY environment variable).',
      );
    }
    if (http.status === 403) {
      // Qdrant's refusals (lib/storage/src/rbac/mod.rs), answered as JSON 403.
      const collection = /collection (.+) is required$|allowed for collection (.+)$/.exec(text);
      const named = collection ? (collection[1] ?? collection[2]) : undefined;
      let need: string;
      let hint: string;
      if (/Global manage access is required/i.test(text)) {
        need = 'needs global manage access and this key has read-only access';
        hint = 'Pass the read-write key (service.api_key), not the read-only key (service.read_only_api_key), or a JWT with "access": "m".';
      } else if (/Global access is required/i.test(text)) {
        need = 'needs global manage access and this token is limited to some collections';
        hint = 'Restoring a snapshot (upload), creating collections and aliases need a token with global manage access: the API key (service.api_key) or a JWT with "access": "m".';
      } else if (named && /^Write access/i.test(text)) {
        need = `needs write access to collection "${named}" and this token may only read it`;
        hint = `Use a token with "rw" access to "${named}" (snapshots need it), or the read-write API key.`;
      } else if (named && /Only points access/i.test(text)) {
        need = `needs "rw" access to collection "${named}" (snapshots are not points operations) and this token has "prw"`;
        hint = `Use a token with "rw" access to "${named}", or the read-write API key.`;
      } else if (named) {
        need = `needs access to collection "${named}" and this token has none`;
        hint = `Add "${named}" to the token's access list, or use the read-write API key.`;
      } else {
        need = 'is not allowed with this key';
        hint = 'Snapshots and restores need the read-write key (service.api_key) or a JWT with "access": "m".';
      }
      return make('AUTH_FAILED', `Qdrant at ${target} refused ${op}: it ${need} (${detail})`, hint);
    }
    if (http.status === 404) {
      return new BackupError('NOT_FOUND', redact(`Qdrant at ${target}: not found while ${op} (${detail})`, ctx.secrets), {
        cause: error,
        component: ctx.component,
        hint: 'Check the collection name (GET /collections lists them) and the url (include any path prefix).',
      });
    }
    if (http.status === 400 && /checksum mismatch/i.test(text)) {
      return new ChecksumError(redact(`Qdrant at ${target} refused ${op}: ${text}`, ctx.secrets), {
        cause: error,
        component: ctx.component,
        hint: 'The snapshot bytes differ from the checksum recorded at backup time; restore from another backup set.',
      });
    }
    const transient = http.status === 408 || http.status === 429 || (http.status >= 500 && http.status !== 501 && http.status !== 505);
    return make(
      ctx.failCode,
      `Qdrant at ${target} failed ${op} (${detail})`,
      transient
        ? 'Qdrant reported a temporary problem; it was retried. Check the Qdrant logs and disk space, then run again.'
        : 'Qdrant refused the request; the message above says why.',
      transient,
    );
  }

  const name = (error as { name?: unknown })?.name;
  if (error instanceof QdrantTimeoutError || name === 'QdrantClientTimeoutError') {
    return make(
      'TIMEOUT',
      `Qdrant at ${target} did not answer in time while ${op}${error instanceof QdrantTimeoutError ? ` (${error.message})` : ''}`,
      'Raise timeoutMs (API calls) or snapshotTimeoutMs (snapshot create/download/upload), or check the server load.',
      true,
    );
  }
  const code = networkCode(error);
  if (code) {
    return make(
      'CONNECTION_FAILED',
      `Cannot reach Qdrant at ${target} while ${op} (${code})`,
      'Check that Qdrant is running and that url (scheme, host and port, e.g. http://localhost:6333) is right.',
      true,
    );
  }
  if (name === 'AbortError' || (error as { code?: unknown })?.code === 'ABORT_ERR') {
    return make('ABORTED', `${op} was aborted`, 'The run was cancelled.');
  }
  const reason = error instanceof Error ? error.message : String(error);
  return make(ctx.failCode, `Qdrant at ${target}: ${op} failed: ${reason}`, 'See the cause; check the Qdrant logs.');
}
