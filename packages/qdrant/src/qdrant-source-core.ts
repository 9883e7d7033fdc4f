/**
 * What every operation of the Qdrant source shares: its resolved options, its component name,
 * the lazily built API client and the restore target naming.
 */
import type { QdrantApi } from './qdrant-api.js';
import type { ResolvedQdrantOptions } from './qdrant-options.js';

export interface SourceCore {
  opts: ResolvedQdrantOptions;
  component: string;
  getApi(): QdrantApi;
  /**
   * Target name of a recorded collection: the call's `restoreAs` entry, else the call's
   * `collectionSuffix`, else the factory's `restoreAs`, else the factory's `collectionSuffix`.
   */
  restoreTarget(collection: string, override?: Record<string, string>, suffix?: string): string;
}
