import { describe, expect, it } from 'vitest';
import { BackupError, dispatchNotification } from '@scholaria/backup-core';
import { detectWebhookKind, notifierFromWebhookUrl, verifyWebhookSignature } from '@scholaria/backup-webhook';
import { sampleBackupEvent } from '@scholaria/backup-testkit';
import { useCaptures } from './helpers.js';

describe('notifierFromWebhookUrl (BACKUP_NOTIFY_WEBHOOK)', () => {
  const capture = useCaptures();

  it.each([
    ['https://hooks.slack.com/services/T000/B000/XXXX', 'slack'],
    ['https://hooks.slack-gov.com/services/T000/B000/XXXX', 'slack'],
    ['https://discord.com/api/webhooks/123/abc', 'discord'],
    ['https://discordapp.com/api/webhooks/123/abc', 'discord'],
    ['https://ptb.discord.com/api/v10/webhooks/123/abc', 'discord'],
    ['https://discord.com/channels/123', 'webhook'],
    ['https://hc-ping.com/0b5f2d1e-1111-2222-3333-444455556666', 'heartbeat'],
    ['https://ops.example.com/hooks/backup', 'webhook'],
    ['https://hooks.slack.com.evil.example/services/T/B/X', 'webhook'],
  ])('%s is %s', (url, kind) => {
    expect(detectWebhookKind(url)).toBe(kind);
    const notifier = notifierFromWebhookUrl(url, { on: ['failure'] });
    expect(notifier.name).toBe(kind);
    expect(notifier.on).toEqual(['failure']);
    expect(notifier.specVersion).toBe('v1');
  });

  it('delivers to a generic endpoint as signed JSON', async () => {
    const c = await capture();
    const secret = 'shared-secret-0123456789abcdef';
    const notifier = notifierFromWebhookUrl(`${c.url}/in`, { secret });
    const event = sampleBackupEvent('failure');
    expect((await dispatchNotification([notifier], event, { retries: 0 }))[0]?.ok).toBe(true);
    expect((c.requests[0]?.json as { setId: string }).setId).toBe(event.setId);
    expect(verifyWebhookSignature(c.requests[0]?.body ?? '', c.requests[0]?.headers ?? {}, secret)).toBe(true);
  });

  it('rejects an empty or malformed URL with a ConfigError', () => {
    for (const url of ['', 'hooks.slack.com/services/x']) {
      let error: unknown;
      try {
        notifierFromWebhookUrl(url);
      } catch (e) {
        error = e;
      }
      expect(BackupError.isInstance(error) && error.code).toBe('CONFIG_INVALID');
    }
  });
});
