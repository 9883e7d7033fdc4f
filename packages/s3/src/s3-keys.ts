import { invalidStorageKey, splitStorageKey, splitStoragePrefix } from '@scholaria/backup-core';

/** S3's limit on the UTF-8 length of a full object key (prefix included). */
export const MAX_S3_KEY_BYTES = 1024;

/**
 * Same rules as the fs storage, so a set copied between storages keeps its keys: S3 itself would
 * accept 'a/../b' or 'a//b', but a restore to disk or a `sha256sum -c` could not.
 */
export function validateKey(key: unknown): string {
  splitStorageKey(key);
  return key as string;
}

/** Prefixes match keys as plain strings; only the complete directory segments are constrained. */
export function validatePrefix(prefix: unknown): string {
  splitStoragePrefix(prefix);
  return prefix as string;
}

/** Joins the storage prefix and a validated key, enforcing S3's key length limit. */
export function toObjectKey(storagePrefix: string, key: string): string {
  const full = storagePrefix ? `${storagePrefix}/${key}` : key;
  if (Buffer.byteLength(full) > MAX_S3_KEY_BYTES) {
    throw invalidStorageKey('key', key, `with the storage prefix it is longer than S3's ${MAX_S3_KEY_BYTES}-byte key limit`);
  }
  return full;
}
