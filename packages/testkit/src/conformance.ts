/**
 * The public contract of @scholaria/backup-testkit: the suites a third-party adapter runs to
 * show it behaves like the shipped ones. Everything else in the package (test servers, the
 * Qdrant simulator, helpers) is this repository's private test infrastructure.
 */
export { storageConformance, type StorageConformanceOptions } from './storage-conformance.js';
export { sourceConformance, type SourceConformanceOptions, type SourceFixture } from './source-conformance.js';
export { notifierConformance, sampleBackupEvent, type NotifierConformanceOptions, type NotifierHarness } from './notifier-conformance.js';
