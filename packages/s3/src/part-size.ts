import { BackupError } from '@scholaria/backup-core';
import { MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MIB } from './s3-storage-options.js';

/**
 * The part size for one upload: the configured size, raised (in whole MiB) when the object's
 * size is known and would otherwise need more than 10,000 parts. A 5 TiB object gets 525 MiB
 * parts. With an unknown size the configured size caps the object at partSize * 10,000
 * (16 MiB -> 156.25 GiB).
 */
export function choosePartSize(configured: number, size?: number): number {
  if (size === undefined) return configured;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new BackupError('USAGE', `put: size must be a non-negative integer byte count, got ${String(size)}`, {
      hint: 'pass the exact size in bytes, or leave size out when it is unknown',
    });
  }
  if (size > MAX_OBJECT_SIZE) {
    throw new BackupError('STORAGE_FAILED', `put: ${size} bytes exceed S3's 5 TiB object size limit`, {
      hint: 'split the artifact (e.g. per database or collection) so each object stays under 5 TiB',
    });
  }
  const needed = Math.ceil(Math.ceil(size / MAX_PARTS) / MIB) * MIB;
  return Math.min(MAX_PART_SIZE, Math.max(configured, needed));
}

/** The largest object an upload of unknown size can hold with this part size. */
export function maxObjectBytes(partSize: number): number {
  return partSize * MAX_PARTS;
}
