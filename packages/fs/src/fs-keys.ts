import { BackupError } from '@scholaria/backup-core';

/** Temp files of in-flight writes start with this; `list` never shows them, keys may not use it. */
export const TEMP_PREFIX = '.tmp-';

const KEY_HINT =
  "storage keys are relative '/'-separated paths without '.', '..' or empty segments, backslashes or NUL bytes";

// Linux NAME_MAX: a longer segment would fail later with ENAMETOOLONG, less clearly.
const MAX_SEGMENT_BYTES = 255;

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
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
    throw invalid(what, value, `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
}

/** Validates an object key and returns its segments. Throws BackupError INVALID_KEY. */
export function validateKey(key: unknown): string[] {
  if (typeof key !== 'string') throw invalid('key', String(key), 'it is not a string');
  if (key === '') throw invalid('key', key, 'it is empty');
  checkCharacters('key', key);
  const segments = key.split('/');
  for (const segment of segments) {
    checkSegment('key', key, segment);
    if (segment.startsWith(TEMP_PREFIX)) {
      throw invalid('key', key, `segments starting with '${TEMP_PREFIX}' are reserved for temporary files`);
    }
  }
  return segments;
}

/**
 * Validates a list prefix. Prefixes match keys as plain strings (like S3), so only the complete
 * directory segments are constrained; the trailing partial segment may be anything printable.
 */
export function validatePrefix(prefix: unknown): { dirSegments: string[]; prefix: string } {
  if (typeof prefix !== 'string') throw invalid('prefix', String(prefix), 'it is not a string');
  if (prefix === '') return { dirSegments: [], prefix };
  checkCharacters('prefix', prefix);
  const segments = prefix.split('/');
  const dirSegments = segments.slice(0, -1);
  for (const segment of dirSegments) checkSegment('prefix', prefix, segment);
  return { dirSegments, prefix };
}
