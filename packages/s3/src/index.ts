export { createS3Storage, DELETE_BATCH_SIZE, type S3Storage } from './s3-storage.js';
export {
  s3StorageOptionsSchema,
  parseS3StorageOptions,
  S3_PROVIDERS,
  S3_STORAGE_CLASSES,
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  MIN_PART_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MAX_OBJECT_SIZE,
  type S3StorageOptions,
  type ResolvedS3StorageOptions,
  type S3Provider,
  type S3Credentials,
} from './s3-storage-options.js';
export { choosePartSize, maxObjectBytes } from './part-size.js';
export { validateKey as validateS3Key, MAX_S3_KEY_BYTES } from './s3-keys.js';
export { s3StorageEnv, type S3EnvConfig, type S3EnvProvider } from './env.js';
export { createS3LeaderElector, LEADER_LEASE_PREFIX, type S3LeaderElectorOptions, type S3LeaseBody } from './s3-leader-lease.js';
