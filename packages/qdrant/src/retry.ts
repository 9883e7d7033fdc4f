import { BackupError, type Logger } from '@scholaria/backup-core';

export interface RetryOptions {
  retries: number;
  delayMs: number;
  signal?: AbortSignal;
  logger?: Logger;
  /** Turns a thrown value into a BackupError; its `retryable` decides whether to try again. */
  translate: (error: unknown) => BackupError;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortedError(signal: AbortSignal, what: string): BackupError {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new BackupError('ABORTED', `${what} was aborted${reason}`, { retryable: true });
}

/** Runs `fn`, retrying transient failures with exponential backoff (delay, 2x delay, 4x delay...). */
export async function withRetry<T>(what: string, fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw abortedError(options.signal, what);
    try {
      return await fn(attempt);
    } catch (raw) {
      if (options.signal?.aborted) throw abortedError(options.signal, what);
      const error = options.translate(raw);
      if (!error.retryable || attempt >= options.retries) {
        if (attempt > 0 && error.retryable) {
          throw new BackupError(error.code, `${error.message} (gave up after ${attempt + 1} attempts)`, {
            cause: error.cause ?? error,
            component: error.component,
            hint: error.hint,
            retryable: true,
            details: error.details,
          });
        }
        throw error;
      }
      const delay = options.delayMs * 2 ** attempt;
      options.logger?.warn(`${what} failed, retrying in ${delay} ms (attempt ${attempt + 2} of ${options.retries + 1})`, {
        code: error.code,
        error: error.message,
      });
      try {
        await abortableSleep(delay, options.signal);
      } catch {
        throw abortedError(options.signal as AbortSignal, what);
      }
    }
  }
}
