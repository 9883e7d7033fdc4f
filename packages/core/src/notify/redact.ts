/** What a secret is replaced with. */
export const REDACTED = '***';

/** Maps text to the same text with every known secret masked. Idempotent. */
export type Redactor = (text: string) => string;

/** Secrets shorter than this are ignored: masking "a" or "db" would shred every message. */
const MIN_SECRET_LENGTH = 4;

// Credential-looking keys in `key=value` and JSON `"key": "value"` pairs. The key may carry a
// prefix (PGPASSWORD, REDIS_PASSWORD, AWS_SECRET_ACCESS_KEY, X-Api-Key...).
const SECRET_KEY =
  '[A-Za-z0-9_.-]*?(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)';

interface Rule {
  pattern: RegExp;
  replace: string | ((...groups: string[]) => string);
}

// Order matters: specific token formats first, then generic URL credentials and pairs.
// Character classes stop at quotes and backslashes so that masking text that is itself JSON
// (the engine redacts JSON.stringify'd details) keeps it valid JSON.
const RULES: Rule[] = [
  // age identities: the whole key is the secret.
  { pattern: /AGE-SECRET-KEY-1[0-9A-Za-z]+/g, replace: `AGE-SECRET-KEY-1${REDACTED}` },
  // Slack incoming webhooks: https://hooks.slack.com/services/T000/B000/<token>
  {
    pattern: /(hooks\.slack(?:-gov)?\.com\/services\/[^\s/"'\\<>]+\/[^\s/"'\\<>]+\/)[^\s/?#"'\\<>]+/gi,
    replace: `$1${REDACTED}`,
  },
  // Slack workflow and trigger webhooks carry the token as the last path segment.
  {
    pattern: /(hooks\.slack(?:-gov)?\.com\/(?:workflows|triggers)\/(?:[^\s/?#"'\\<>]+\/)*)[^\s/?#"'\\<>]+/gi,
    replace: `$1${REDACTED}`,
  },
  // Discord webhooks: https://discord.com/api/webhooks/<id>/<token>
  {
    pattern: /((?:discord|discordapp)\.com\/api(?:\/v\d+)?\/webhooks\/[^\s/"'\\<>]+\/)[^\s/?#"'\\<>]+/gi,
    replace: `$1${REDACTED}`,
  },
  // healthchecks.io ping URLs: the UUID (or ping key + slug) is the credential.
  { pattern: /(hc-ping\.com\/)[^\s/?#"'\\<>]+/gi, replace: `$1${REDACTED}` },
  // scheme://user:password@host => scheme://user:***@host. The password may itself contain
  // "@" (users rarely percent-encode), so it runs to the last "@" before the host.
  {
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@"'\\<>]*:)[^\s/"'\\<>]*@/gi,
    replace: `$1${REDACTED}@`,
  },
  // HTTP auth credentials. The lookahead wants a digit or symbol, so prose such as
  // "Basic authentication failed" is left alone.
  {
    pattern: /\b(Bearer|Basic)(\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}/gi,
    replace: `$1$2${REDACTED}`,
  },
  // JSON "password": "value" (value kept a JSON string).
  {
    pattern: new RegExp(`("${SECRET_KEY}"\\s*:\\s*")(?:[^"\\\\]|\\\\.)*(")`, 'gi'),
    replace: `$1${REDACTED}$2`,
  },
  // key=value as in env dumps, libpq conninfo, query strings and CLI flags
  // (PGPASSWORD=..., password='...', ?token=..., --password=...).
  {
    pattern: new RegExp(`\\b(${SECRET_KEY})(\\s*=\\s*)(?:'[^']*'|"[^"]*"|[^\\s&;,"'\\\\<>]+)`, 'gi'),
    replace: (_m: string, key: string, eq: string) => `${key}${eq}${REDACTED}`,
  },
];

function variants(secret: string): string[] {
  const out = new Set<string>([secret]);
  try {
    const encoded = encodeURIComponent(secret);
    // RFC 3986 strict encoding also escapes !'()* (URLSearchParams, most HTTP clients).
    const strict = encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    for (const form of [encoded, strict]) {
      out.add(form);
      // application/x-www-form-urlencoded spells a space as "+".
      out.add(form.replace(/%20/g, '+'));
    }
  } catch {
    // lone surrogates cannot be URI-encoded; the raw form is still masked
  }
  // As it appears inside JSON text (quotes and backslashes escaped).
  out.add(JSON.stringify(secret).slice(1, -1));
  return [...out];
}

/**
 * Builds a redactor that masks the given secrets (and their URL- and JSON-encoded forms) and,
 * always, credentials that look like credentials: `scheme://user:pass@host`, `password=...`
 * style pairs, Slack/Discord/healthchecks webhook tokens, bearer tokens and age secret keys.
 */
export function createRedactor(secrets: readonly (string | undefined | null)[] = []): Redactor {
  const literals = [
    ...new Set(
      secrets
        .filter((s): s is string => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH)
        .flatMap(variants)
        .filter((s) => s.length >= MIN_SECRET_LENGTH),
    ),
  ].sort((a, b) => b.length - a.length); // longest first, so a secret containing another is masked whole

  return (text: string): string => {
    if (typeof text !== 'string' || text.length === 0) return text;
    let out = text;
    for (const literal of literals) {
      if (out.includes(literal)) out = out.split(literal).join(REDACTED);
    }
    for (const rule of RULES) {
      out = out.replace(rule.pattern, rule.replace as (substring: string, ...args: string[]) => string);
    }
    return out;
  };
}

/** The redactor with only the built-in patterns (no configured secrets). */
export const redactSecrets: Redactor = createRedactor([]);

/**
 * Returns a copy of `value` with every string inside redacted: plain objects and arrays are
 * walked, Errors are copied with their message, stack and own fields redacted (same
 * prototype, so `instanceof` and `BackupError.isInstance` still hold). Other class instances
 * (Date, Buffer, URL...) are returned as they are. Cycles are preserved, never followed twice.
 */
export function redactDeep<T>(value: T, redactor: Redactor = redactSecrets): T {
  const seen = new WeakMap<object, unknown>();

  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactor(v);
    if (v === null || typeof v !== 'object') return v;
    const cached = seen.get(v);
    if (cached !== undefined) return cached;

    if (Array.isArray(v)) {
      const out: unknown[] = [];
      seen.set(v, out);
      for (const item of v) out.push(walk(item));
      return out;
    }
    if (v instanceof Error) {
      const copy = Object.create(Object.getPrototypeOf(v) as object) as Record<string, unknown>;
      seen.set(v, copy);
      for (const key of Reflect.ownKeys(v)) {
        const descriptor = Object.getOwnPropertyDescriptor(v, key);
        if (!descriptor) continue;
        let item: unknown;
        try {
          // `stack` is an accessor on some V8 versions; read it through the original.
          item = (v as unknown as Record<PropertyKey, unknown>)[key];
        } catch {
          continue;
        }
        Object.defineProperty(copy, key, {
          value: walk(item),
          writable: true,
          enumerable: descriptor.enumerable ?? false,
          configurable: true,
        });
      }
      return copy;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = proto === null ? (Object.create(null) as Record<string, unknown>) : {};
    seen.set(v, out);
    for (const [key, item] of Object.entries(v)) out[key] = walk(item);
    return out;
  };

  return walk(value) as T;
}

/**
 * A URL safe to show in an error or log line: credentials, query values and token-like path
 * segments (16+ characters with a digit, e.g. UUIDs and webhook tokens) are masked.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactSecrets(url);
  }
  const path = parsed.pathname
    .split('/')
    .map((segment) => (segment.length >= 16 && /\d/.test(segment) ? REDACTED : segment))
    .join('/');
  const query = [...parsed.searchParams.keys()].map((key) => `${encodeURIComponent(key)}=${REDACTED}`).join('&');
  const auth = parsed.username || parsed.password ? `${parsed.username}:${REDACTED}@` : '';
  return redactSecrets(`${parsed.protocol}//${auth}${parsed.host}${path}${query ? `?${query}` : ''}`);
}
