import { defineAdapter, envDirectory } from '@scholaria/backup-core';

/**
 * The `.env` descriptors of this example's two adapters. Nothing in core or the CLI names them:
 * listing them next to the shipped ones (src/bin.ts) is all it takes for `FILES_DIR` and
 * `FLAT_STORAGE_DIR` to be read, checked, documented and created like `DATABASE_URL` is.
 */
export const filesSourceEnv = defineAdapter({
  kind: 'source',
  name: 'files',
  title: 'Folder of files source (`examples/third-party-adapter`)',
  enabledBy: 'FILES_DIR',
  env: {
    FILES_DIR: { schema: envDirectory, path: true, doc: 'folder whose files are backed up (recursively) and restored' },
  },
  configure: ({ values }): { dir: string } | undefined => (values.FILES_DIR ? { dir: values.FILES_DIR } : undefined),
  async create(config) {
    const { createFilesSource } = await import('./files-source.js');
    return createFilesSource(config);
  },
});

export const flatStorageEnv = defineAdapter({
  kind: 'storage',
  name: 'flat',
  title: 'Flat folder storage (`examples/third-party-adapter`)',
  label: 'FLAT_STORAGE_DIR',
  env: {
    FLAT_STORAGE_DIR: { schema: envDirectory, path: true, doc: 'also store every set here, one file per object' },
  },
  configure: ({ values }): { dir: string } | undefined => (values.FLAT_STORAGE_DIR ? { dir: values.FLAT_STORAGE_DIR } : undefined),
  async create(config) {
    const { createFlatStorage } = await import('./flat-storage.js');
    return createFlatStorage(config);
  },
});

