export * from './fs-storage.js';
export * from './fs-storage-options.js';
export { validateKey, validatePrefix, TEMP_PREFIX } from './fs-keys.js';
export { fsStorageEnv, DEFAULT_BACKUP_DIR } from './env.js';
