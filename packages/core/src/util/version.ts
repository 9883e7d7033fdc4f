/** Kept equal to packages/core/package.json "version" (a test checks it). */
export const LIBRARY_NAME = '@scholaria/backup-core';
export const LIBRARY_VERSION = '0.1.0';
