export { createFilesSource, type FilesSourceOptions } from './files-source.js';
export { createFlatStorage, type FlatStorageOptions } from './flat-storage.js';
export { filesSourceEnv, flatStorageEnv } from './env.js';
