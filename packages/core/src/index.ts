/**
 * The public API of @scholaria/backup-core, by name: what is not listed here is internal.
 */
export {
  BackupError,
  type BackupErrorCode,
  type BackupErrorOptions,
  ChecksumError,
  ConfigError,
  isAbortError,
  LockError,
  ManifestError,
  NotFoundError,
  wrapError,
} from './errors/backup-error.js';
export {
  type Logger,
  silentLogger,
} from './interfaces/logger.js';
export {
  type Codec,
  type CodecKind,
  type CodecRecord,
  type ExternalEncoder,
  type ExternalDecoder,
} from './interfaces/codec.js';
export {
  type DeleteManyCapability,
  type LocalFilesCapability,
  type LocalFileWriter,
  type Storage,
  type StorageCapabilities,
  type StorageCapacity,
  type StorageEntry,
  type StoragePutOptions,
} from './interfaces/storage.js';
export {
  type Notifier,
} from './interfaces/notifier.js';
export {
  type BackupEvent,
  type BackupEventType,
  type ComponentReport,
  type ErrorReport,
  type NotifyOutcome,
  type ProgressEvent,
  type ProgressPhase,
  type Tier,
} from './interfaces/events.js';
export {
  type ArtifactOptions,
  type BackupSource,
  type SourceBackupContext,
  type SourceBackupResult,
  type SourceCheckResult,
  type SourceRestoreContext,
  type SourceRestoreResult,
  type SourceVerifyContext,
  type SourceVerifyResult,
} from './interfaces/source.js';
export {
  type ArtifactRecord,
  artifactRecordSchema,
  type CodecRecordJson,
  codecRecordSchema,
  type ComponentManifest,
  componentManifestSchema,
  errorRecordSchema,
  type Manifest,
  MANIFEST_FILE,
  MANIFEST_FORMAT_VERSION,
  manifestSchema,
  safeRelativePath,
  SUMS_FILE,
} from './manifest/manifest-schema.js';
export {
  parseManifest,
  serializeManifest,
} from './manifest/parse-manifest.js';
export {
  formatSha256Sums,
  parseSha256Sums,
  type Sha256SumEntry,
} from './sha256sums/sha256sums.js';
export {
  type PlanRetentionOptions,
  RETENTION_COUNT_FIELDS,
  RETENTION_WITHIN_FIELDS,
  type RetentionCandidate,
  type RetentionCounters,
  type RetentionCountField,
  type RetentionKeep,
  type RetentionPlan,
  type RetentionPolicy,
  type RetentionWithinField,
} from './retention/types.js';
export {
  formatResticDuration,
  isZeroResticDuration,
  parseDurationMs,
  parseResticDuration,
  type ResticDuration,
  resticDurationProblem,
} from './retention/duration.js';
export {
  compareRetentionTime,
  describeRetentionPolicy,
  parseRetentionTime,
  planRetention,
  type RetentionInstant,
  type ValidatedRetentionPolicy,
  validateRetentionPolicy,
} from './retention/plan-retention.js';
export {
  DEFAULT_RETENTION,
  planTierRetention,
  type PlanTierRetentionOptions,
  retentionFromDays,
  type TierRetentionDecision,
  type TierRetentionPlan,
  type TierRetentionSet,
  UNTIERED,
} from './retention/tier-retention.js';
export {
  retainUntilForTier,
} from './retention/retain-until.js';
export {
  AUDIT_DIR,
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  type AuditLog,
  type AuditLogOptions,
  type AuditRecord,
  type AuditVerifyResult,
  canonicalJson,
  createAuditLog,
  hashAuditRecord,
  verifyAuditLines,
} from './audit/audit-log.js';
export {
  type AdapterContext,
  type LeaderElectorSettings,
  type AdapterDescriptor,
  type AdapterInstances,
  type AdapterKind,
  type AnyAdapterDescriptor,
  type AnyEnvGroup,
  defineAdapter,
  defineEnvGroup,
  type EnvGroup,
  type EnvScope,
  type EnvValues,
  envVariable,
  type EnvVariable,
  type EnvVariables,
  isAdapterDescriptor,
} from './config/env-descriptor.js';
export {
  commaList,
  envBoolean,
  envByteSize,
  envDirectory,
  envEnum,
  envEnumList,
  envInteger,
  envIssue,
  envPath,
  envPort,
  envUrl,
  hideUrlPassword,
  parseByteSize,
  urlPasswords,
} from './config/env-values.js';
export {
  engineEnvGroup,
  type EngineEnvSettings,
} from './config/engine-env.js';
export {
  createAdaptersFromEnv,
  type CreatedAdapters,
  envGroupsOf,
  type EnvIssue,
  type LoadedAdapter,
  type LoadedEnv,
  loadEnv,
  type LoadEnvOptions,
} from './config/load-env.js';
export {
  ENV_TABLE_END,
  ENV_TABLE_START,
  envTableMarkdown,
  envTableOf,
  replaceEnvTable,
} from './config/env-docs.js';
export {
  ENGINE_DEFAULTS,
  ENGINE_TIERS,
  defaultConcurrency,
  type EngineTier,
} from './engine/defaults.js';
export {
  defineConfig,
  type ScholariaBackupConfig,
} from './config/define-config.js';
export {
  createGzipCodec,
  type GzipCodecOptions,
  gzipCodecOptionsSchema,
} from './codecs/gzip-codec.js';
export {
  createZstdCodec,
  zstdAvailable,
  type ZstdCodecOptions,
  zstdCodecOptionsSchema,
  zstdInputBytes,
} from './codecs/zstd-codec.js';
export { ChildProcessDuplex, type ChildProcessDuplexOptions } from './codecs/child-process-duplex.js';
export {
  type RunningExternalEncoder,
  startExternalEncoder,
  type StartExternalEncoderOptions,
} from './codecs/external-encoder-process.js';
export {
  createRedactor,
  redactDeep,
  REDACTED,
  type Redactor,
  redactSecrets,
  redactUrl,
} from './notify/redact.js';
export {
  componentSummary,
  componentTally,
  defaultEventTemplates,
  escapeHtml,
  eventFacts,
  type EventTemplates,
  eventTemplatesSchema,
  eventTitle,
  formatBytes,
  formatDuration,
  nextStep,
  OUTCOME_COLORS,
  outcomeLabel,
  renderHtml,
  renderSubject,
  renderText,
  repeatsComponentError,
  resolveTemplates,
} from './notify/render-event.js';
export {
  DEFAULT_NOTIFY_ON,
  dispatchNotification,
  type DispatchNotificationOptions,
  type DispatchResult,
  httpUrlSchema,
  notifierWants,
  NOTIFY_OUTCOMES,
  notifyFetch,
  notifyHttpError,
  notifyNetworkError,
  notifyOnSchema,
  parseNotifierOptions,
} from './notify/dispatch-notification.js';
export {
  createScheduler,
  cronProblem,
  DEFAULT_SCHEDULES,
  type Scheduler,
  type SchedulerOptions,
  type SchedulerRun,
  type SchedulerStatus,
  type TierStatus,
  validateCron,
  DRILL_JOB,
  DEFAULT_DRILL_SCHEDULE,
  type SchedulerDrillOptions,
  type DrillJobStatus,
} from './scheduler/create-scheduler.js';
export { describeHolder, leaderIdentity, type Lease, type LeaderElector, type LeaderIdentity, type LeaseHolder } from './scheduler/leader-elector.js';
export { createLeadership, type Leadership, type LeadershipOptions, type LeadershipStatus } from './scheduler/leadership.js';
export { DEFAULT_LEADER_TTL_MS, leaderEnvGroup, type LeaderElectionMode, type LeaderEnvSettings } from './scheduler/leader-env.js';
export {
  type CrossStoreJoin,
  type DrillCheck,
  type DrillCheckStatus,
  type DrillComponentResult,
  type DrillOptions,
  type DrillResult,
  type DrillSweepContext,
  type DrillTarget,
  type DrillTargetContext,
  type JoinSide,
} from './drill/drill-types.js';
export { DRILL_ID_PATTERN, DRILL_SUFFIX_PATTERN, drillIdOf, drillName, drillTimeOf, newDrillId } from './drill/drill-names.js';
export { DRILL_DIR, drillRecordKey, readDrillRecords, readLatestDrills, writeDrillRecord } from './drill/drill-record.js';
export { joinCheck, joinIds, type JoinFigures } from './drill/cross-store-join.js';
export { drillHealthItem } from './drill/drill-health.js';
export { drillEnvGroup, parseAnomalyDrop, parseJoinSpec, type DrillEnvSettings } from './drill/drill-env.js';
export { DEFAULT_ANOMALY_DROP, componentCounts, detectSizeAnomalies, type SizeAnomaly } from './anomaly/size-anomaly.js';
export {
  type BackupEngine,
  type BackupEngineOptions,
  type BackupOptions,
  type BackupResult,
  type BackupSetSummary,
  type ComponentOutcome,
  createBackupEngine,
  DEFAULT_MAX_AGE_MS,
  type HealthCheckItem,
  type HealthReport,
  type HealthStatus,
  type NotifyOptions,
  type PruneDecision,
  type PruneResult,
  type RestoreComponentOutcome,
  type RestoreOptions,
  type RestoreResult,
  type RetentionConfig,
  SET_ID_PATTERN,
  STATE_DIR,
  type StorageOutcome,
  type VerifyFileResult,
  type VerifyOptions,
  type VerifyResult,
  worstStatus,
} from './engine/index.js';
export {
  type AcquireLockOptions,
  acquireStorageLock,
  type HeldLock,
  listLocks,
  LOCK_PREFIX,
  type LockInfo,
  describeLock,
  lockIsStale,
  processIdentity,
  type ProcessIdentity,
} from './lock/storage-lock.js';
export {
  HashStream,
  VerifyStream,
} from './pipeline/hash-stream.js';
export { openArtifactSink, manualRestoreCommand, codecsForArtifact, codecsToApply } from './pipeline/artifact-sink.js';
export { openArtifact } from './pipeline/open-artifact.js';
export type { VerifiedLocalFile } from './pipeline/local-file.js';
export { startFileDecoder, type LocalDecodedFile, type RunningFileDecoder } from './pipeline/local-decoder.js';
export {
  assertTimeZone,
  compactStamp,
  isoWithOffset,
  timeFromSetId,
  zonedParts,
  type ZonedParts,
} from './util/time-zone.js';
export {
  LIBRARY_NAME,
  LIBRARY_VERSION,
} from './util/version.js';
export { sleep } from './util/abort.js';
export {
  invalidStorageKey,
  type SegmentRule,
  splitStorageKey,
  splitStoragePrefix,
} from './util/storage-keys.js';
export { openProducerArtifact, prepareProducerArtifact, type ProducerArtifact } from './pipeline/producer-artifact.js';
export type { FileArtifact, HeadConsumer } from './pipeline/file-artifact.js';
export { childProcessEnv } from './util/child-env.js';
