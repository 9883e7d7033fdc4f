import type { BackupSource } from '../interfaces/source.js';
import type { Storage } from '../interfaces/storage.js';
import type { Notifier } from '../interfaces/notifier.js';
import type { Codec } from '../interfaces/codec.js';
import type { Logger } from '../interfaces/logger.js';
import type { ProgressEvent, Tier, BackupEvent } from '../interfaces/events.js';
import type { Manifest } from '../manifest/manifest-schema.js';
import type { RetentionPolicy } from '../retention/types.js';

export interface RetentionConfig {
  /** Policy per tier (restic `forget` semantics, applied to each tier's sets separately). */
  tiers: Record<string, RetentionPolicy>;
  /** Sets without manifest younger than this are left alone by prune (duration, default '1h'). */
  incompleteGracePeriod?: string;
}

export interface NotifyOptions {
  /** Per attempt, default 10 s. */
  timeoutMs?: number;
  /** Attempts after the first, default 3. */
  retries?: number;
  /** First backoff delay, doubled each retry, default 1 s. */
  backoffMs?: number;
}

export interface BackupEngineOptions {
  sources: BackupSource[];
  storage: Storage | Storage[];
  notifiers?: Notifier[];
  notify?: NotifyOptions;
  retention?: RetentionConfig;
  /** Applied in order to every artifact (compression then encryption, typically). */
  codecs?: Codec[];
  /** Extra codecs able to decode older sets (e.g. an age codec holding an old identity). */
  decoders?: Codec[];
  setPrefix?: string;
  /** IANA zone for set ids and timestamps, default 'UTC'. */
  timeZone?: string;
  logger?: Logger;
  /** Components backed up at once (1-64), default one per component, at most the CPU cores (`os.availableParallelism()`). */
  concurrency?: number;
  clock?: () => Date;
  /** Lock heartbeat; a lock not refreshed for `lockTtlMs` is stale. Default 10 min. */
  lockTtlMs?: number;
  /** Extra secret strings to redact from logs, errors and notifications. */
  secrets?: string[];
  /** Who to record in the audit log, default `${user}@${host}`. */
  actor?: string;
  /** Minimum free bytes on each storage with `capacity()` for a healthy report. Default 1 GiB. */
  minFreeBytes?: number;
  /** Max age of the newest complete set per tier for a healthy report; defaults from the tiers. */
  maxAgeMs?: Record<string, number>;
  /** Host name recorded in manifests and events (default os.hostname()). */
  host?: string;
  /**
   * A component whose size or row/key/point count drops by more than this fraction from the
   * previous set of the same tier gets a warning (manifest, output, notification). Default 0.5;
   * false turns the check off.
   */
  anomalyDrop?: number | false;
  /** Max age of the newest drill for a healthy report (twice the drill schedule); unset: not checked. */
  drillMaxAgeMs?: number;
  /** Called for every event also sent to notifiers (useful for metrics). */
  onEvent?: (event: BackupEvent) => void;
}

export interface BackupOptions {
  tier?: Tier;
  components?: string[];
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  tags?: string[];
}

export interface ComponentOutcome {
  name: string;
  status: 'ok' | 'failed';
  bytes: number;
  durationMs: number;
  artifacts: { name: string; path: string; size: number; sha256: string }[];
  error?: Error;
  warnings: string[];
}

export interface StorageOutcome {
  name: string;
  ok: boolean;
  error?: Error;
}

export interface BackupResult {
  setId: string;
  tier: Tier;
  status: 'complete' | 'partial' | 'failed';
  components: ComponentOutcome[];
  storages: StorageOutcome[];
  bytes: number;
  durationMs: number;
  manifest?: Manifest;
  /** Result of the prune that ran after the backup, if retention is configured and pruneAfter was set. */
  error?: Error;
}

export interface RestoreOptions {
  ref: 'latest' | (string & {});
  components?: string[];
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Per component restore-time options, e.g. { postgres: { mode: 'new-database' } }. */
  componentOptions?: Record<string, Record<string, unknown>>;
}

