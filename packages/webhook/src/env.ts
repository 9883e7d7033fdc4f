import { z } from 'zod';
import { defineAdapter, envIssue } from '@scholaria/backup-core';
import { detectWebhookKind, type WebhookKind } from './notifier-from-url.js';

const isLoopback = (host: string) => host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);

const webhookUrl = z.string().transform((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return envIssue(ctx, 'expected an https:// webhook URL');
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname))) {
    return envIssue(ctx, 'expected an https:// URL (plain http is allowed only to localhost)');
  }
  return s;
});

export interface WebhookEnvConfig {
  url: string;
  kind: WebhookKind;
}

/**
 * The webhook notifier's `.env` descriptor: `BACKUP_NOTIFY_WEBHOOK`, whose host picks Slack,
 * Discord, a heartbeat ping or the generic signed webhook (`detectWebhookKind`).
 */
export const webhookNotifierEnv = defineAdapter({
  kind: 'notifier',
  name: 'webhook',
  title: 'Webhook notifications (`@scholaria/backup-webhook`)',
  enabledBy: 'BACKUP_NOTIFY_WEBHOOK',
  env: {
    BACKUP_NOTIFY_WEBHOOK: {
      schema: webhookUrl,
      secret: true,
      doc: 'webhook URL (*secret*: it carries a token); https, or http to a loopback host. `hooks.slack.com` → Slack, `discord.com`/`discordapp.com` `/api/webhooks/...` → Discord, `hc-ping.com` → heartbeat ping, anything else → signed JSON POST',
    },
  },
  configure({ values, warn }): WebhookEnvConfig | undefined {
    const url = values.BACKUP_NOTIFY_WEBHOOK;
    if (!url) return undefined;
    const kind = detectWebhookKind(url);
    if (kind === 'slack' && !/^\/(services|triggers|workflows)\/[^/]+/.test(new URL(url).pathname)) {
      warn('BACKUP_NOTIFY_WEBHOOK points at hooks.slack.com but does not look like an incoming webhook (https://hooks.slack.com/services/...).');
    }
    return { url, kind };
  },
  secrets(config) {
    // The path (and query) is the token: mask it on its own as well.
    const u = new URL(config.url);
    const token = `${u.pathname}${u.search}`.replace(/^\/+/, '');
    return token.length >= 8 ? [config.url, token] : [config.url];
  },
  async create(config, { engine }) {
    const { notifierFromWebhookUrl } = await import('./notifier-from-url.js');
    return notifierFromWebhookUrl(config.url, { on: engine.notifyOn });
  },
});
