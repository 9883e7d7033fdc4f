import { z } from 'zod';
import {
  OUTCOME_COLORS,
  componentSummary,
  componentTally,
  eventFacts,
  eventTemplatesSchema,
  httpUrlSchema,
  nextStep,
  notifyFetch,
  notifyOnSchema,
  parseNotifierOptions,
  resolveTemplates,
  type BackupEvent,
  type ErrorReport,
  type EventTemplates,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';

export const discordNotifierOptionsSchema = z.strictObject({
  /** https://discord.com/api/webhooks/<id>/<token> (secret). */
  webhookUrl: httpUrlSchema('https://discord.com/api/webhooks/123456789/XXXX'),
  /** Name in logs and dispatch results. */
  name: z.string().min(1).default('discord'),
  on: notifyOnSchema,
  templates: eventTemplatesSchema,
  /** Overrides the webhook's display name. */
  username: z.string().min(1).max(80).optional(),
  avatarUrl: httpUrlSchema('https://example.com/avatar.png').optional(),
  /** Sent as message content on failure and partial events, e.g. '@here' or '<@&ROLE_ID>'; the only text allowed to ping. */
  mentionOnFailure: z.string().min(1).optional(),
  /** Replaces the whole JSON payload: (event, templates) => object. */
  buildPayload: z
    .custom<(event: BackupEvent, templates: EventTemplates) => unknown>((v) => typeof v === 'function', {
      message: 'must be a function (event, templates) => payload',
    })
    .optional(),
});

export type DiscordNotifierOptions = z.input<typeof discordNotifierOptionsSchema>;

export interface DiscordEmbed {
  title: string;
  description?: string;
  color: number;
  fields: { name: string; value: string; inline: boolean }[];
  timestamp?: string;
  footer: { text: string };
}

export interface DiscordMessage {
  content?: string;
  username?: string;
  avatar_url?: string;
  embeds: DiscordEmbed[];
  allowed_mentions: { parse: ('everyone' | 'roles' | 'users')[] };
}

// Discord embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
const LIMITS = { title: 256, description: 4096, fields: 25, name: 256, value: 1024, footer: 2048, total: 6000 };

const STATUS_ICON = { ok: '✅', failed: '❌', skipped: '➖' } as const;

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Backslash-escapes the Discord markdown that event text could trigger (bold, strike,
 * code, spoilers, masked links, quotes/headings/lists at a line start), leaving
 * identifiers such as BACKUP_REDIS_URL readable: Discord ignores "_" inside words.
 */
export function escapeDiscord(text: string): string {
  return String(text)
    .replace(/([\\*~`|[\]])/g, '\\$1')
    .replace(/(?<!\w)_|_(?!\w)/g, '\\_')
    .replace(/^(\s*)([>#-])/gm, '$1\\$2');
}

function codeBlock(text: string): string {
  return `\`\`\`\n${text.replace(/```/g, "'''")}\n\`\`\``;
}

function errorText(title: string, error: ErrorReport, budget: number): string {
  const head = `**${escapeDiscord(title)}** \`${error.code.replace(/`/g, "'")}\`\n`;
  const tail = `\n**Next step:** ${escapeDiscord(nextStep(error))}`;
  const room = Math.max(budget - head.length - tail.length - 10, 50);
  return head + codeBlock(truncate(error.message, room)) + tail;
}

/** The default Discord message: one embed coloured by outcome (green, orange, red; blue for start). */
export function buildDiscordMessage(
  event: BackupEvent,
  templates: Pick<EventTemplates, 'subject'>,
  options: { username?: string; avatarUrl?: string; mention?: string } = {},
): DiscordMessage {
  const failed = event.outcome === 'failure' || event.outcome === 'partial';
  const mention = failed ? options.mention : undefined;

  const descriptionParts: string[] = [];
  const tally = componentTally(event);
  if (tally) descriptionParts.push(escapeDiscord(tally));
  if (event.error) {
    descriptionParts.push(errorText(event.error.component ? `Error in ${event.error.component}` : 'Error', event.error, 2000));
  }
  for (const c of event.components ?? []) {
    if (c.error && !(event.error && c.error.code === event.error.code && c.error.message === event.error.message)) {
      descriptionParts.push(errorText(`Error in ${c.name}`, c.error, 1000));
    }
  }
  if (event.details?.length) descriptionParts.push(event.details.map((d) => `• ${escapeDiscord(d)}`).join('\n'));

  const fields: DiscordEmbed['fields'] = [];
  for (const f of eventFacts(event)) {
    if (f.label === 'Outcome' || f.label === 'Time') continue;
    fields.push({ name: f.label, value: truncate(f.label === 'Set' ? `\`${f.value}\`` : escapeDiscord(f.value), LIMITS.value), inline: true });
  }
  for (const c of event.components ?? []) {
    fields.push({
      name: truncate(`${STATUS_ICON[c.status] ?? ''} ${c.name}`, LIMITS.name),
      value: truncate(escapeDiscord(componentSummary(c)), LIMITS.value),
      inline: true,
    });
  }

  const embed: DiscordEmbed = {
    title: truncate(templates.subject(event), LIMITS.title),
    color: OUTCOME_COLORS[event.outcome] ?? 0x808080,
    fields: fields.slice(0, LIMITS.fields),
    footer: { text: truncate(`scholaria-backup · ${event.type}`, LIMITS.footer) },
  };
  const description = descriptionParts.join('\n\n');
  if (description) embed.description = truncate(description, LIMITS.description);
  if (!Number.isNaN(Date.parse(event.time))) embed.timestamp = new Date(event.time).toISOString();

  // Stay under the 6000-character total: shorten the description first.
  const size = () =>
    embed.title.length +
    (embed.description?.length ?? 0) +
    embed.footer.text.length +
    embed.fields.reduce((n, f) => n + f.name.length + f.value.length, 0);
  if (size() > LIMITS.total && embed.description) {
    embed.description = truncate(embed.description, Math.max(embed.description.length - (size() - LIMITS.total), 100));
  }
  while (size() > LIMITS.total && embed.fields.length > 0) embed.fields.pop();

  return {
    ...(mention ? { content: mention } : {}),
    ...(options.username ? { username: options.username } : {}),
    ...(options.avatarUrl ? { avatar_url: options.avatarUrl } : {}),
    embeds: [embed],
    // Event text must never ping anyone; only the configured mention may.
    allowed_mentions: { parse: mention ? ['everyone', 'roles', 'users'] : [] },
  };
}

/** Posts each event to a Discord webhook as an embed coloured by outcome. */
export function createDiscordNotifier(options: DiscordNotifierOptions): Notifier {
  const o = parseNotifierOptions(
    'createDiscordNotifier',
    discordNotifierOptionsSchema,
    options,
    'In Discord: Server Settings > Integrations > Webhooks > New Webhook > Copy Webhook URL, then pass { webhookUrl }.',
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
        : buildDiscordMessage(event, templates, {
            ...(o.username ? { username: o.username } : {}),
            ...(o.avatarUrl ? { avatarUrl: o.avatarUrl } : {}),
            ...(o.mentionOnFailure ? { mention: o.mentionOnFailure } : {}),
          });
      await notifyFetch(o.name, o.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(payload),
        signal,
      });
    },
  };
}
