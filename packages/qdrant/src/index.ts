export { createQdrantSource, type RecordedCollection } from './qdrant-source.js';
export {
  qdrantOptionsSchema,
  restoreOptionsSchema,
  type QdrantSourceOptions,
  type QdrantRestoreOptions,
  type RestoreAsFunction,
} from './qdrant-options.js';
export { snapshotCompatibility, parseVersion, type Compatibility } from './qdrant-version.js';
export { multipartFileBody, type MultipartBody } from './qdrant-http.js';
export { qdrantSourceEnv } from './env.js';
