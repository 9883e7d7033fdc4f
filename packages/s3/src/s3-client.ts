import { S3Client } from '@aws-sdk/client-s3';
import type { ResolvedS3StorageOptions } from './s3-storage-options.js';

/** What a caller of {@link newS3Client} may set differently from the storage's own options. */
export interface S3ClientLimits {
  maxAttempts: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
}

/**
 * The SDK client for resolved S3 options: endpoint, path style, credentials and the checksum
 * mode (s3rver-style servers need `WHEN_REQUIRED`), with the given retry and timeout limits.
 */
export function newS3Client(o: ResolvedS3StorageOptions, limits: S3ClientLimits): S3Client {
  return new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle,
    credentials: o.credentials,
    requestChecksumCalculation: o.checksumMode,
    responseChecksumValidation: o.checksumMode,
    maxAttempts: limits.maxAttempts,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: limits.connectionTimeoutMs, socketTimeout: limits.socketTimeoutMs },
  });
}
