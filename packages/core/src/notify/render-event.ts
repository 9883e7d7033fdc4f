import { z } from 'zod';
import type { BackupEvent, BackupEventType, ComponentReport, ErrorReport, NotifyOutcome } from '../interfaces/events.js';

/**
 * The small functions notifiers render an event with. Every notifier accepts
 * `templates?: Partial<EventTemplates>`; a missing function falls back to the default below.
 */
export interface EventTemplates {
  /** One line: email subject, chat header, fallback notification text. */
  subject(event: BackupEvent): string;
  /** Plain-text report: email text part, heartbeat ping body, generic webhook `text`. */
  text(event: BackupEvent): string;
  /** Complete HTML document with every value escaped: email HTML part. */
  html(event: BackupEvent): string;
}

const TITLES: Record<BackupEventType, string> = {
  'backup.started': 'Backup started',
  'backup.succeeded': 'Backup succeeded',
  'backup.partial': 'Backup partially failed',
  'backup.failed': 'Backup failed',
  'restore.started': 'Restore started',
  'restore.succeeded': 'Restore succeeded',
  'restore.failed': 'Restore failed',
  'prune.succeeded': 'Prune finished',
  'prune.failed': 'Prune failed',
  'verify.succeeded': 'Verification passed',
  'verify.failed': 'Verification failed',
  'health.failed': 'Health check failed',
  'drill.succeeded': 'Restore drill passed',
  'drill.failed': 'Restore drill failed',
  'wal.failed': 'WAL archiving failed',
  'wal.recovered': 'WAL archiving recovered',
};

const OUTCOME_LABELS: Record<NotifyOutcome, string> = {
  start: 'STARTED',
  success: 'OK',
  partial: 'PARTIAL',
  failure: 'FAILED',
};

/** Colours by outcome (RGB as a number, as Discord embeds want): blue, green, orange, red. */
export const OUTCOME_COLORS: Record<NotifyOutcome, number> = {
  start: 0x3b82f6,
  success: 0x2eb67d,
  partial: 0xf2994a,
  failure: 0xe01e5a,
};

// Used when an error carries no hint, so every failure still says what to do next.
const NEXT_STEPS: Partial<Record<string, string>> = {
  CONNECTION_FAILED: 'Check that the server is running and reachable from this host, then run the backup again.',
  AUTH_FAILED: 'Check the user name and password (or key) configured for this component.',
  STORAGE_FAILED: 'Check the storage: free space, permissions or bucket credentials, then run the backup again.',
  CHECKSUM_MISMATCH: 'Treat this set as damaged: verify the other sets and restore from one that passes.',
  LOCKED: 'Another run holds the lock; let it finish (a stale lock expires after its TTL), then run again.',
  TOOL_MISSING: 'Install the missing tool (see the error) on this host or in its container image.',
  TOOL_TOO_OLD: 'Install a client tool at least as new as the server.',
  TIMEOUT: 'The operation timed out; check the server load and network, then run it again.',
  CONFIG_INVALID: 'Fix the configuration named in the error, then run again.',
};
const DEFAULT_NEXT_STEP = 'Check the backup logs on this host, fix the cause and run the operation again.';

/** 'Backup failed', 'Restore succeeded', ... */
export function eventTitle(event: Pick<BackupEvent, 'type'>): string {
  return TITLES[event.type] ?? String(event.type);
}

/** 'OK' | 'PARTIAL' | 'FAILED' | 'STARTED' */
export function outcomeLabel(outcome: NotifyOutcome): string {
  return OUTCOME_LABELS[outcome] ?? String(outcome).toUpperCase();
}

/** The next step for an error: its own hint, else a default for its code. */
export function nextStep(error: ErrorReport): string {
  return error.hint?.trim() || NEXT_STEPS[error.code] || DEFAULT_NEXT_STEP;
}

/** Binary units, one decimal: 0 B, 512 B, 1.5 KiB, 812.4 MiB, 1.2 GiB. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return 'unknown';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 850 ms, 3.2 s, 1m 05s, 2h 03m 04s, 1d 02h 03m. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const totalSeconds = Math.floor(ms / 1000);
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${pad(hours)}h ${pad(minutes)}m`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  return `${minutes}m ${pad(seconds)}s`;
}

/** 'ok · 812.4 MiB · 1m 02s' */
export function componentSummary(component: ComponentReport): string {
  const parts: string[] = [component.status];
  if (component.bytes !== undefined) parts.push(formatBytes(component.bytes));
  if (component.durationMs !== undefined) parts.push(formatDuration(component.durationMs));
  return parts.join(' · ');
}

