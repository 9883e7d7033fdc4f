import nodemailer, { type Transporter } from 'nodemailer';
import {
  BackupError,
  createRedactor,
  resolveTemplates,
  type BackupEvent,
  type EventTemplates,
  type Notifier,
  type NotifyOutcome,
} from '@scholaria/backup-core';
import { parseEmailNotifierOptions, type EmailNotifierOptions, type ResolvedEmailOptions } from './email-options.js';

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  command?: string;
}

// Failures that sending again later will not fix.
const PERMANENT_CODES = new Set(['EAUTH', 'ENOAUTH', 'EENVELOPE', 'EMESSAGE', 'ETLS', 'EOAUTH2', 'ECONFIG']);

function toBackupError(error: unknown, options: ResolvedEmailOptions, redact: (s: string) => string): BackupError {
  const e = error as SmtpError;
  const where = options.transport ? 'the configured transport' : `${options.host ?? 'smtp'}${options.port ? `:${options.port}` : ''}`;
  const responseCode = typeof e?.responseCode === 'number' ? e.responseCode : undefined;
  const permanent =
    (responseCode !== undefined && responseCode >= 500) || (responseCode === undefined && PERMANENT_CODES.has(e?.code ?? ''));
  const hint =
    e?.code === 'EAUTH' || e?.code === 'ENOAUTH'
      ? 'The SMTP server rejected the login: check auth.user and auth.pass (many providers need an app password).'
      : e?.code === 'EENVELOPE' || (responseCode !== undefined && responseCode >= 550 && responseCode < 560)
        ? 'The SMTP server refused the sender or a recipient: check `from` and `to` and that the server may relay for you.'
        : e?.code === 'ETLS' || /certificate|TLS|SSL/i.test(e?.message ?? '')
          ? 'TLS failed: use secure: true for port 465, STARTTLS (secure: false) for 587, or trust the certificate.'
          : permanent
            ? 'The SMTP server refused the message; see its answer above.'
            : 'Check that the SMTP server is reachable from this host (host, port, firewall); the message is retried.';
  const message = redact(e instanceof Error ? e.message : String(error));
  return new BackupError('NOTIFY_FAILED', `${options.name}: sending via ${where} failed: ${message}`, {
    retryable: !permanent,
    hint,
    component: options.name,
    details: { ...(e?.code ? { smtpCode: e.code } : {}), ...(responseCode !== undefined ? { responseCode } : {}) },
  });
}

/** Rejects with the signal's reason when it aborts; the SMTP client has no abort of its own. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new BackupError('ABORTED', 'email: aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim();
}

export interface EmailNotifier extends Notifier {
  /** Closes pooled connections of the transport (nothing to do for the default one). */
  close(): void;
}

/**
 * Sends each event as an email over SMTP (nodemailer) with a plain-text and an HTML part.
 * Nothing connects until the first notification.
 */
export function createEmailNotifier(options: EmailNotifierOptions): EmailNotifier {
  const resolved = parseEmailNotifierOptions(options);
  const templates: EventTemplates = resolveTemplates(resolved.templates ?? {});
  const redact = createRedactor(resolved.secrets);
  let transport: Transporter | undefined = resolved.transport;

  const getTransport = (): Transporter => {
    transport ??= nodemailer.createTransport({
      host: resolved.host,
      ...(resolved.port ? { port: resolved.port } : {}),
      secure: resolved.secure,
      ...(resolved.requireTLS !== undefined ? { requireTLS: resolved.requireTLS } : {}),
      ...(resolved.ignoreTLS !== undefined ? { ignoreTLS: resolved.ignoreTLS } : {}),
      ...(resolved.auth ? { auth: { user: resolved.auth.user, pass: resolved.auth.pass } } : {}),
      ...(resolved.tls ? { tls: { ...resolved.tls } } : {}),
      connectionTimeout: resolved.timeoutMs,
      greetingTimeout: resolved.timeoutMs,
      socketTimeout: resolved.timeoutMs,
      // nodemailer must not log: its debug output would include the AUTH exchange.
      logger: false,
      debug: false,
    });
    return transport;
  };

  const notifier: EmailNotifier = {
    specVersion: 'v1',
    name: resolved.name,
    ...(resolved.on ? { on: [...resolved.on] as NotifyOutcome[] } : {}),
    async notify(event: BackupEvent, { signal }: { signal: AbortSignal }): Promise<void> {
      signal.throwIfAborted();
      const mail = {
        from: resolved.from,
        to: resolved.to,
        subject: oneLine(templates.subject(event)),
        text: templates.text(event),
        html: templates.html(event),
        priority: event.outcome === 'failure' ? ('high' as const) : ('normal' as const),
        headers: {
          'X-Scholaria-Event': event.type,
          'X-Scholaria-Outcome': event.outcome,
          ...(event.setId ? { 'X-Scholaria-Set-Id': event.setId } : {}),
        },
      };
      const sending = getTransport().sendMail(mail);
      // After an abort the send goes on in the background until its own timeouts; keep its
      // late failure from surfacing as an unhandled rejection.
      sending.catch(() => undefined);
      try {
        await raceAbort(sending, signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason ?? error;
        throw toBackupError(error, resolved, redact);
      }
    },
    close() {
      transport?.close();
    },
  };
  return notifier;
}
