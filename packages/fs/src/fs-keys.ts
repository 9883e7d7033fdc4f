import { splitStorageKey, splitStoragePrefix, type SegmentRule } from '@scholaria/backup-core';

/** Temp files of in-flight writes start with this; `list` never shows them, keys may not use it. */
export const TEMP_PREFIX = '.tmp-';

// Linux NAME_MAX: a longer segment would fail later with ENAMETOOLONG, less clearly.
const MAX_SEGMENT_BYTES = 255;

const segmentFitsFileName: SegmentRule = (segment, fail) => {
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw fail(`a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
};

/** Validates an object key and returns its segments. Throws BackupError INVALID_KEY. */
export function validateKey(key: unknown): string[] {
  return splitStorageKey(key, (segment, fail) => {
    segmentFitsFileName(segment, fail);
    if (segment.startsWith(TEMP_PREFIX)) throw fail(`segments starting with '${TEMP_PREFIX}' are reserved for temporary files`);
  });
}

/**
 * Validates a list prefix. Prefixes match keys as plain strings (like S3), so only the complete
 * directory segments are constrained; the trailing partial segment may be anything printable.
 */
export function validatePrefix(prefix: unknown): { dirSegments: string[]; prefix: string } {
  return { dirSegments: splitStoragePrefix(prefix, segmentFitsFileName), prefix: prefix as string };
}
