import { defineAdapter, envDirectory } from '@scholaria/backup-core';

/** Where `scholaria-backup` keeps sets when configured from `.env`. */
export const DEFAULT_BACKUP_DIR = '/backup';

/**
 * The fs storage's `.env` descriptor: always on, at `BACKUP_DIR`. Loads the implementation only
 * when `create` is called.
 */
export const fsStorageEnv = defineAdapter({
  kind: 'storage',
  name: 'fs',
  title: 'Local folder storage (`@scholaria/backup-fs`)',
  label: 'BACKUP_DIR',
  env: {
    BACKUP_DIR: {
      schema: envDirectory,
      path: true,
      default: `\`${DEFAULT_BACKUP_DIR}\``,
      doc: 'local backup folder (fs storage); a relative path is resolved against the working directory',
    },
  },
  configure: ({ values }) => ({ root: values.BACKUP_DIR ?? DEFAULT_BACKUP_DIR }),
  async create(config) {
    const { createFsStorage } = await import('./fs-storage.js');
    return createFsStorage(config);
  },
});
