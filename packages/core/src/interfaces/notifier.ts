import type { BackupEvent, NotifyOutcome } from './events.js';

/**
 * Sends a short report of an event somewhere people look. Core filters events by `on`,
 * redacts secrets, retries with backoff and applies a timeout; a notifier failure is logged
 * and never fails the run.
 */
export interface Notifier {
  readonly specVersion: 'v1';
  readonly name: string;
  /** Outcomes to send; default ['success', 'partial', 'failure']. */
  readonly on?: readonly NotifyOutcome[];
  notify(event: BackupEvent, options: { signal: AbortSignal }): Promise<void>;
}
