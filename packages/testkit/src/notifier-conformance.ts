import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_NOTIFY_ON,
  NOTIFY_OUTCOMES,
  dispatchNotification,
  type BackupEvent,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';

export interface NotifierHarness {
  notifier: Notifier;
  /** What the real receiver got so far, one entry per delivered message (parsed mail, request...). */
  received(): Promise<unknown[]>;
  cleanup?: () => Promise<void>;
}

export interface NotifierConformanceOptions {
  /** Shown in the suite title, e.g. 'slack'. */
  name: string;
  /**
   * A notifier wired to a fresh real receiver (SMTP server, HTTP capture). `overrides.on`, when
   * given, must be passed to the notifier's factory.
   */
  create: (overrides?: { on?: NotifyOutcome[] }) => Promise<NotifierHarness>;
  /** The text of one received message that content checks search; default: strings and Buffers as they are, else JSON. */
  textOf?: (message: unknown) => string;
  /** The outcomes the notifier sends when `on` is not set. Default DEFAULT_NOTIFY_ON. */
  defaultOn?: readonly NotifyOutcome[];
  /** A receiver that fails the first delivery with a temporary error and accepts the next. */
  createFlaky?: () => Promise<NotifierHarness>;
  /** A receiver that accepts the connection and never answers. */
  createHanging?: () => Promise<NotifierHarness>;
  /** Groups to leave out. */
  skip?: { on?: boolean; redaction?: boolean; abort?: boolean };
}

let counter = 0;

/** A realistic event for notifier tests; each call gets a distinct set id. */
export function sampleBackupEvent(outcome: NotifyOutcome, overrides: Partial<BackupEvent> = {}): BackupEvent {
  counter += 1;
  const setId = `scholaria_backup_20261126_0200${String(counter % 100).padStart(2, '0')}`;
  const type: BackupEvent['type'] =
    outcome === 'start'
      ? 'backup.started'
      : outcome === 'success'
        ? 'backup.succeeded'
        : outcome === 'partial'
          ? 'backup.partial'
          : 'backup.failed';
  const base: BackupEvent = {
    type,
    outcome,
    time: '2026-11-26T02:00:41.000Z',
    host: 'scholaria-db-1',
    setId,
    tier: 'daily',
    durationMs: 41_250,
    bytes: 905_969_664,
    storages: ['fs:/backup'],
  };
  if (outcome === 'success') {
    base.components = [
      { name: 'postgres', status: 'ok', bytes: 851_443_712, durationMs: 38_100 },
      { name: 'redis', status: 'ok', bytes: 2_621_440, durationMs: 900 },
      { name: 'qdrant', status: 'ok', bytes: 51_904_512, durationMs: 12_400 },
    ];
  } else if (outcome === 'failure' || outcome === 'partial') {
    const redisError = {
      code: 'CONNECTION_FAILED',
      message: 'redis: connect ECONNREFUSED 10.0.0.7:6379',
      hint: 'Start Redis or fix BACKUP_REDIS_URL, then run the backup again.',
      component: 'redis',
    };
    base.components = [
      { name: 'postgres', status: outcome === 'partial' ? 'ok' : 'failed', bytes: 851_443_712, durationMs: 38_100 },
      { name: 'redis', status: 'failed', durationMs: 3_050, error: redisError },
      { name: 'qdrant', status: 'ok', bytes: 51_904_512, durationMs: 12_400 },
    ];
    base.error = redisError;
  }
  return { ...base, ...overrides };
}

function defaultTextOf(message: unknown): string {
  if (typeof message === 'string') return message;
  if (Buffer.isBuffer(message)) return message.toString('utf8');
  return JSON.stringify(message) ?? '';
}

/**
 * The behaviour every notifier shares, run against its real receiver: delivery of success
 * and failure events, `on` filtering, redaction, retry of a temporary failure and a bounded
 * wait on a receiver that hangs. Each notifier package runs this, then adds its own tests.
 */
