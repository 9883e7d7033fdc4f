import { z } from 'zod';
import {
  NOTIFY_OUTCOMES,
  eventTemplatesSchema,
  httpUrlSchema,
  notifyFetch,
  notifyOnSchema,
  parseNotifierOptions,
  resolveTemplates,
  type BackupEvent,
  type BackupEventType,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';

const BACKUP_EVENTS: BackupEventType[] = ['backup.started', 'backup.succeeded', 'backup.partial', 'backup.failed'];

const EVENT_TYPES = [
  'backup.started',
  'backup.succeeded',
  'backup.partial',
  'backup.failed',
  'restore.started',
  'restore.succeeded',
  'restore.failed',
  'prune.succeeded',
  'prune.failed',
  'verify.succeeded',
  'verify.failed',
  'health.failed',
] as const satisfies readonly BackupEventType[];

// healthchecks.io accepts up to 100 kB of request body as the ping's log.
const MAX_BODY_BYTES = 100_000;

export const heartbeatNotifierOptionsSchema = z.strictObject({
  /** The check's ping URL, e.g. https://hc-ping.com/<uuid> (secret: anyone with it can ping). */
  url: httpUrlSchema('https://hc-ping.com/0b5f2d1e-1111-2222-3333-444455556666'),
  /** Name in logs and dispatch results. */
  name: z.string().min(1).default('heartbeat'),
  /** Default all four: a dead-man's switch needs the start and every end. */
  on: notifyOnSchema,
  /** POST sends the text report as the ping body (shown in the check's log); GET sends nothing. */
  method: z.enum(['POST', 'GET']).default('POST'),
  /** Event types that ping; default the backup.* events, so a restore or prune does not look like a backup run. */
  eventTypes: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
  /** `text` renders the POST body. */
  templates: eventTemplatesSchema,
});

export type HeartbeatNotifierOptions = z.input<typeof heartbeatNotifierOptionsSchema>;

/** `<url>/start` for start, `<url>` for success, `<url>/fail` for failure and partial; the query string is kept. */
export function heartbeatUrl(url: string, outcome: NotifyOutcome): string {
  const u = new URL(url);
  const suffix = outcome === 'start' ? '/start' : outcome === 'success' ? '' : '/fail';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${suffix}`;
  return u.toString();
}

function limitBytes(text: string, max: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return text;
  // Cut on a character boundary: decoding a cut multi-byte sequence yields U+FFFD, which we drop.
  return buf.subarray(0, max - 3).toString('utf8').replace(/\uFFFD$/, '') + '...';
}

/**
 * healthchecks.io-style pings for dead-man's-switch monitoring: the monitor alerts when a
 * backup fails (`/fail`) and also when no success ping arrives in time (the scheduler or the
 * host is down), which no push notification can report.
 */
export function createHeartbeatNotifier(options: HeartbeatNotifierOptions): Notifier {
  const o = parseNotifierOptions(
    'createHeartbeatNotifier',
    heartbeatNotifierOptionsSchema,
    options,
    'Create a check at healthchecks.io (or your own instance) with the backup schedule and pass its ping URL as { url }.',
  );
  const templates = resolveTemplates(o.templates ?? {});
  const eventTypes = new Set<BackupEventType>(o.eventTypes ?? BACKUP_EVENTS);
  return {
    specVersion: 'v1',
    name: o.name,
    on: [...(o.on ?? NOTIFY_OUTCOMES)] as NotifyOutcome[],
    async notify(event: BackupEvent, { signal }: { signal: AbortSignal }): Promise<void> {
      signal.throwIfAborted();
      if (!eventTypes.has(event.type)) return;
      const target = heartbeatUrl(o.url, event.outcome);
      await notifyFetch(o.name, target, {
        method: o.method,
        ...(o.method === 'POST'
          ? { headers: { 'content-type': 'text/plain; charset=utf-8' }, body: limitBytes(templates.text(event), MAX_BODY_BYTES) }
          : {}),
        signal,
      });
    },
  };
}
