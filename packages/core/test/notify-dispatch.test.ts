import { describe, expect, it } from 'vitest';
import {
  BackupError,
  createRedactor,
  dispatchNotification,
  notifierWants,
  notifyHttpError,
  type BackupEvent,
  type Logger,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';

const event = (outcome: NotifyOutcome, extra: Partial<BackupEvent> = {}): BackupEvent => ({
  type: outcome === 'success' ? 'backup.succeeded' : outcome === 'start' ? 'backup.started' : outcome === 'partial' ? 'backup.partial' : 'backup.failed',
  outcome,
  time: '2026-11-26T02:00:00.000Z',
  host: 'db-1',
  setId: 'scholaria_backup_20261126_020000',
  tier: 'daily',
  ...extra,
});

/** A real in-process notifier that records what it got and behaves as told on each attempt. */
function recorder(name: string, behave: (attempt: number, signal: AbortSignal) => Promise<void> | void = () => {}, on?: NotifyOutcome[]) {
  const got: BackupEvent[] = [];
  const signals: AbortSignal[] = [];
  const notifier: Notifier = {
    specVersion: 'v1',
    name,
    ...(on ? { on } : {}),
    async notify(e, { signal }) {
      got.push(e);
      signals.push(signal);
      await behave(got.length, signal);
    },
  };
  return { notifier, got, signals };
}

function collectingLogger() {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, ...(fields ? { fields } : {}) });
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  return { logger, lines };
}

