import { describe, expect, it } from 'vitest';
import { NOTIFY_OUTCOMES, dispatchNotification } from '@scholaria/backup-core';
import { createHeartbeatNotifier, heartbeatUrl } from '@scholaria/backup-webhook';
import { notifierConformance, sampleBackupEvent } from '@scholaria/backup-testkit';
import { httpHarness, logCollector, useCaptures } from './helpers.js';

const CHECK = '/ping/0b5f2d1e-1111-2222-3333-444455556666';
const make = (base: string, on?: ('start' | 'success' | 'partial' | 'failure')[]) =>
  createHeartbeatNotifier({ url: `${base}${CHECK}`, ...(on ? { on } : {}) });

notifierConformance({
  name: 'heartbeat',
  defaultOn: NOTIFY_OUTCOMES,
  create: (overrides) => httpHarness(make, {}, overrides?.on, (r) => `${r.method} ${r.path}\n${r.body.toString('utf8')}`),
  createFlaky: () => httpHarness(make, { respond: (_r, i) => (i === 0 ? { status: 500 } : undefined) }, undefined, (r) => r.body.toString('utf8')),
  createHanging: () => httpHarness(make, { respond: () => ({ hang: true }) }),
});

describe('createHeartbeatNotifier', () => {
  const capture = useCaptures();

  it('pings /start, the check URL and /fail for start, success, failure and partial', async () => {
    const c = await capture();
    const notifier = make(c.url);
    expect(notifier.on).toEqual(['start', 'success', 'partial', 'failure']);
    for (const outcome of ['start', 'success', 'failure', 'partial'] as const) {
      const results = await dispatchNotification([notifier], sampleBackupEvent(outcome), { retries: 0 });
      expect(results.map((r) => r.ok)).toEqual([true]);
    }
    expect(c.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `POST ${CHECK}/start`,
      `POST ${CHECK}`,
      `POST ${CHECK}/fail`,
      `POST ${CHECK}/fail`,
    ]);
    expect(c.requests[0]?.body.toString()).toContain('Backup started');
    expect(c.requests[2]?.body.toString()).toContain('Error [CONNECTION_FAILED]');
    expect(c.requests[2]?.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it('keeps a query string and supports GET pings without a body', async () => {
    const c = await capture();
    const notifier = createHeartbeatNotifier({ url: `${c.url}${CHECK}/?rid=nightly`, method: 'GET' });
    await dispatchNotification([notifier], sampleBackupEvent('failure'), { retries: 0 });
    expect(c.requests[0]?.method).toBe('GET');
    expect(c.requests[0]?.path).toBe(`${CHECK}/fail?rid=nightly`);
    expect(c.requests[0]?.body.length).toBe(0);
    expect(heartbeatUrl('https://hc-ping.com/abc/', 'start')).toBe('https://hc-ping.com/abc/start');
    expect(heartbeatUrl('https://hc-ping.com/abc', 'success')).toBe('https://hc-ping.com/abc');
  });

  it('pings only for backup events unless told otherwise', async () => {
    const c = await capture();
    const restoreFailed = sampleBackupEvent('failure', { type: 'restore.failed' });
    await dispatchNotification([make(c.url)], restoreFailed, { retries: 0 });
    expect(c.requests).toHaveLength(0);
    const all = createHeartbeatNotifier({ url: `${c.url}${CHECK}`, eventTypes: ['backup.failed', 'restore.failed'] });
    await dispatchNotification([all], restoreFailed, { retries: 0 });
    expect(c.requests.map((r) => r.path)).toEqual([`${CHECK}/fail`]);
  });

  it('hides the check UUID in errors', async () => {
    const c = await capture({ respond: () => ({ status: 404, body: 'not found' }) });
    const { logger, warnings } = logCollector();
    const [result] = await dispatchNotification([make(c.url)], sampleBackupEvent('success'), { retries: 2, backoffMs: 10, logger });
    expect(result).toMatchObject({ ok: false, attempts: 1 });
    expect(result?.error).toContain('HTTP 404');
    expect(result?.error).not.toContain('0b5f2d1e-1111-2222-3333-444455556666');
    expect(warnings.join('\n')).not.toContain('0b5f2d1e-1111-2222-3333-444455556666');
  });

  it('validates options', () => {
    expect(() => createHeartbeatNotifier({ url: 'https://hc-ping.com/x', method: 'PUT' } as never)).toThrow(/method/);
    expect(() => createHeartbeatNotifier({ url: 'https://hc-ping.com/x', eventTypes: ['backup.exploded'] } as never)).toThrow(/eventTypes\[0\]/);
  });
});
