import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  eventTemplatesSchema,
  httpUrlSchema,
  notifyFetch,
  notifyOnSchema,
  parseNotifierOptions,
  resolveTemplates,
  type BackupEvent,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhookPayload } from './webhook-signature.js';

// Headers the notifier owns; a configured header must not replace them.
const RESERVED = new Set(['content-type', 'content-length', 'host', 'x-scholaria-signature', 'x-scholaria-timestamp', 'x-scholaria-event', 'x-scholaria-delivery']);

export const webhookNotifierOptionsSchema = z.strictObject({
  /** Where the event JSON is POSTed. */
  url: httpUrlSchema('https://ops.example.com/hooks/backup'),
  /** HMAC-SHA256 key shared with the receiver; without it deliveries are unsigned. */
  secret: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
  /** Extra headers, e.g. { Authorization: 'Bearer ...' } (values are secret: never logged). */
  headers: z
    .record(z.string(), z.string())
    .refine((h) => Object.keys(h).every((k) => !RESERVED.has(k.toLowerCase())), {
      message: 'must not set Content-Type, Host or the X-Scholaria-* headers the notifier sends',
    })
    .optional(),
  /** Name in logs and dispatch results. */
  name: z.string().min(1).default('webhook'),
  on: notifyOnSchema,
  /** `subject` and `text` fill the `summary` and `text` fields of the body. */
  templates: eventTemplatesSchema,
});

export type WebhookNotifierOptions = z.input<typeof webhookNotifierOptionsSchema>;

/** The JSON body: the event plus a one-line `summary` and a plain-text `text` (chat tools such as Mattermost show `text`). */
export type WebhookPayload = BackupEvent & { summary: string; text: string };

/**
 * POSTs each event as JSON. With a `secret`, every request carries
 * `X-Scholaria-Timestamp: <unix seconds>` and
 * `X-Scholaria-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`;
 * receivers check both with `verifyWebhookSignature`. `X-Scholaria-Delivery` is the same
 * for retries of one event, so receivers can drop duplicates.
 */
export function createWebhookNotifier(options: WebhookNotifierOptions): Notifier {
  const o = parseNotifierOptions(
    'createWebhookNotifier',
    webhookNotifierOptionsSchema,
    options,
    'Pass { url, secret } with a secret shared with the receiver (e.g. `openssl rand -hex 32`).',
  );
  const templates = resolveTemplates(o.templates ?? {});
  return {
    specVersion: 'v1',
    name: o.name,
    ...(o.on ? { on: [...o.on] as NotifyOutcome[] } : {}),
    async notify(event: BackupEvent, { signal }: { signal: AbortSignal }): Promise<void> {
      signal.throwIfAborted();
      const payload: WebhookPayload = { ...event, summary: templates.subject(event), text: templates.text(event) };
      const body = JSON.stringify(payload);
      const timestamp = Math.floor(Date.now() / 1000);
      const delivery = createHash('sha256').update(JSON.stringify(event)).digest('hex').slice(0, 32);
      await notifyFetch(o.name, o.url, {
        method: 'POST',
        headers: {
          ...(o.headers ?? {}),
          'content-type': 'application/json; charset=utf-8',
          'x-scholaria-event': event.type,
          'x-scholaria-delivery': delivery,
          [TIMESTAMP_HEADER.toLowerCase()]: String(timestamp),
          ...(o.secret ? { [SIGNATURE_HEADER.toLowerCase()]: signWebhookPayload(body, o.secret, timestamp) } : {}),
        },
        body,
        signal,
      });
    },
  };
}
