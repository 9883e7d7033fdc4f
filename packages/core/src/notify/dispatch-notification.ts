import { z } from 'zod';
import type { BackupEvent, NotifyOutcome } from '../interfaces/events.js';
import type { Notifier } from '../interfaces/notifier.js';
import type { Logger } from '../interfaces/logger.js';
import { silentLogger } from '../interfaces/logger.js';
import { BackupError, ConfigError } from '../errors/backup-error.js';
import { redactDeep, redactSecrets, redactUrl, type Redactor } from './redact.js';

/** Outcomes a notifier gets when it does not set `on`. */
export const DEFAULT_NOTIFY_ON: readonly NotifyOutcome[] = Object.freeze(['success', 'partial', 'failure'] as const);

export const NOTIFY_OUTCOMES: readonly NotifyOutcome[] = Object.freeze(['start', 'success', 'partial', 'failure'] as const);

/** zod schema of the `on` option every notifier accepts: a non-empty list of outcomes. */
export const notifyOnSchema = z
  .array(z.enum(['start', 'success', 'partial', 'failure']))
  .min(1, 'must list at least one of start, success, partial, failure (remove the notifier to silence it)')
  .optional();

/** zod schema of an http(s) URL option; the message never repeats the value (it holds a token). */
export function httpUrlSchema(example: string) {
  return z.string().refine(
    (value) => {
      try {
        const url = new URL(value);
        return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: `must be an http(s) URL such as ${example}` },
  );
}

/**
 * Parses a notifier's options with its zod schema; problems become one ConfigError naming
 * every field. zod's messages never include the input value, so secrets stay out of it.
 */
export function parseNotifierOptions<S extends z.ZodType>(factory: string, schema: S, options: unknown, hint: string): z.output<S> {
  const parsed = schema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => {
    const field = issue.path.reduce<string>(
      (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
      '',
    );
    return `${field || 'options'}: ${issue.message}`;
  });
  throw new ConfigError(`${factory}: invalid options`, issues, { hint });
}

export interface DispatchNotificationOptions {
  logger?: Logger;
  /** Limit of one attempt, default 10 000 ms. The attempt's signal aborts when it is reached. */
  timeoutMs?: number;
  /** Attempts after the first, default 3. Only retryable errors are retried. */
  retries?: number;
  /** Wait before the first retry, doubled for each further retry; default 1000 ms. */
  backoffMs?: number;
  /** Applied to every string of the event and to logged errors; the built-in patterns always apply too. */
  redact?: (text: string) => string;
  /** Stops waiting and retrying (e.g. the process is shutting down). */
  signal?: AbortSignal;
}

export interface DispatchResult {
  notifier: string;
  ok: boolean;
  attempts: number;
  /** Redacted message of the last failure. */
  error?: string;
  /** BackupError code of the last failure, when it had one. */
  code?: string;
}

const DEFAULTS = { timeoutMs: 10_000, retries: 3, backoffMs: 1000 };

function numberOption(value: unknown, fallback: number, min: number, max: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(Math.max(value, min), max) : fallback;
}

/** Whether `notifier` wants events with this outcome (its `on`, else DEFAULT_NOTIFY_ON). */
export function notifierWants(notifier: Pick<Notifier, 'on'>, outcome: NotifyOutcome): boolean {
  const on = Array.isArray(notifier.on) ? notifier.on : DEFAULT_NOTIFY_ON;
  return on.includes(outcome);
}

/**
 * The error a notifier throws for a non-2xx HTTP answer: code NOTIFY_FAILED, retryable for
 * 5xx, 408 and 429, and the URL shown without its token or credentials.
 */
export function notifyHttpError(notifier: string, url: string, status: number, body?: string): BackupError {
  const retryable = status >= 500 || status === 429 || status === 408;
  const snippet = body ? `: ${redactSecrets(body.replace(/\s+/g, ' ').trim().slice(0, 200))}` : '';
  const hint =
    status === 401 || status === 403 || status === 404 || status === 410
      ? `The ${notifier} endpoint rejected the request; check that the webhook URL is current (it may have been revoked or the channel removed).`
      : status === 400 || status === 422
        ? `The ${notifier} endpoint rejected the message format; if you use custom templates, check what they return.`
        : retryable
          ? `The ${notifier} endpoint is unavailable or rate-limiting; the message is retried with backoff.`
          : `Check the ${notifier} endpoint configuration.`;
  return new BackupError('NOTIFY_FAILED', `${notifier}: ${redactUrl(url)} answered HTTP ${status}${snippet}`, {
    retryable,
    hint,
    component: notifier,
    details: { status },
  });
}

/** Wraps a network failure (DNS, refused, reset) of a notifier's request; always retryable. */
export function notifyNetworkError(notifier: string, url: string, error: unknown): BackupError {
  const cause = (error as { cause?: { message?: string; code?: string } })?.cause;
  const reason = cause?.message ?? cause?.code ?? (error instanceof Error ? error.message : String(error));
  return new BackupError('NOTIFY_FAILED', `${notifier}: request to ${redactUrl(url)} failed: ${redactSecrets(String(reason))}`, {
    retryable: true,
    hint: `Check that this host can reach the ${notifier} endpoint (DNS, firewall, proxy).`,
    component: notifier,
  });
}

/**
 * `fetch` for notifiers: a non-2xx answer throws `notifyHttpError`, a network failure
 * `notifyNetworkError`, an abort the signal's reason. Neither error shows the URL's token.
 */
export async function notifyFetch(
  notifier: string,
  url: string,
  init: RequestInit & { signal: AbortSignal },
): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (init.signal.aborted) throw init.signal.reason ?? error;
    throw notifyNetworkError(notifier, url, error);
  }
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    throw notifyHttpError(notifier, url, response.status, body);
  }
  // Drain the body so the connection can be reused; a receiver's answer is not needed.
  await response.arrayBuffer().catch(() => undefined);
  return response;
}