describe('dispatchNotification', () => {
  it('sends to notifiers whose `on` includes the outcome; default success, partial and failure', async () => {
    const all = recorder('all');
    const failureOnly = recorder('failure-only', undefined, ['failure']);
    const starts = recorder('starts', undefined, ['start']);
    const notifiers = [all.notifier, failureOnly.notifier, starts.notifier];

    expect((await dispatchNotification(notifiers, event('success'))).map((r) => r.notifier)).toEqual(['all']);
    expect((await dispatchNotification(notifiers, event('partial'))).map((r) => r.notifier)).toEqual(['all']);
    expect((await dispatchNotification(notifiers, event('failure'))).map((r) => r.notifier)).toEqual(['all', 'failure-only']);
    expect((await dispatchNotification(notifiers, event('start'))).map((r) => r.notifier)).toEqual(['starts']);
    expect(all.got.map((e) => e.outcome)).toEqual(['success', 'partial', 'failure']);
    expect(notifierWants({}, 'start')).toBe(false);
    expect(notifierWants({ on: ['start'] }, 'start')).toBe(true);
  });

  it('redacts the whole event before any notifier sees it, without changing the caller’s event', async () => {
    const r = recorder('r');
    const original = event('failure', {
      error: { code: 'SOURCE_FAILED', message: 'pg_dump: postgres://backup:pg-pass-1@db/x refused', hint: 'check PGPASSWORD=pg-pass-1' },
      components: [{ name: 'redis', status: 'failed', error: { code: 'AUTH_FAILED', message: 'AUTH my-redis-secret failed' } }],
      details: ['webhook https://hooks.slack.com/services/T1/B2/slacktoken99'],
    });
    await dispatchNotification([r.notifier], original, { redact: createRedactor(['my-redis-secret']) });
    const seen = JSON.stringify(r.got[0]);
    for (const secret of ['pg-pass-1', 'my-redis-secret', 'slacktoken99']) expect(seen).not.toContain(secret);
    expect(r.got[0]?.error?.message).toBe('pg_dump: postgres://backup:***@db/x refused');
    expect(r.got[0]?.components?.[0]?.error?.message).toBe('AUTH *** failed');
    expect(original.error?.message).toContain('pg-pass-1');
  });

  it('retries retryable failures with backoff and reports the attempts', async () => {
    const r = recorder('flaky', (attempt) => {
      if (attempt < 3) throw new BackupError('NOTIFY_FAILED', `HTTP 503 on attempt ${attempt}`, { retryable: true });
    });
    const { logger, lines } = collectingLogger();
    const results = await dispatchNotification([r.notifier], event('failure'), { retries: 3, backoffMs: 5, logger });
    expect(results).toEqual([{ notifier: 'flaky', ok: true, attempts: 3 }]);
    expect(r.got).toHaveLength(3);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(lines.filter((l) => l.level === 'debug').map((l) => l.message)).toEqual([
      'notification via flaky failed (attempt 1), retrying in 5 ms: HTTP 503 on attempt 1',
      'notification via flaky failed (attempt 2), retrying in 10 ms: HTTP 503 on attempt 2',
      'notification via flaky delivered on attempt 3',
    ]);
  });

  it('retries unknown errors but not a non-retryable BackupError', async () => {
    const unknown = recorder('unknown', () => {
      throw new TypeError('fetch failed');
    });
    const permanent = recorder('permanent', () => {
      throw new BackupError('NOTIFY_FAILED', 'HTTP 404', { retryable: false });
    });
    const results = await dispatchNotification([unknown.notifier, permanent.notifier], event('failure'), { retries: 2, backoffMs: 1 });
    expect(results).toEqual([
      { notifier: 'unknown', ok: false, attempts: 3, error: 'fetch failed' },
      { notifier: 'permanent', ok: false, attempts: 1, error: 'HTTP 404', code: 'NOTIFY_FAILED' },
    ]);
  });

  it('times out an attempt that never settles, even if the notifier ignores its signal', async () => {
    const ignoring = recorder('ignoring', () => new Promise<void>(() => {}));
    const results = await dispatchNotification([ignoring.notifier], event('failure'), { timeoutMs: 50, retries: 1, backoffMs: 1 });
    expect(results).toEqual([
      { notifier: 'ignoring', ok: false, attempts: 2, error: 'ignoring: no answer within 50 ms', code: 'TIMEOUT' },
    ]);
    expect(ignoring.signals.every((s) => s.aborted)).toBe(true);
    expect(BackupError.isInstance(ignoring.signals[0]?.reason)).toBe(true);
  });

  it('runs notifiers concurrently: a hanging one does not hold the others', async () => {
    const order: string[] = [];
    const slow = recorder('slow', (_a, signal) => new Promise<void>((_res, rej) => signal.addEventListener('abort', () => rej(signal.reason))));
    const fast = recorder('fast', () => void order.push('fast delivered'));
    const pending = dispatchNotification([slow.notifier, fast.notifier], event('failure'), { timeoutMs: 200, retries: 0 });
    // The fast notifier is done while the slow one is still waiting for its timeout.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['fast delivered']);
    expect(slow.signals[0]?.aborted).toBe(false);
    const results = await pending;
    expect(results.map((r) => [r.notifier, r.ok])).toEqual([
      ['slow', false],
      ['fast', true],
    ]);
  });

  it('never throws: sync throws, bad spec versions, throwing loggers and redactors', async () => {
    const syncThrow: Notifier = {
      specVersion: 'v1',
      name: 'sync',
      notify() {
        throw new Error('boom postgres://u:pw-in-error@h/x');
      },
    };
    const v2 = { specVersion: 'v2', name: 'future', notify: async () => {} } as unknown as Notifier;
    const badLogger: Logger = {
      debug() {
        throw new Error('logger down');
      },
      info() {},
      warn() {
        throw new Error('logger down');
      },
      error() {},
    };
    const results = await dispatchNotification([syncThrow, v2], event('failure'), {
      retries: 1,
      backoffMs: 1,
      logger: badLogger,
      redact: () => {
        throw new Error('redactor down');
      },
    });
    expect(results).toEqual([
      { notifier: 'sync', ok: false, attempts: 2, error: 'boom postgres://u:***@h/x' },
      {
        notifier: 'future',
        ok: false,
        attempts: 0,
        error: `future has specVersion "v2"; this core supports 'v1' notifiers`,
        code: 'UNSUPPORTED_VERSION',
      },
    ]);
  });

  it('logs each final failure once as a redacted warning', async () => {
    const failing = recorder('hook', () => {
      throw new BackupError('NOTIFY_FAILED', 'POST https://hooks.slack.com/services/T1/B2/tok3n-value failed with secret-x1y2', {
        retryable: false,
      });
    });
    const { logger, lines } = collectingLogger();
    await dispatchNotification([failing.notifier], event('failure'), { logger, redact: createRedactor(['secret-x1y2']) });
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toBe('notification via hook failed after 1 attempt: POST https://hooks.slack.com/services/T1/B2/*** failed with ***');
    expect(warnings[0]?.fields).toMatchObject({ notifier: 'hook', attempts: 1, code: 'NOTIFY_FAILED', event: 'backup.failed' });
  });

  it('stops retrying when the caller aborts', async () => {
    const controller = new AbortController();
    const r = recorder('r', () => {
      controller.abort();
      throw new BackupError('NOTIFY_FAILED', 'HTTP 500', { retryable: true });
    });
    const results = await dispatchNotification([r.notifier], event('failure'), { retries: 5, backoffMs: 60_000, signal: controller.signal });
    // Finishing at all shows the 60 s backoff was skipped.
    expect(results).toEqual([{ notifier: 'r', ok: false, attempts: 1, error: 'r: notification aborted', code: 'ABORTED' }]);
    expect(r.signals[0]?.aborted).toBe(true);
  });

  it('returns an empty list when nobody wants the event', async () => {
    expect(await dispatchNotification([], event('failure'))).toEqual([]);
    expect(await dispatchNotification([recorder('x', undefined, ['failure']).notifier], event('success'))).toEqual([]);
  });
});

describe('notifyHttpError', () => {
  it.each([
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [400, false],
    [401, false],
    [404, false],
  ])('HTTP %i is retryable: %s', (status, retryable) => {
    const error = notifyHttpError('slack', 'https://hooks.slack.com/services/T1/B2/secrettoken', status, 'no_service');
    expect(error.code).toBe('NOTIFY_FAILED');
    expect(error.retryable).toBe(retryable);
    expect(error.message).toBe(`slack: https://hooks.slack.com/services/T1/B2/*** answered HTTP ${status}: no_service`);
    expect(error.hint).toBeTruthy();
  });
});
