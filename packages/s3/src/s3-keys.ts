import { BackupError } from '@scholaria/backup-core';

const KEY_HINT =
  "storage keys are relative '/'-separated paths without '.', '..' or empty segments, backslashes or NUL bytes";

/** S3's limit on the UTF-8 length of a full object key (prefix included). */
export const MAX_S3_KEY_BYTES = 1024;

function invalid(what: 'key' | 'prefix', value: string, reason: string): BackupError {
  return new BackupError('INVALID_KEY', `invalid storage ${what} ${JSON.stringify(value)}: ${reason}`, {
    hint: KEY_HINT,
    details: { [what]: value },
  });
}

function checkCharacters(what: 'key' | 'prefix', value: string): void {
  if (value.includes('\0')) throw invalid(what, value, 'it contains a NUL byte');
  if (value.includes('\\')) throw invalid(what, value, 'it contains a backslash');
  if (value.startsWith('/')) throw invalid(what, value, 'it is an absolute path');
}

function checkSegment(what: 'key' | 'prefix', value: string, segment: string): void {
  if (segment === '') throw invalid(what, value, "it has an empty segment (a leading, trailing or doubled '/')");
  if (segment === '.' || segment === '..') throw invalid(what, value, `it has a '${segment}' segment`);
}

/**
 * Same rules as the fs storage, so a set copied between storages keeps its keys: S3 itself would
 * accept 'a/../b' or 'a//b', but a restore to disk or a `sha256sum -c` could not.
 */
export function validateKey(key: unknown): string {
  if (typeof key !== 'string') throw invalid('key', String(key), 'it is not a string');
  if (key === '') throw invalid('key', key, 'it is empty');
  checkCharacters('key', key);
  for (const segment of key.split('/')) checkSegment('key', key, segment);
  return key;
}

/** Prefixes match keys as plain strings; only the complete directory segments are constrained. */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw invalid('prefix', String(prefix), 'it is not a string');
  if (prefix === '') return prefix;
  checkCharacters('prefix', prefix);
  for (const segment of prefix.split('/').slice(0, -1)) checkSegment('prefix', prefix, segment);
  return prefix;
}

/** Joins the storage prefix and a validated key, enforcing S3's key length limit. */
export function toObjectKey(storagePrefix: string, key: string): string {
  const full = storagePrefix ? `${storagePrefix}/${key}` : key;
  if (Buffer.byteLength(full) > MAX_S3_KEY_BYTES) {
    throw invalid('key', key, `with the storage prefix it is longer than S3's ${MAX_S3_KEY_BYTES}-byte key limit`);
  }
  return full;
}
