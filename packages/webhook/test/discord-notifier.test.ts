import { describe, expect, it } from 'vitest';
import { dispatchNotification } from '@scholaria/backup-core';
import { createDiscordNotifier, type DiscordMessage } from '@scholaria/backup-webhook';
import { notifierConformance, sampleBackupEvent } from '@scholaria/backup-testkit';
import { httpHarness, logCollector, useCaptures } from './helpers.js';

const HOOK = '/api/webhooks/123456789012345678/DiscordSecretTok3n-abc';
const make = (base: string, on?: ('start' | 'success' | 'partial' | 'failure')[]) =>
  createDiscordNotifier({ webhookUrl: `${base}${HOOK}`, ...(on ? { on } : {}) });

notifierConformance({
  name: 'discord',
  create: (overrides) => httpHarness(make, {}, overrides?.on),
  createFlaky: () => httpHarness(make, { respond: (_r, i) => (i === 0 ? { status: 500 } : { status: 204 }) }),
  createHanging: () => httpHarness(make, { respond: () => ({ hang: true }) }),
});

describe('createDiscordNotifier', () => {
  const capture = useCaptures();

  it('posts a green embed with facts and a field per component on success', async () => {
    const c = await capture({ respond: () => ({ status: 204 }) });
    const event = sampleBackupEvent('success');
    const results = await dispatchNotification([make(c.url)], event, { retries: 0 });
    expect(results).toEqual([{ notifier: 'discord', ok: true, attempts: 1 }]);
    expect(c.requests[0]?.path).toBe(HOOK);
    const message = c.requests[0]?.json as DiscordMessage;
    expect(message.allowed_mentions).toEqual({ parse: [] });
    expect(message.content).toBeUndefined();
    const [embed] = message.embeds;
    expect(embed?.title).toBe(`[OK] Backup succeeded: ${event.setId} (daily) on scholaria-db-1`);
    expect(embed?.color).toBe(0x2eb67d);
    expect(embed?.timestamp).toBe('2026-11-26T02:00:41.000Z');
    expect(embed?.description).toBe('3 of 3 components ok');
    expect(embed?.fields).toContainEqual({ name: 'Set', value: `\`${event.setId}\``, inline: true });
    expect(embed?.fields).toContainEqual({ name: 'Tier', value: 'daily', inline: true });
    expect(embed?.fields).toContainEqual({ name: '✅ postgres', value: 'ok · 812.0 MiB · 38.1 s', inline: true });
    expect(embed?.fields).toContainEqual({ name: '✅ qdrant', value: 'ok · 49.5 MiB · 12.4 s', inline: true });
  });

  it('colours failure red and partial orange, with the error in a code block and the next step', async () => {
    const c = await capture({ respond: () => ({ status: 204 }) });
    const notifier = createDiscordNotifier({ webhookUrl: `${c.url}${HOOK}`, mentionOnFailure: '@here', username: 'Backups' });
    await dispatchNotification([notifier], sampleBackupEvent('failure'), { retries: 0 });
    await dispatchNotification([notifier], sampleBackupEvent('partial'), { retries: 0 });
    const [failure, partial] = c.requests.map((r) => r.json as DiscordMessage);
    expect(failure?.embeds[0]?.color).toBe(0xe01e5a);
    expect(partial?.embeds[0]?.color).toBe(0xf2994a);
    expect(failure?.content).toBe('@here');
    expect(failure?.username).toBe('Backups');
    expect(failure?.allowed_mentions.parse).toContain('everyone');
    expect(failure?.embeds[0]?.description).toContain(
      '**Error in redis** `CONNECTION_FAILED`\n```\nredis: connect ECONNREFUSED 10.0.0.7:6379\n```\n**Next step:** Start Redis or fix BACKUP_REDIS_URL, then run the backup again.',
    );
    expect(failure?.embeds[0]?.fields).toContainEqual({ name: '❌ redis', value: 'failed · 3.0 s', inline: true });
  });

  it('escapes markdown from event text and never lets it ping', async () => {
    const c = await capture({ respond: () => ({ status: 204 }) });
    await dispatchNotification(
      [make(c.url)],
      sampleBackupEvent('failure', { details: ['**bold** @everyone [click](https://evil.example)'] }),
      { retries: 0 },
    );
    const message = c.requests[0]?.json as DiscordMessage;
    expect(message.embeds[0]?.description).toContain('\\*\\*bold\\*\\* @everyone \\[click\\](https://evil.example)');
    expect(message.allowed_mentions).toEqual({ parse: [] });
  });

  it('keeps embeds within Discord limits', async () => {
    const c = await capture({ respond: () => ({ status: 204 }) });
    const components = Array.from({ length: 40 }, (_, i) => ({ name: `component-${i}`, status: 'ok' as const, bytes: i * 1000 }));
    await dispatchNotification(
      [make(c.url)],
      sampleBackupEvent('failure', { components, details: Array.from({ length: 200 }, (_, i) => `detail line ${i} ${'x'.repeat(40)}`) }),
      { retries: 0 },
    );
    const embed = (c.requests[0]?.json as DiscordMessage).embeds[0];
    expect(embed?.fields.length).toBeLessThanOrEqual(25);
    expect(embed?.description?.length).toBeLessThanOrEqual(4096);
    const total =
      (embed?.title.length ?? 0) +
      (embed?.description?.length ?? 0) +
      (embed?.footer.text.length ?? 0) +
      (embed?.fields ?? []).reduce((n, f) => n + f.name.length + f.value.length, 0);
    expect(total).toBeLessThanOrEqual(6000);
  });

  it('retries 429, does not retry 401, and never shows the token', async () => {
    const c = await capture({ respond: (_r, i) => (i === 0 ? { status: 429, body: { retry_after: 0.01 } } : { status: 401, body: { message: '401: Unauthorized', code: 0 } }) });
    const { logger, warnings } = logCollector();
    const [result] = await dispatchNotification([make(c.url)], sampleBackupEvent('failure'), { retries: 3, backoffMs: 10, logger });
    expect(result).toMatchObject({ ok: false, attempts: 2, code: 'NOTIFY_FAILED' });
    expect(result?.error).toContain('HTTP 401');
    expect(result?.error).toContain('/api/webhooks/');
    expect(result?.error).not.toContain('DiscordSecretTok3n');
    expect(warnings.join('\n')).not.toContain('DiscordSecretTok3n');
  });

  it('validates options', () => {
    expect(() => createDiscordNotifier({ webhookUrl: 'not a url' })).toThrow(/webhookUrl: must be an http\(s\) URL/);
    expect(() => createDiscordNotifier({ webhookUrl: 'https://discord.com/api/webhooks/1/x', color: 1 } as never)).toThrow(/color/);
    expect(() => createDiscordNotifier({ webhookUrl: 'https://discord.com/api/webhooks/1/x', on: ['sometimes'] } as never)).toThrow(/on\[0\]/);
  });
});
