export type Tier = 'daily' | 'weekly' | 'monthly' | 'manual' | (string & {});

export type BackupEventType =
  | 'backup.started'
  | 'backup.succeeded'
  | 'backup.partial'
  | 'backup.failed'
  | 'restore.started'
  | 'restore.succeeded'
  | 'restore.failed'
  | 'prune.succeeded'
  | 'prune.failed'
  | 'verify.succeeded'
  | 'verify.failed'
  | 'health.failed'
  | 'drill.succeeded'
  | 'drill.failed'
  /** wal-push/wal-fetch failed (PostgreSQL keeps the WAL file and retries; docs/point-in-time-recovery.md). */
  | 'wal.failed'
  /** wal-push archived again after a reported failure. */
  | 'wal.recovered';

export type NotifyOutcome = 'start' | 'success' | 'partial' | 'failure';

export interface ComponentReport {
  name: string;
  status: 'ok' | 'failed' | 'skipped';
  bytes?: number;
  durationMs?: number;
  error?: ErrorReport;
}

export interface ErrorReport {
  code: string;
  message: string;
  hint?: string;
  component?: string;
}

/** What notifiers receive. Everything in it has been passed through secret redaction. */
export interface BackupEvent {
  type: BackupEventType;
  outcome: NotifyOutcome;
  time: string;
  host: string;
  setId?: string;
  tier?: Tier;
  durationMs?: number;
  bytes?: number;
  components?: ComponentReport[];
  error?: ErrorReport;
  /** Free-form lines, e.g. prune decisions or health problems. */
  details?: string[];
  storages?: string[];
}

export type ProgressPhase = 'backup' | 'upload' | 'verify' | 'restore' | 'download';

export interface ProgressEvent {
  phase: ProgressPhase;
  component: string;
  artifact?: string;
  /** Bytes processed so far for this artifact (stored bytes on backup, read bytes on restore). */
  bytes: number;
  totalBytes?: number;
  done?: boolean;
}
