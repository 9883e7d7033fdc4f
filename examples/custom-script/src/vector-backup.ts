import {
  createBackupEngine,
  createScheduler,
  type BackupEvent,
  type Notifier,
  type RestoreResult,
} from '@scholaria/backup-core';
import { createQdrantSource } from '@scholaria/backup-qdrant';
import { createS3Storage, type S3StorageOptions } from '@scholaria/backup-s3';

export interface VectorBackupOptions {
  qdrant: { url: string; apiKey?: string };
  s3: S3StorageOptions;
  /** Where the custom notifier sends its lines (a chat bot, a queue...); default console.log. */
  report?: (line: string) => void;
  /** For tests: a fake clock drives the schedule and the set ids. */
  clock?: () => Date;
}

/** A custom notifier is any object with specVersion 'v1', a name and notify(). */
export function lineNotifier(report: (line: string) => void): Notifier {
  return {
    specVersion: 'v1',
    name: 'ops-line',
    on: ['success', 'partial', 'failure'],
    async notify(event: BackupEvent) {
      const parts = (event.components ?? []).map((c) => `${c.name}=${c.status}`).join(' ');
      report(`[${event.outcome}] ${event.type} ${event.setId ?? ''} ${parts}${event.error ? ` error=${event.error.message}` : ''}`.trim());
    },
  };
}

/** Qdrant only, to S3, every hour at :00 (Seoul time), keeping the last 48 hourly sets. */
export function createVectorBackup(options: VectorBackupOptions) {
  const report = options.report ?? ((line: string) => console.log(line));
  const engine = createBackupEngine({
    sources: [createQdrantSource(options.qdrant)],
    storage: createS3Storage(options.s3),
    notifiers: [lineNotifier(report)],
    retention: { tiers: { hourly: { last: 48 } } },
    setPrefix: 'scholaria_vectors',
    timeZone: 'Asia/Seoul',
    secrets: options.qdrant.apiKey ? [options.qdrant.apiKey] : [],
    // Every event, unfiltered, e.g. for metrics; notifiers only get the outcomes in their `on`.
    onEvent: (event) => report(`event ${event.type}`),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const scheduler = createScheduler(engine, {
    tiers: { hourly: '0 * * * *' },
    timeZone: 'Asia/Seoul',
    ...(options.clock ? { clock: options.clock } : {}),
  });

  /** Restores one collection of the newest set, under its own name or as a copy (`as`). */
  async function restoreCollection(collection: string, as?: string): Promise<RestoreResult> {
    return await engine.restore({
      ref: 'latest',
      components: ['qdrant'],
      componentOptions: { qdrant: { collections: [collection], ...(as ? { restoreAs: { [collection]: as } } : {}) } },
    });
  }

  return { engine, scheduler, restoreCollection };
}
