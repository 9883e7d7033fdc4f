import { z } from 'zod';
import {
  eventTemplatesSchema,
  httpUrlSchema,
  notifyFetch,
  notifyOnSchema,
  parseNotifierOptions,
  resolveTemplates,
  type BackupEvent,
  type EventTemplates,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';
import { buildSlackMessage } from './slack-message.js';

export const slackNotifierOptionsSchema = z.strictObject({
  /** Incoming webhook URL, https://hooks.slack.com/services/T.../B.../... (secret). */
  webhookUrl: httpUrlSchema('https://hooks.slack.com/services/T000/B000/XXXX'),
  /** Name in logs and dispatch results. */
  name: z.string().min(1).default('slack'),
  on: notifyOnSchema,
  templates: eventTemplatesSchema,
  /** Prepended on failure and partial events, e.g. '<!channel>', '<!here>' or '<@U012AB3CD>'. */
  mentionOnFailure: z.string().min(1).optional(),
  /** Replaces the whole JSON payload: (event, templates) => object. */
  buildPayload: z
    .custom<(event: BackupEvent, templates: EventTemplates) => unknown>((v) => typeof v === 'function', {
      message: 'must be a function (event, templates) => payload',
    })
    .optional(),
  /** Extra request headers (e.g. for a proxy in front of Slack). */
  headers: z.record(z.string(), z.string()).optional(),
});

export type SlackNotifierOptions = z.input<typeof slackNotifierOptionsSchema>;

/** Posts each event to a Slack incoming webhook as a Block Kit message. */
export function createSlackNotifier(options: SlackNotifierOptions): Notifier {
  const o = parseNotifierOptions(
    'createSlackNotifier',
    slackNotifierOptionsSchema,
    options,
    'Create an incoming webhook in Slack (Apps > Incoming Webhooks) and pass { webhookUrl }.',
  );
  const templates = resolveTemplates(o.templates ?? {});
  return {
    specVersion: 'v1',
    name: o.name,
    ...(o.on ? { on: [...o.on] as NotifyOutcome[] } : {}),
    async notify(event: BackupEvent, { signal }: { signal: AbortSignal }): Promise<void> {
      signal.throwIfAborted();
      const payload = o.buildPayload
        ? o.buildPayload(event, templates)
        : buildSlackMessage(event, templates, o.mentionOnFailure ? { mention: o.mentionOnFailure } : {});
      await notifyFetch(o.name, o.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', ...(o.headers ?? {}) },
        body: JSON.stringify(payload),
        signal,
      });
    },
  };
}
