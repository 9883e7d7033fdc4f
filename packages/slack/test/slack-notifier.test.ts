import { afterEach, describe, expect, it } from 'vitest';
import { BackupError, dispatchNotification } from '@scholaria/backup-core';
import { createSlackNotifier, type SlackBlock, type SlackMessage } from '@scholaria/backup-slack';
import {
  notifierConformance,
  sampleBackupEvent,
  startHttpCapture,
  type HttpCapture,
  type StartHttpCaptureOptions,
} from '@scholaria/backup-testkit';

const TOKEN_PATH = '/services/T0AAA1111/B0BBB2222/SlackSecretTokenAbc123';

async function harness(captureOptions: StartHttpCaptureOptions = {}, on?: ('start' | 'success' | 'partial' | 'failure')[]) {
  const capture = await startHttpCapture(captureOptions);
  const notifier = createSlackNotifier({ webhookUrl: `${capture.url}${TOKEN_PATH}`, ...(on ? { on } : {}) });
  return {
    notifier,
    // A 500 answer is not a delivery; count what the receiver accepted.
    received: async () => capture.requests.filter((_, i) => accepted(captureOptions, i)).map((r) => r.json),
    cleanup: capture.stop,
  };
}

function accepted(options: StartHttpCaptureOptions, index: number): boolean {
  const answer = options.respond?.({ method: 'POST', path: '', headers: {}, body: Buffer.alloc(0) }, index);
  return !answer?.hang && (answer?.status ?? 200) < 300;
}

notifierConformance({
  name: 'slack',
  create: (overrides) => harness({}, overrides?.on),
  createFlaky: () => harness({ respond: (_req, i) => (i === 0 ? { status: 500, body: 'internal_error' } : undefined) }),
  createHanging: () => harness({ respond: () => ({ hang: true }) }),
});

const sections = (m: SlackMessage) => m.blocks.filter((b): b is Extract<SlackBlock, { type: 'section' }> => b.type === 'section');
const allText = (m: SlackMessage) => JSON.stringify(m.blocks);

