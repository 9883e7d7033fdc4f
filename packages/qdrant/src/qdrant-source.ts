import type { BackupSource } from '@scholaria/backup-core';
import { parseQdrantOptions, type QdrantSourceOptions, type ResolvedQdrantOptions } from './qdrant-options.js';
import { QdrantApi } from './qdrant-api.js';
import { backupQdrant } from './qdrant-backup.js';
import { restoreQdrant } from './qdrant-restore.js';
import { checkQdrant, verifyQdrant } from './qdrant-check.js';
import type { SourceCore } from './qdrant-source-core.js';

export type { RecordedCollection } from './qdrant-recorded.js';

/**
 * The Qdrant backup source. Its operations live in modules named by what they do:
 * qdrant-backup.ts (single-node capture), qdrant-cluster-backup.ts (shard capture),
 * qdrant-restore.ts (restore), qdrant-cluster-restore.ts (shard restore), qdrant-check.ts
 * (check and verify), qdrant-recorded.ts (what the manifest records).
 */
export function createQdrantSource(options: QdrantSourceOptions): BackupSource {
  const opts: ResolvedQdrantOptions = parseQdrantOptions(options);
  const component = opts.name;
  let api: QdrantApi | undefined;
  const core: SourceCore = {
    opts,
    component,
    // Lazily: constructing the source (and an engine holding it) never touches the network.
    getApi: () => (api ??= new QdrantApi(opts, component)),
    restoreTarget(collection, override, suffix) {
      const fromCall = override?.[collection];
      if (fromCall) return fromCall;
      if (suffix) return `${collection}${suffix}`;
      const factory = opts.restoreAs;
      const fromFactory = typeof factory === 'function' ? factory(collection) : factory?.[collection];
      if (fromFactory) return fromFactory;
      return opts.collectionSuffix ? `${collection}${opts.collectionSuffix}` : collection;
    },
  };
  return {
    specVersion: 'v1',
    name: component,
    backup: (ctx) => backupQdrant(core, ctx),
    restore: (ctx) => restoreQdrant(core, ctx),
    check: (checkOptions) => checkQdrant(core, checkOptions),
    verify: (ctx) => verifyQdrant(core, ctx),
  };
}
