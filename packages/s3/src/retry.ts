import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  attempts: number;
  /** First delay; doubles each attempt, with full jitter, capped at `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  isRetryable(error: unknown): boolean;
}

export function backoffDelay(attempt: number, baseDelayMs = 200, maxDelayMs = 5_000): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * Retries `fn` on retryable errors with exponential backoff. The SDK already retries single
 * requests; this covers what it cannot: per-key errors inside a 200 DeleteObjects answer,
 * resuming a broken download, and cleanup after a failed upload.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= options.attempts || !options.isRetryable(error) || options.signal?.aborted) throw error;
      await sleep(backoffDelay(attempt, options.baseDelayMs, options.maxDelayMs), undefined, { signal: options.signal });
    }
  }
}
