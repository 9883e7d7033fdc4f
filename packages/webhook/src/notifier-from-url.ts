import { ConfigError, type EventTemplates, type Notifier, type NotifyOutcome } from '@scholaria/backup-core';
import { createSlackNotifier } from '@scholaria/backup-slack';
import { createDiscordNotifier } from './discord-notifier.js';
import { createWebhookNotifier } from './webhook-notifier.js';
import { createHeartbeatNotifier } from './heartbeat-notifier.js';

export type WebhookKind = 'slack' | 'discord' | 'heartbeat' | 'webhook';

export interface NotifierFromUrlOptions {
  on?: NotifyOutcome[];
  templates?: Partial<EventTemplates>;
  name?: string;
  /** For a generic webhook: HMAC secret (see createWebhookNotifier). Ignored for Slack, Discord and heartbeats. */
  secret?: string;
  /** For a generic webhook: extra headers. */
  headers?: Record<string, string>;
}

/** Which notifier a URL calls for, from its host and path alone. */
export function detectWebhookKind(url: string): WebhookKind {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'webhook';
  }
  const host = u.hostname.toLowerCase();
  if (host === 'hooks.slack.com' || host === 'hooks.slack-gov.com') return 'slack';
  if (/^(?:(?:ptb|canary)\.)?discord(?:app)?\.com$/.test(host) && /^\/api(?:\/v\d+)?\/webhooks\//.test(u.pathname)) {
    return 'discord';
  }
  if (host === 'hc-ping.com') return 'heartbeat';
  return 'webhook';
}

/**
 * The notifier for one webhook URL, as `BACKUP_NOTIFY_WEBHOOK` gives it: Slack for
 * hooks.slack.com, Discord for discord.com/discordapp.com `/api/webhooks/...`, a heartbeat for
 * hc-ping.com, and the generic signed JSON webhook for anything else.
 */
export function notifierFromWebhookUrl(url: string, options: NotifierFromUrlOptions = {}): Notifier {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ConfigError('notifierFromWebhookUrl: invalid options', ['url: must be a webhook URL'], {
      hint: 'Set BACKUP_NOTIFY_WEBHOOK to a Slack or Discord webhook URL, or to your own endpoint.',
    });
  }
  const common = {
    ...(options.on ? { on: options.on } : {}),
    ...(options.templates ? { templates: options.templates } : {}),
    ...(options.name ? { name: options.name } : {}),
  };
  switch (detectWebhookKind(url)) {
    case 'slack':
      return createSlackNotifier({ webhookUrl: url, ...common });
    case 'discord':
      return createDiscordNotifier({ webhookUrl: url, ...common });
    case 'heartbeat':
      return createHeartbeatNotifier({ url, ...common });
    default:
      return createWebhookNotifier({
        url,
        ...common,
        ...(options.secret ? { secret: options.secret } : {}),
        ...(options.headers ? { headers: options.headers } : {}),
      });
  }
}