export function notifierConformance(options: NotifierConformanceOptions): void {
  const textOf = options.textOf ?? defaultTextOf;
  const skip = options.skip ?? {};

  describe(`notifier conformance: ${options.name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      while (cleanups.length) await cleanups.pop()?.();
    });
    const harness = async (make: () => Promise<NotifierHarness>) => {
      const h = await make();
      if (h.cleanup) cleanups.push(h.cleanup);
      return h;
    };
    const texts = async (h: NotifierHarness) => (await h.received()).map(textOf);

    it('is a v1 notifier with a name and a valid `on`', async () => {
      const { notifier } = await harness(() => options.create());
      expect(notifier.specVersion).toBe('v1');
      expect(typeof notifier.name).toBe('string');
      expect(notifier.name.length).toBeGreaterThan(0);
      expect(typeof notifier.notify).toBe('function');
      const on = notifier.on ?? DEFAULT_NOTIFY_ON;
      for (const outcome of on) expect(NOTIFY_OUTCOMES).toContain(outcome);
      expect([...on].sort()).toEqual([...(options.defaultOn ?? DEFAULT_NOTIFY_ON)].sort());
    });

    it('delivers a success event with its set id and components', async () => {
      const h = await harness(() => options.create());
      const event = sampleBackupEvent('success');
      const results = await dispatchNotification([h.notifier], event, { retries: 0 });
      expect(results).toEqual([{ notifier: h.notifier.name, ok: true, attempts: 1 }]);
      const got = await texts(h);
      expect(got).toHaveLength(1);
      expect(got[0]).toContain(event.setId);
      expect(got[0]).toContain('postgres');
    });

    it('delivers a failure event with the error and the next step', async () => {
      const h = await harness(() => options.create());
      const event = sampleBackupEvent('failure');
      const results = await dispatchNotification([h.notifier], event, { retries: 0 });
      expect(results).toEqual([{ notifier: h.notifier.name, ok: true, attempts: 1 }]);
      const got = await texts(h);
      expect(got).toHaveLength(1);
      expect(got[0]).toContain(event.setId);
      expect(got[0]).toContain('CONNECTION_FAILED');
      expect(got[0]).toContain('ECONNREFUSED');
      expect(got[0]).toContain('Start Redis or fix BACKUP_REDIS_URL');
    });

    if (!skip.on) {
      it('respects `on`: a failure-only notifier skips success and sends failure', async () => {
        const h = await harness(() => options.create({ on: ['failure'] }));
        expect(h.notifier.on).toEqual(['failure']);
        expect(await dispatchNotification([h.notifier], sampleBackupEvent('success'), { retries: 0 })).toEqual([]);
        expect(await h.received()).toHaveLength(0);
        const failure = sampleBackupEvent('failure');
        const results = await dispatchNotification([h.notifier], failure, { retries: 0 });
        expect(results.map((r) => r.ok)).toEqual([true]);
        const got = await texts(h);
        expect(got).toHaveLength(1);
        expect(got[0]).toContain(failure.setId);
      });
    }

    if (!skip.redaction) {
      it('never delivers a password, token or key found in the event', async () => {
        const h = await harness(() => options.create());
        const password = 'Pg-Secret-8372';
        const redisPassword = 'Rd-Secret-1949';
        const slackToken = 'SlackTok3nXyZ9876';
        const ageKey = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQ';
        const event = sampleBackupEvent('failure', {
          error: {
            code: 'SOURCE_FAILED',
            message: `postgres: pg_dump: connection to postgres://backup:${password}@db.internal:5432/scholaria failed`,
            hint: `Check PGPASSWORD=${password} and the host db.internal`,
            component: 'postgres',
          },
          components: [
            {
              name: 'redis',
              status: 'failed',
              error: { code: 'AUTH_FAILED', message: `redis://:${redisPassword}@cache:6379 refused AUTH` },
            },
          ],
          details: [`webhook https://hooks.slack.com/services/T0AAA/B0BBB/${slackToken}`, `identity ${ageKey}`],
        });
        const results = await dispatchNotification([h.notifier], event, { retries: 0 });
        expect(results.map((r) => r.ok)).toEqual([true]);
        const got = await texts(h);
        expect(got).toHaveLength(1);
        // Delivered, with the non-secret parts intact...
        expect(got[0]).toContain('db.internal');
        // ...and no secret in any form.
        for (const secret of [password, redisPassword, slackToken, ageKey.slice(16)]) {
          expect(got[0]).not.toContain(secret);
        }
      });
    }

    if (!skip.abort) {
      it('sends nothing when the signal is already aborted', async () => {
        const h = await harness(() => options.create());
        const controller = new AbortController();
        controller.abort(new Error('shutting down'));
        await expect(h.notifier.notify(sampleBackupEvent('failure'), { signal: controller.signal })).rejects.toThrow();
        expect(await h.received()).toHaveLength(0);
      });
    }

    if (options.createFlaky) {
      const createFlaky = options.createFlaky;
      it('retries after a temporary receiver failure and then delivers once', async () => {
        const h = await harness(createFlaky);
        const event = sampleBackupEvent('failure');
        const results = await dispatchNotification([h.notifier], event, { retries: 2, backoffMs: 20, timeoutMs: 10_000 });
        expect(results).toEqual([{ notifier: h.notifier.name, ok: true, attempts: 2 }]);
        const got = await texts(h);
        expect(got).toHaveLength(1);
        expect(got[0]).toContain(event.setId);
      });
    }

    if (options.createHanging) {
      const createHanging = options.createHanging;
      it('gives up on a receiver that never answers after the timeout of each attempt', async () => {
        const h = await harness(createHanging);
        // Finishing at all proves the bound: the receiver never answers.
        const results = await dispatchNotification([h.notifier], sampleBackupEvent('failure'), {
          timeoutMs: 300,
          retries: 1,
          backoffMs: 10,
        });
        expect(results).toHaveLength(1);
        expect(results[0]).toMatchObject({ ok: false, attempts: 2, code: 'TIMEOUT' });
      });
    }
  });
}