function isRetryable(error: unknown): boolean {
  if (BackupError.isInstance(error)) return error.retryable;
  // Unknown errors (network stacks, client libraries) are assumed transient.
  return true;
}

function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs one attempt. It settles at the timeout even if the notifier ignores its signal, so a
 * misbehaving notifier can never hold the run; whatever it does later is dropped.
 */
function attempt(notifier: Notifier, event: BackupEvent, timeoutMs: number, outer?: AbortSignal): Promise<void> {
  const controller = new AbortController();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort(
        new BackupError('TIMEOUT', `${notifier.name}: no answer within ${timeoutMs} ms`, {
          retryable: true,
          component: notifier.name,
          hint: `The ${notifier.name} endpoint is slow or unreachable; check it, or raise notify.timeoutMs.`,
        }),
      );
    }, timeoutMs);
    const onOuterAbort = () => controller.abort(new BackupError('ABORTED', `${notifier.name}: notification aborted`, { retryable: false }));
    const done = () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    };
    controller.signal.addEventListener(
      'abort',
      () => {
        done();
        reject(controller.signal.reason);
      },
      { once: true },
    );
    if (outer?.aborted) onOuterAbort();
    else outer?.addEventListener('abort', onOuterAbort, { once: true });
    Promise.resolve()
      .then(() => notifier.notify(event, { signal: controller.signal }))
      .then(
        () => {
          done();
          resolve();
        },
        (error: unknown) => {
          done();
          reject(error);
        },
      );
  });
}

/**
 * Sends `event` to every notifier whose `on` includes its outcome, concurrently. The event
 * is redacted deeply before any notifier sees it. Each attempt gets an AbortSignal and a
 * timeout; retryable failures are retried with exponential backoff. Never throws: failures
 * are logged as warnings (redacted) and reported in the result, one entry per notifier the
 * event was sent to. Worst case it takes about (retries + 1) * timeoutMs plus the backoffs.
 */
