import { BackupError } from '../errors/backup-error.js';

const KEY_HINT =
  "storage keys are relative '/'-separated paths without '.', '..' or empty segments, backslashes or NUL bytes";

type KeyKind = 'key' | 'prefix';
/** A storage's own extra rule for one segment; throw `fail(reason)` to reject. */
export type SegmentRule = (segment: string, fail: (reason: string) => BackupError) => void;

export function invalidStorageKey(what: KeyKind, value: string, reason: string): BackupError {
  return new BackupError('INVALID_KEY', `invalid storage ${what} ${JSON.stringify(value)}: ${reason}`, {
    hint: KEY_HINT,
    details: { [what]: value },
  });
}

function checkSegments(what: KeyKind, value: string, segments: string[], rule?: SegmentRule): void {
  if (value.includes('\0')) throw invalidStorageKey(what, value, 'it contains a NUL byte');
  if (value.includes('\\')) throw invalidStorageKey(what, value, 'it contains a backslash');
  if (value.startsWith('/')) throw invalidStorageKey(what, value, 'it is an absolute path');
  const fail = (reason: string) => invalidStorageKey(what, value, reason);
  for (const segment of segments) {
    if (segment === '') throw fail("it has an empty segment (a leading, trailing or doubled '/')");
    if (segment === '.' || segment === '..') throw fail(`it has a '${segment}' segment`);
    rule?.(segment, fail);
  }
}

/**
 * The key rules every storage shares, so a set copied between storages keeps its keys.
 * Returns the key's segments; throws BackupError INVALID_KEY.
 */
export function splitStorageKey(key: unknown, rule?: SegmentRule): string[] {
  if (typeof key !== 'string') throw invalidStorageKey('key', String(key), 'it is not a string');
  if (key === '') throw invalidStorageKey('key', key, 'it is empty');
  const segments = key.split('/');
  checkSegments('key', key, segments, rule);
  return segments;
}

/**
 * Prefixes match keys as plain strings (like S3), so only the complete directory segments are
 * constrained; the trailing partial segment may be anything. Returns the directory segments.
 */
export function splitStoragePrefix(prefix: unknown, rule?: SegmentRule): string[] {
  if (typeof prefix !== 'string') throw invalidStorageKey('prefix', String(prefix), 'it is not a string');
  if (prefix === '') return [];
  const dirSegments = prefix.split('/').slice(0, -1);
  checkSegments('prefix', prefix, dirSegments, rule);
  return dirSegments;
}
