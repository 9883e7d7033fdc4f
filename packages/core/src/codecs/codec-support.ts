import type { Duplex } from 'node:stream';
import type { z } from 'zod';
import type { CodecRecord } from '../interfaces/codec.js';
import { BackupError, ConfigError } from '../errors/backup-error.js';

/**
 * Makes the errors a stream raises itself (zlib's "incorrect header check", ...) BackupErrors,
 * whoever consumes it: the mapping sits in `_destroy`, whose callback error is what the stream
 * emits and what pipeline() and async iteration report. `map` returns the error unchanged for
 * errors that came from elsewhere (a pipeline destroying the stream with an upstream error).
 */
export function mapStreamErrors<T extends Duplex>(stream: T, map: (error: Error) => Error): T {
  const destroy = stream._destroy;
  stream._destroy = function mappedDestroy(error: Error | null, callback: (error?: Error | null) => void) {
    destroy.call(this, error, (result?: Error | null) => {
      callback(result && !BackupError.isInstance(result) ? map(result) : result);
    });
  };
  return stream;
}

/** True for errors raised by zlib itself (codes such as Z_DATA_ERROR, Z_BUF_ERROR, ZSTD_error_*). */
export function isZlibError(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ZSTD_') || code.startsWith('ERR_ZLIB') || code === 'ERR_BUFFER_TOO_LARGE');
}

export function codecFailure(
  codec: string,
  direction: 'encode' | 'decode',
  error: Error,
  hint?: string,
): BackupError {
  return new BackupError('CODEC_FAILED', `${codec} ${direction === 'encode' ? 'compression' : 'decompression'} failed: ${error.message}`, {
    cause: error,
    hint:
      hint ??
      (direction === 'decode'
        ? `the data is not valid ${codec} or is damaged; run verify on the set to check its checksums`
        : `the ${codec} encoder failed; check memory and the input stream`),
    details: { codec, direction },
  });
}

export function parseCodecOptions<S extends z.ZodType>(schema: S, options: unknown, factory: string): z.output<S> {
  const result = schema.safeParse(options ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    `${factory}: invalid options`,
    result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(options)'}: ${issue.message}`),
  );
}

/** Checks that a manifest record handed to `decode` belongs to this codec. */
export function assertRecordFor(codec: string, record: CodecRecord | undefined): void {
  if (record && record.name !== codec) {
    throw new BackupError('CODEC_FAILED', `the ${codec} codec cannot decode data recorded as "${record.name}"`, {
      hint: `configure a codec named "${record.name}" for restore`,
    });
  }
}
