import {
  eventFacts,
  eventTitle,
  componentSummary,
  componentTally,
  nextStep,
  type BackupEvent,
  type ComponentReport,
  type ErrorReport,
  type EventTemplates,
} from '@scholaria/backup-core';

/** A Block Kit block (only the shapes this package builds). */
export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string; emoji: true } }
  | { type: 'section'; text?: { type: 'mrkdwn'; text: string }; fields?: { type: 'mrkdwn'; text: string }[] }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] }
  | { type: 'divider' };

export interface SlackMessage {
  /** Fallback text for notifications and clients without Block Kit. */
  text: string;
  blocks: SlackBlock[];
}

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const HEADER_MAX = 150;
const SECTION_MAX = 3000;
const FIELD_MAX = 2000;
const FIELDS_PER_SECTION = 10;
const BLOCKS_MAX = 50;

const OUTCOME_EMOJI: Record<BackupEvent['outcome'], string> = {
  start: ':arrow_forward:',
  success: ':white_check_mark:',
  partial: ':warning:',
  failure: ':x:',
};

const STATUS_EMOJI: Record<ComponentReport['status'], string> = {
  ok: ':white_check_mark:',
  failed: ':x:',
  skipped: ':heavy_minus_sign:',
};

/** Slack's mrkdwn needs only &, < and > escaped; everything else is literal. */
export function escapeSlack(text: string): string {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function codeBlock(text: string, max: number): string {
  // A literal ``` inside would close the block early.
  const body = escapeSlack(text).replace(/```/g, "'''");
  return `\`\`\`${truncate(body, max - 6)}\`\`\``;
}

function errorSection(title: string, error: ErrorReport): SlackBlock[] {
  const heading = `*${escapeSlack(title)}* \`${escapeSlack(error.code)}\`\n`;
  return [
    { type: 'section', text: { type: 'mrkdwn', text: heading + codeBlock(error.message, SECTION_MAX - heading.length) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: truncate(`*Next step:* ${escapeSlack(nextStep(error))}`, SECTION_MAX) }] },
  ];
}

function sameError(a: ErrorReport | undefined, b: ErrorReport | undefined): boolean {
  return !!a && !!b && a.code === b.code && a.message === b.message;
}

/**
 * The default Block Kit message: a header with the outcome, the facts and the components as
 * fields, each error in a code block with its next step.
 */
export function buildSlackMessage(
  event: BackupEvent,
  templates: Pick<EventTemplates, 'subject'>,
  options: { mention?: string } = {},
): SlackMessage {
  const failed = event.outcome === 'failure' || event.outcome === 'partial';
  const mention = failed && options.mention ? options.mention : undefined;
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(`${OUTCOME_EMOJI[event.outcome] ?? ''} ${eventTitle(event)}`.trim(), HEADER_MAX), emoji: true },
    },
  ];
  if (mention) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: mention } });
  const tally = componentTally(event);
  if (tally) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeSlack(tally) }] });

  const facts = eventFacts(event).filter((f) => f.label !== 'Outcome' && f.label !== 'Time');
  blocks.push({
    type: 'section',
    fields: facts.slice(0, FIELDS_PER_SECTION).map((f) => ({
      type: 'mrkdwn' as const,
      text: truncate(`*${f.label}*\n${f.label === 'Set' ? `\`${escapeSlack(f.value)}\`` : escapeSlack(f.value)}`, FIELD_MAX),
    })),
  });

  const components = event.components ?? [];
  for (let i = 0; i < components.length; i += FIELDS_PER_SECTION) {
    blocks.push({
      type: 'section',
      fields: components.slice(i, i + FIELDS_PER_SECTION).map((c) => ({
        type: 'mrkdwn' as const,
        text: truncate(`*${escapeSlack(c.name)}*\n${STATUS_EMOJI[c.status] ?? ''} ${escapeSlack(componentSummary(c))}`, FIELD_MAX),
      })),
    });
  }
  if (event.error) {
    blocks.push(...errorSection(event.error.component ? `Error in ${event.error.component}` : 'Error', event.error));
  }
  for (const c of components) {
    if (c.error && !sameError(c.error, event.error)) blocks.push(...errorSection(`Error in ${c.name}`, c.error));
  }
  if (event.details?.length) {
    const list = event.details.map((d) => `• ${escapeSlack(d)}`).join('\n');
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(list, SECTION_MAX) } });
  }
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: escapeSlack(`${event.type} · ${event.host} · ${event.time}`) }],
  });

  // Over the block limit, keep the head and the last context line.
  const limited = blocks.length > BLOCKS_MAX ? [...blocks.slice(0, BLOCKS_MAX - 1), blocks[blocks.length - 1] as SlackBlock] : blocks;
  const subject = templates.subject(event);
  return { text: truncate(mention ? `${mention} ${escapeSlack(subject)}` : escapeSlack(subject), SECTION_MAX), blocks: limited };
}