describe('createSlackNotifier', () => {
  const captures: HttpCapture[] = [];
  const capture = async (options?: StartHttpCaptureOptions) => {
    const c = await startHttpCapture(options);
    captures.push(c);
    return c;
  };
  afterEach(async () => {
    while (captures.length) await captures.pop()?.stop();
  });

  it('posts a Block Kit success message with a header and fields per component', async () => {
    const c = await capture();
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}${TOKEN_PATH}` });
    const event = sampleBackupEvent('success');
    expect(await dispatchNotification([notifier], event, { retries: 0 })).toEqual([{ notifier: 'slack', ok: true, attempts: 1 }]);

    const [req] = c.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe(TOKEN_PATH);
    expect(req?.headers['content-type']).toMatch(/^application\/json/);
    const message = req?.json as SlackMessage;
    expect(message.text).toBe(`[OK] Backup succeeded: ${event.setId} (daily) on scholaria-db-1`);
    expect(message.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: ':white_check_mark: Backup succeeded', emoji: true } });
    const fieldTexts = sections(message).flatMap((s) => (s.fields ?? []).map((f) => f.text));
    expect(fieldTexts).toContain(`*Set*\n\`${event.setId}\``);
    expect(fieldTexts).toContain('*Tier*\ndaily');
    expect(fieldTexts).toContain('*Host*\nscholaria-db-1');
    expect(fieldTexts).toContain('*Size*\n864.0 MiB');
    expect(fieldTexts).toContain('*postgres*\n:white_check_mark: ok · 812.0 MiB · 38.1 s');
    expect(fieldTexts).toContain('*redis*\n:white_check_mark: ok · 2.5 MiB · 900 ms');
    expect(allText(message)).not.toContain('```');
  });

  it('posts a failure with the error in a code block and the next step, once', async () => {
    const c = await capture();
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}${TOKEN_PATH}`, mentionOnFailure: '<!channel>' });
    const event = sampleBackupEvent('failure');
    await dispatchNotification([notifier], event, { retries: 0 });
    const message = c.requests[0]?.json as SlackMessage;
    expect(message.text.startsWith('<!channel> [FAILED] Backup failed')).toBe(true);
    expect(message.blocks[0]).toMatchObject({ type: 'header', text: { text: ':x: Backup failed' } });
    const errorBlocks = sections(message).filter((s) => s.text?.text.includes('```'));
    expect(errorBlocks).toHaveLength(1);
    expect(errorBlocks[0]?.text?.text).toBe('*Error in redis* `CONNECTION_FAILED`\n```redis: connect ECONNREFUSED 10.0.0.7:6379```');
    expect(allText(message)).toContain('*Next step:* Start Redis or fix BACKUP_REDIS_URL, then run the backup again.');
    expect(sections(message).flatMap((s) => s.fields ?? []).map((f) => f.text)).toContain('*redis*\n:x: failed · 3.0 s');
  });

  it('mentions only on failure and partial', async () => {
    const c = await capture();
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}/hook`, mentionOnFailure: '<!here>', on: ['success', 'partial'] });
    await dispatchNotification([notifier], sampleBackupEvent('success'), { retries: 0 });
    await dispatchNotification([notifier], sampleBackupEvent('partial'), { retries: 0 });
    const [success, partial] = c.requests.map((r) => r.json as SlackMessage);
    expect(success?.text).not.toContain('<!here>');
    expect(partial?.text.startsWith('<!here> [PARTIAL] Backup partially failed')).toBe(true);
    expect(partial?.blocks[0]).toMatchObject({ text: { text: ':warning: Backup partially failed' } });
  });

  it('escapes &, < and > from event text', async () => {
    const c = await capture();
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}/hook` });
    await dispatchNotification(
      [notifier],
      sampleBackupEvent('failure', { error: { code: 'SOURCE_FAILED', message: 'table <users> & ```x```' }, components: [] }),
      { retries: 0 },
    );
    const text = allText(c.requests[0]?.json as SlackMessage);
    expect(text).toContain('table &lt;users&gt; &amp; \'\'\'x\'\'\'');
    expect(text).not.toContain('<users>');
  });

  it('splits many components into sections of at most 10 fields', async () => {
    const c = await capture();
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}/hook` });
    const components = Array.from({ length: 23 }, (_, i) => ({ name: `c${i}`, status: 'ok' as const, bytes: i }));
    await dispatchNotification([notifier], sampleBackupEvent('success', { components }), { retries: 0 });
    const message = c.requests[0]?.json as SlackMessage;
    const componentSections = sections(message).filter((s) => s.fields?.some((f) => f.text.startsWith('*c')));
    expect(componentSections.map((s) => s.fields?.length)).toEqual([10, 10, 3]);
  });

  it('does not retry a revoked webhook (404) and keeps the token out of the error', async () => {
    const c = await capture({ respond: () => ({ status: 404, body: 'no_service' }) });
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}${TOKEN_PATH}` });
    const warnings: string[] = [];
    const [result] = await dispatchNotification([notifier], sampleBackupEvent('failure'), {
      retries: 3,
      backoffMs: 10,
      logger: { debug() {}, info() {}, error() {}, warn: (m) => warnings.push(m) },
    });
    expect(result).toMatchObject({ ok: false, attempts: 1, code: 'NOTIFY_FAILED' });
    expect(result?.error).toContain('HTTP 404: no_service');
    expect(result?.error).not.toContain('SlackSecretTokenAbc123');
    expect(warnings.join('\n')).not.toContain('SlackSecretTokenAbc123');
    expect(c.requests).toHaveLength(1);
  });

  it('retries a rate-limited answer (429)', async () => {
    const c = await capture({ respond: (_r, i) => (i < 2 ? { status: 429, body: 'rate_limited' } : undefined) });
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}/hook` });
    const [result] = await dispatchNotification([notifier], sampleBackupEvent('failure'), { retries: 3, backoffMs: 10 });
    expect(result).toEqual({ notifier: 'slack', ok: true, attempts: 3 });
  });

  it('throws a BackupError with retryable by status', async () => {
    const c = await capture({ respond: (_r, i) => ({ status: i === 0 ? 503 : 400, body: 'invalid_payload' }) });
    const notifier = createSlackNotifier({ webhookUrl: `${c.url}${TOKEN_PATH}` });
    const event = sampleBackupEvent('failure');
    const first = await notifier.notify(event, { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e);
    const second = await notifier.notify(event, { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e);
    expect(BackupError.isInstance(first) && first.retryable).toBe(true);
    expect(BackupError.isInstance(second) && second.retryable).toBe(false);
    expect((second as BackupError).hint).toMatch(/templates/);
    expect((first as Error).message).toContain('/services/T0AAA1111/B0BBB2222/***');
  });

  it('accepts a custom payload builder and templates', async () => {
    const c = await capture();
    const notifier = createSlackNotifier({
      webhookUrl: `${c.url}/hook`,
      templates: { subject: (e) => `custom ${e.setId}` },
      buildPayload: (e, t) => ({ text: `${t.subject(e)} / ${e.outcome}` }),
    });
    const event = sampleBackupEvent('success');
    await dispatchNotification([notifier], event, { retries: 0 });
    expect(c.requests[0]?.json).toEqual({ text: `custom ${event.setId} / success` });
  });

  it('validates options with a ConfigError naming the field', () => {
    expect(() => createSlackNotifier({ webhookUrl: 'hooks.slack.com/services/x' })).toThrow(/webhookUrl: must be an http\(s\) URL/);
    expect(() => createSlackNotifier({ webhookUrl: 'https://hooks.slack.com/x', channel: '#ops' } as never)).toThrow(/channel/);
    const error = (() => {
      try {
        createSlackNotifier({ webhookUrl: 'ftp://hooks.slack.com/services/T/B/SecretTok' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(BackupError.isInstance(error) && error.code).toBe('CONFIG_INVALID');
    expect((error as Error).message).not.toContain('SecretTok');
  });
});