/** Labelled facts shared by every renderer (set, tier, host, time, duration, size, storages). */
export function eventFacts(event: BackupEvent): { label: string; value: string }[] {
  const facts: { label: string; value: string }[] = [{ label: 'Outcome', value: outcomeLabel(event.outcome) }];
  if (event.setId) facts.push({ label: 'Set', value: event.setId });
  if (event.tier) facts.push({ label: 'Tier', value: String(event.tier) });
  facts.push({ label: 'Host', value: event.host });
  facts.push({ label: 'Time', value: event.time });
  if (event.durationMs !== undefined) facts.push({ label: 'Duration', value: formatDuration(event.durationMs) });
  if (event.bytes !== undefined) facts.push({ label: 'Size', value: formatBytes(event.bytes) });
  if (event.storages?.length) facts.push({ label: 'Storages', value: event.storages.join(', ') });
  return facts;
}

/** '2 of 3 components ok' when the event lists components. */
export function componentTally(event: BackupEvent): string | undefined {
  const components = event.components ?? [];
  if (components.length === 0) return undefined;
  const ok = components.filter((c) => c.status === 'ok').length;
  return `${ok} of ${components.length} component${components.length === 1 ? '' : 's'} ok`;
}

/** Whether the event's error is one of its components' errors (already shown with that component). */
export function repeatsComponentError(event: BackupEvent): boolean {
  const e = event.error;
  return !!e && (event.components ?? []).some((c) => c.error?.code === e.code && c.error.message === e.message);
}

/** `[FAILED] Backup failed: scholaria_backup_20261126_020000 (daily) on db-1` */
export function renderSubject(event: BackupEvent): string {
  const set = event.setId ? `: ${event.setId}` : '';
  const tier = event.tier ? ` (${event.tier})` : '';
  return `[${outcomeLabel(event.outcome)}] ${eventTitle(event)}${set}${tier} on ${event.host}`;
}

function errorLines(error: ErrorReport, indent: string): string[] {
  const where = error.component ? `${error.component}: ` : '';
  const message = error.message.startsWith(where) ? error.message : `${where}${error.message}`;
  return [`${indent}Error [${error.code}]: ${message}`, `${indent}Next step: ${nextStep(error)}`];
}