export async function dispatchNotification(
  notifiers: readonly Notifier[],
  event: BackupEvent,
  options: DispatchNotificationOptions = {},
): Promise<DispatchResult[]> {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = numberOption(options.timeoutMs, DEFAULTS.timeoutMs, 1, 10 * 60_000);
  const retries = Math.floor(numberOption(options.retries, DEFAULTS.retries, 0, 10));
  const backoffMs = numberOption(options.backoffMs, DEFAULTS.backoffMs, 0, 10 * 60_000);
  const custom = options.redact;
  const redact: Redactor = (text) => {
    let out = text;
    if (custom) {
      try {
        out = custom(out);
      } catch {
        // a broken custom redactor must not leak: fall back to the built-in patterns only
      }
    }
    return redactSecrets(out);
  };

  const warn = (message: string, fields: Record<string, unknown>) => {
    try {
      logger.warn(message, fields);
    } catch {
      // a failing logger must not fail the run either
    }
  };
  const debug = (message: string, fields: Record<string, unknown>) => {
    try {
      logger.debug(message, fields);
    } catch {
      // ignore
    }
  };

  const deliver = async (notifier: Notifier, index: number): Promise<DispatchResult> => {
    const name = typeof notifier?.name === 'string' && notifier.name ? notifier.name : `notifier[${index}]`;
    if (notifier?.specVersion !== 'v1' || typeof notifier.notify !== 'function') {
      const error = `${name} has specVersion ${JSON.stringify(notifier?.specVersion)}; this core supports 'v1' notifiers`;
      warn(`notification via ${name} skipped: ${error}`, { notifier: name });
      return { notifier: name, ok: false, attempts: 0, error, code: 'UNSUPPORTED_VERSION' };
    }
    // Each notifier gets its own redacted copy, so one that mutates the event cannot affect another.
    const safeEvent = redactDeep(event, redact);
    let attempts = 0;
    let lastError: unknown;
    for (let i = 0; i <= retries; i += 1) {
      if (options.signal?.aborted) break;
      attempts += 1;
      try {
        await attempt(notifier, safeEvent, timeoutMs, options.signal);
        if (attempts > 1) debug(`notification via ${name} delivered on attempt ${attempts}`, { notifier: name, attempts });
        return { notifier: name, ok: true, attempts };
      } catch (error) {
        lastError = error;
        const willRetry = i < retries && isRetryable(error) && !options.signal?.aborted;
        if (!willRetry) break;
        const delay = backoffMs * 2 ** i;
        debug(`notification via ${name} failed (attempt ${attempts}), retrying in ${delay} ms: ${redact(messageOf(error))}`, {
          notifier: name,
          attempts,
        });
        if (!(await sleep(delay, options.signal))) break;
      }
    }
    const message = redact(lastError === undefined ? 'aborted before the first attempt' : messageOf(lastError));
    const code = BackupError.isInstance(lastError) ? lastError.code : undefined;
    warn(`notification via ${name} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${message}`, {
      notifier: name,
      attempts,
      ...(code ? { code } : {}),
      event: event.type,
    });
    return { notifier: name, ok: false, attempts, error: message, ...(code ? { code } : {}) };
  };

  const selected = (Array.isArray(notifiers) ? notifiers : [])
    .map((notifier, index) => ({ notifier, index }))
    .filter(({ notifier }) => {
      try {
        return notifierWants(notifier, event.outcome);
      } catch {
        return false;
      }
    });
  return await Promise.all(
    selected.map(({ notifier, index }) =>
      deliver(notifier, index).catch((error: unknown) => ({
        notifier: String(notifier?.name ?? `notifier[${index}]`),
        ok: false,
        attempts: 0,
        error: redact(messageOf(error)),
      })),
    ),
  );
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