export interface RestoreComponentOutcome {
  name: string;
  status: 'ok' | 'failed' | 'planned';
  plan: string[];
  warnings: string[];
  durationMs: number;
  error?: Error;
}

export interface RestoreResult {
  setId: string;
  dryRun: boolean;
  status: 'ok' | 'failed';
  verified: { path: string; ok: boolean; error?: string; code?: string; hint?: string }[];
  components: RestoreComponentOutcome[];
  durationMs: number;
}

export interface BackupSetSummary {
  id: string;
  status: 'complete' | 'partial' | 'incomplete';
  tier?: Tier;
  time: Date;
  startedAt?: string;
  finishedAt?: string;
  bytes: number;
  components: { name: string; status: 'ok' | 'failed' }[];
  storage: string;
  manifest?: Manifest;
  /** Why a set is unreadable (invalid manifest). */
  problem?: string;
}

export interface VerifyFileResult {
  path: string;
  ok: boolean;
  problem?: string;
}

export interface VerifyResult {
  ok: boolean;
  sets: { id: string; storage: string; ok: boolean; files: VerifyFileResult[]; problems: string[] }[];
}

export interface PruneDecision {
  id: string;
  storage: string;
  tier?: string;
  status: 'complete' | 'partial' | 'incomplete';
  reasons: string[];
}

export interface PruneResult {
  dryRun: boolean;
  keep: PruneDecision[];
  remove: PruneDecision[];
  /** Objects that could not be deleted (e.g. under S3 object lock) with the reason. */
  failed: { key: string; error: string }[];
  /**
   * Temp files left by killed writers, older than the incomplete grace period, removed (or on
   * a dry run: that would be removed) from storages that can find them (`removeStaleTempFiles`).
   */
  staleTempFiles: { storage: string; key: string }[];
  /** Sets dated in the future (a wrong clock or a planted manifest), and what was done about them. */
  warnings: string[];
}

export type HealthStatus = 'ok' | 'warn' | 'fail';

export interface HealthCheckItem {
  name: string;
  status: HealthStatus;
  message: string;
  details?: Record<string, unknown>;
}

export interface HealthReport {
  status: HealthStatus;
  checks: HealthCheckItem[];
}

export interface VerifyOptions {
  ref?: string;
  all?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export interface BackupEngine {
  backup(options?: BackupOptions): Promise<BackupResult>;
  restore(options: RestoreOptions): Promise<RestoreResult>;
  list(options?: { includeIncomplete?: boolean }): Promise<BackupSetSummary[]>;
  verify(options: VerifyOptions): Promise<VerifyResult>;
  /**
   * Deletes what retention no longer keeps. `policy`: an ad-hoc policy applied to every set as
   * one group instead of the configured tier policies (restic `forget --keep-daily 7 ...`).
   */
  prune(options?: { dryRun?: boolean; policy?: import('../retention/types.js').RetentionPolicy }): Promise<PruneResult>;
  /**
   * Storage, recent set per tier, sources. `pendingTiers`: tiers whose first scheduled run has
   * not come yet (see the scheduler's `pending`): no set of theirs is fine, not a warning.
   */
  health(options?: { signal?: AbortSignal; pendingTiers?: readonly string[] }): Promise<HealthReport>;
  /** Restores a set into throwaway targets, checks it and removes the targets (docs/drills.md). */
  drill(options: import('../drill/drill-types.js').DrillOptions): Promise<import('../drill/drill-types.js').DrillResult>;
  /**
   * Reads the manifest of one set ('latest' allowed; with `components`, 'latest' is the newest
   * set in which each of them was backed up successfully).
   */
  readManifest(ref: string, options?: { components?: readonly string[] }): Promise<Manifest>;
  /** Verifies the audit log hash chain on the first storage. */
  verifyAudit(): Promise<import('../audit/audit-log.js').AuditVerifyResult>;
  readonly options: Readonly<BackupEngineOptions>;
  close(): Promise<void>;
}