/** Plain-text report, readable in any mail client or terminal. */
export function renderText(event: BackupEvent): string {
  const lines: string[] = [eventTitle(event)];
  const tally = componentTally(event);
  if (tally) lines.push(tally);
  lines.push('');
  const facts = eventFacts(event);
  const width = Math.max(...facts.map((f) => f.label.length)) + 1;
  for (const fact of facts) lines.push(`${`${fact.label}:`.padEnd(width)} ${fact.value}`);

  const components = event.components ?? [];
  if (components.length > 0) {
    lines.push('', 'Components:');
    const nameWidth = Math.max(...components.map((c) => c.name.length));
    for (const c of components) {
      const status = c.status === 'ok' ? 'ok' : c.status === 'failed' ? 'FAILED' : 'skipped';
      const size = c.bytes !== undefined ? formatBytes(c.bytes) : '';
      const took = c.durationMs !== undefined ? formatDuration(c.durationMs) : '';
      lines.push(`  ${c.name.padEnd(nameWidth)}  ${status.padEnd(7)}  ${size.padEnd(10)}  ${took}`.trimEnd());
      if (c.error) lines.push(...errorLines({ ...c.error, component: undefined }, '      '));
    }
  }
  if (event.error && !repeatsComponentError(event)) lines.push('', ...errorLines(event.error, ''));
  if (event.details?.length) {
    lines.push('', 'Details:');
    for (const d of event.details) lines.push(`  - ${d}`);
  }
  return `${lines.join('\n')}\n`;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

function hex(color: number): string {
  return `#${color.toString(16).padStart(6, '0')}`;
}

function htmlError(error: ErrorReport): string {
  const where = error.component && !error.message.startsWith(`${error.component}:`) ? `${error.component}: ` : '';
  return (
    `<p style="margin:8px 0 4px"><strong>Error</strong> <code>${escapeHtml(error.code)}</code></p>` +
    `<pre style="background:#f6f8fa;border:1px solid #d0d7de;padding:8px;white-space:pre-wrap;word-break:break-word;margin:0">${escapeHtml(
      `${where}${error.message}`,
    )}</pre>` +
    `<p style="margin:4px 0 8px"><strong>Next step:</strong> ${escapeHtml(nextStep(error))}</p>`
  );
}

/** A complete HTML document; every value from the event is escaped. */
export function renderHtml(event: BackupEvent): string {
  const color = hex(OUTCOME_COLORS[event.outcome] ?? 0x666666);
  const title = escapeHtml(eventTitle(event));
  const tally = componentTally(event);
  const facts = eventFacts(event)
    .map(
      (f) =>
        `<tr><th style="text-align:left;padding:2px 12px 2px 0;color:#57606a;font-weight:normal">${escapeHtml(
          f.label,
        )}</th><td style="padding:2px 0">${escapeHtml(f.value)}</td></tr>`,
    )
    .join('');
  const components = event.components ?? [];
  const componentRows = components
    .map((c) => {
      const statusColor = c.status === 'ok' ? hex(OUTCOME_COLORS.success) : c.status === 'failed' ? hex(OUTCOME_COLORS.failure) : '#57606a';
      const row =
        `<tr><td style="padding:4px 12px 4px 0"><strong>${escapeHtml(c.name)}</strong></td>` +
        `<td style="padding:4px 12px 4px 0;color:${statusColor}">${escapeHtml(c.status)}</td>` +
        `<td style="padding:4px 12px 4px 0">${c.bytes !== undefined ? escapeHtml(formatBytes(c.bytes)) : ''}</td>` +
        `<td style="padding:4px 0">${c.durationMs !== undefined ? escapeHtml(formatDuration(c.durationMs)) : ''}</td></tr>`;
      const error = c.error ? `<tr><td colspan="4" style="padding:0 0 8px 16px">${htmlError({ ...c.error, component: undefined })}</td></tr>` : '';
      return row + error;
    })
    .join('');
  const parts = [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(renderSubject(event))}</title></head>`,
    '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#1f2328;margin:0;padding:16px">',
    `<div style="border-left:6px solid ${color};padding:4px 12px;margin-bottom:12px">`,
    `<h2 style="margin:0;color:${color}">${title}</h2>`,
    tally ? `<div style="color:#57606a">${escapeHtml(tally)}</div>` : '',
    '</div>',
    `<table style="border-collapse:collapse;margin-bottom:12px">${facts}</table>`,
    components.length
      ? `<h3 style="margin:12px 0 4px">Components</h3><table style="border-collapse:collapse;margin-bottom:12px">${componentRows}</table>`
      : '',
    event.error && !repeatsComponentError(event) ? htmlError(event.error) : '',
    event.details?.length
      ? `<h3 style="margin:12px 0 4px">Details</h3><ul>${event.details.map((d) => `<li>${escapeHtml(d)}</li>`).join('')}</ul>`
      : '',
    '<p style="color:#8c959f;font-size:12px;margin-top:16px">Sent by @scholaria/backup</p>',
    '</body></html>',
  ];
  return parts.filter(Boolean).join('\n');
}

export const defaultEventTemplates: EventTemplates = Object.freeze({
  subject: renderSubject,
  text: renderText,
  html: renderHtml,
});

/** Fills the templates a notifier was not given with the defaults. */
export function resolveTemplates(overrides: Partial<EventTemplates> = {}): EventTemplates {
  return {
    subject: overrides.subject ?? defaultEventTemplates.subject,
    text: overrides.text ?? defaultEventTemplates.text,
    html: overrides.html ?? defaultEventTemplates.html,
  };
}

const templateFn = (name: string) =>
  z
    .custom<(event: BackupEvent) => string>((v) => typeof v === 'function', { message: `${name} must be a function (event) => string` })
    .optional();

/** zod schema of the `templates` option every notifier accepts. */
export const eventTemplatesSchema = z
  .strictObject({ subject: templateFn('subject'), text: templateFn('text'), html: templateFn('html') })
  .optional();
