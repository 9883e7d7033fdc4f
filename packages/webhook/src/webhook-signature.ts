import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Scholaria-Signature';
export const TIMESTAMP_HEADER = 'X-Scholaria-Timestamp';

/**
 * `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: the value of X-Scholaria-Signature.
 * `timestamp` is Unix seconds, exactly as sent in X-Scholaria-Timestamp.
 */
export function signWebhookPayload(body: string | Uint8Array, secret: string, timestamp: number | string): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestamp}.`);
  hmac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return `sha256=${hmac.digest('hex')}`;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined> | { get(name: string): string | null };

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() === wanted) return Array.isArray(value) ? value.join(',') : value;
  }
  return undefined;
}

export interface VerifyWebhookOptions {
  /** Largest accepted age (and clock skew) of the timestamp, in seconds. Default 300. */
  toleranceSec?: number;
  /** Current time in milliseconds, for tests. Default Date.now(). */
  now?: number;
}

/**
 * Checks a delivery of `createWebhookNotifier`: the signature over `"<timestamp>.<raw body>"`
 * matches `secret` (constant-time compare) and the timestamp is within `toleranceSec` of now,
 * which rejects replays. Pass the raw body bytes exactly as received, before any JSON parsing.
 * Several `sha256=` values separated by commas are accepted (one is enough), for key rotation.
 */
export function verifyWebhookSignature(
  body: string | Uint8Array,
  headers: HeaderBag,
  secret: string,
  options: VerifyWebhookOptions = {},
): boolean {
  const timestamp = header(headers, TIMESTAMP_HEADER)?.trim();
  const signature = header(headers, SIGNATURE_HEADER);
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp) || !secret) return false;
  const toleranceSec = options.toleranceSec ?? 300;
  const nowSec = (options.now ?? Date.now()) / 1000;
  if (Math.abs(nowSec - Number(timestamp)) > toleranceSec) return false;
  const expected = Buffer.from(signWebhookPayload(body, secret, timestamp), 'utf8');
  return signature
    .split(',')
    .map((s) => Buffer.from(s.trim(), 'utf8'))
    .some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
}
