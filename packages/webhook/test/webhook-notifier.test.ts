import { describe, expect, it } from 'vitest';
import { dispatchNotification, renderSubject, renderText } from '@scholaria/backup-core';
import {
  createWebhookNotifier,
  signWebhookPayload,
  verifyWebhookSignature,
  type WebhookPayload,
} from '@scholaria/backup-webhook';
import { notifierConformance, sampleBackupEvent } from '@scholaria/backup-testkit';
import { httpHarness, logCollector, useCaptures } from './helpers.js';

const SECRET = 'whsec_5f1c0b2e9a7d4c3b8e6f1a2d3c4b5a69';
const make = (base: string, on?: ('start' | 'success' | 'partial' | 'failure')[]) =>
  createWebhookNotifier({ url: `${base}/hooks/backup`, secret: SECRET, ...(on ? { on } : {}) });

notifierConformance({
  name: 'webhook',
  create: (overrides) => httpHarness(make, {}, overrides?.on),
  createFlaky: () => httpHarness(make, { respond: (_r, i) => (i === 0 ? { status: 500, body: 'boom' } : undefined) }),
  createHanging: () => httpHarness(make, { respond: () => ({ hang: true }) }),
});

describe('createWebhookNotifier', () => {
  const capture = useCaptures();

  it('posts the event JSON with a signature that verifies', async () => {
    const c = await capture();
    const notifier = createWebhookNotifier({
      url: `${c.url}/hooks/backup?source=scholaria`,
      secret: SECRET,
      headers: { Authorization: 'Bearer receiver-token-123456' },
    });
    const event = sampleBackupEvent('failure');
    expect(await dispatchNotification([notifier], event, { retries: 0 })).toEqual([{ notifier: 'webhook', ok: true, attempts: 1 }]);

    const [req] = c.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/hooks/backup?source=scholaria');
    expect(req?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(req?.headers['x-scholaria-event']).toBe('backup.failed');
    expect(req?.headers.authorization).toBe('Bearer receiver-token-123456');
    const payload = req?.json as WebhookPayload;
    expect(payload).toEqual({ ...event, summary: renderSubject(event), text: renderText(event) });

    const headers = req?.headers ?? {};
    expect(headers['x-scholaria-timestamp']).toMatch(/^\d{10}$/);
    expect(headers['x-scholaria-signature']).toBe(signWebhookPayload(req?.body ?? '', SECRET, String(headers['x-scholaria-timestamp'])));
    expect(verifyWebhookSignature(req?.body ?? '', headers, SECRET)).toBe(true);
    // The signature binds the secret, the body and the timestamp.
    expect(verifyWebhookSignature(req?.body ?? '', headers, 'another-secret-0123456789')).toBe(false);
    expect(verifyWebhookSignature(Buffer.from(String(req?.body).replace('"failure"', '"success"')), headers, SECRET)).toBe(false);
    expect(verifyWebhookSignature(req?.body ?? '', { ...headers, 'x-scholaria-timestamp': String(Number(headers['x-scholaria-timestamp']) + 1) }, SECRET)).toBe(false);
    // A replay after the tolerance is refused.
    const sentAt = Number(headers['x-scholaria-timestamp']) * 1000;
    expect(verifyWebhookSignature(req?.body ?? '', headers, SECRET, { now: sentAt + 301_000 })).toBe(false);
    expect(verifyWebhookSignature(req?.body ?? '', headers, SECRET, { now: sentAt + 301_000, toleranceSec: 600 })).toBe(true);
  });

  it('verifies with a fetch Headers object and a rotated-key signature list', () => {
    const body = JSON.stringify({ hello: 'world' });
    const ts = Math.floor(Date.now() / 1000);
    const headers = new Headers({
      'X-Scholaria-Timestamp': String(ts),
      'X-Scholaria-Signature': `${signWebhookPayload(body, 'old-secret-0123456789', ts)},${signWebhookPayload(body, SECRET, ts)}`,
    });
    expect(verifyWebhookSignature(body, headers, SECRET)).toBe(true);
    expect(verifyWebhookSignature(body, new Headers({ 'X-Scholaria-Timestamp': String(ts) }), SECRET)).toBe(false);
    expect(verifyWebhookSignature(body, new Headers({ 'X-Scholaria-Timestamp': 'soon', 'X-Scholaria-Signature': 'sha256=00' }), SECRET)).toBe(false);
  });

  it('sends the same delivery id on a retry, each attempt freshly signed', async () => {
    const c = await capture({ respond: (_r, i) => (i === 0 ? { status: 502 } : undefined) });
    const [result] = await dispatchNotification([make(c.url)], sampleBackupEvent('success'), { retries: 2, backoffMs: 10 });
    expect(result).toMatchObject({ ok: true, attempts: 2 });
    const [first, second] = c.requests;
    expect(first?.headers['x-scholaria-delivery']).toMatch(/^[0-9a-f]{32}$/);
    expect(second?.headers['x-scholaria-delivery']).toBe(first?.headers['x-scholaria-delivery']);
    expect(verifyWebhookSignature(second?.body ?? '', second?.headers ?? {}, SECRET)).toBe(true);
  });

  it('sends unsigned when no secret is configured', async () => {
    const c = await capture();
    const notifier = createWebhookNotifier({ url: `${c.url}/plain` });
    await dispatchNotification([notifier], sampleBackupEvent('success'), { retries: 0 });
    expect(c.requests[0]?.headers['x-scholaria-signature']).toBeUndefined();
    expect(c.requests[0]?.headers['x-scholaria-timestamp']).toMatch(/^\d+$/);
  });

  it('keeps tokens in the URL out of errors and logs', async () => {
    const c = await capture({ respond: () => ({ status: 403, body: 'forbidden' }) });
    const notifier = createWebhookNotifier({ url: `${c.url}/hooks/3f9a8b7c6d5e4f3a2b1c?token=QueryTok3nValue` });
    const { logger, warnings } = logCollector();
    const [result] = await dispatchNotification([notifier], sampleBackupEvent('failure'), { retries: 3, backoffMs: 10, logger });
    expect(result).toMatchObject({ ok: false, attempts: 1, code: 'NOTIFY_FAILED' });
    expect(result?.error).toContain('HTTP 403: forbidden');
    for (const secret of ['QueryTok3nValue', '3f9a8b7c6d5e4f3a2b1c']) {
      expect(result?.error).not.toContain(secret);
      expect(warnings.join('\n')).not.toContain(secret);
    }
  });

  it('fails fast and retryable when nothing listens', async () => {
    const c = await capture();
    const url = `${c.url}/gone`;
    await c.stop();
    const [result] = await dispatchNotification([createWebhookNotifier({ url })], sampleBackupEvent('failure'), {
      retries: 1,
      backoffMs: 10,
    });
    expect(result).toMatchObject({ ok: false, attempts: 2, code: 'NOTIFY_FAILED' });
    expect(result?.error).toMatch(/ECONNREFUSED/);
  });

  it('validates options', () => {
    expect(() => createWebhookNotifier({ url: 'https://x.example/h', secret: 'short' })).toThrow(/secret: must be at least 16 characters/);
    expect(() => createWebhookNotifier({ url: 'https://x.example/h', headers: { 'X-Scholaria-Signature': 'forged' } })).toThrow(
      /headers: must not set/,
    );
    expect(() => createWebhookNotifier({ url: 'mailto:ops@example.com' })).toThrow(/url: must be an http\(s\) URL/);
  });
});
