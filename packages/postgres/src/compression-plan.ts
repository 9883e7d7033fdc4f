import { createGzipCodec, createZstdCodec, type Codec } from '@scholaria/backup-core';

export interface CompressionPlan {
  /** Level passed to pg_dump --compress (0 = none inside pg_dump). */
  pgLevel: number | undefined;
  /** Codec for ArtifactOptions.compression. */
  codec: Codec | false;
  record: { mode: 'zstd' | 'gzip' | 'pg' | 'none'; level?: number };
}

/**
 * zstd outside pg_dump is the default: measured on a 1 GB database it gives the size of
 * pg_dump's built-in compression in about a quarter of the time, because pg_dump compresses on
 * one core and the codec runs on another.
 */
export function compressionPlan(mode: 'zstd' | 'gzip' | 'pg' | 'none', level: number | undefined): CompressionPlan {
  switch (mode) {
    case 'zstd': {
      const l = level ?? 3;
      return { pgLevel: 0, codec: createZstdCodec({ level: l }), record: { mode, level: l } };
    }
    case 'gzip': {
      const l = level ?? 1;
      return { pgLevel: 0, codec: createGzipCodec({ level: l }), record: { mode, level: l } };
    }
    case 'pg': {
      return { pgLevel: level, codec: false, record: level === undefined ? { mode } : { mode, level } };
    }
    case 'none':
      return { pgLevel: 0, codec: false, record: { mode } };
  }
}
