export * from './types.js';
export { createBackupEngine } from './create-engine.js';
export { SET_ID_PATTERN, STATE_DIR } from './set-catalog.js';
export { DEFAULT_MAX_AGE_MS, worstStatus } from './run-health.js';
