import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BackupError, ChecksumError } from '@scholaria/backup-core';

export interface SnapshotExpectation {
  component: string;
  collection: string;
  snapshot: string;
  /** SHA-256 Qdrant reported in the snapshot description (absent on old servers). */
  checksum?: string | null;
  size?: number;
}

/**
 * Passes snapshot bytes through while hashing them, and fails in `flush` (before the artifact
 * sink can finish) when the SHA-256 or the size differs from what Qdrant reported: a corrupt
 * download then never becomes a stored artifact.
 */
export class SnapshotVerifier extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  digest: string | undefined;

  constructor(private readonly expected: SnapshotExpectation) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const digest = this.hash.digest('hex');
    this.digest = digest;
    const { component, collection, snapshot, checksum, size } = this.expected;
    if (checksum && digest !== checksum.toLowerCase()) {
      cb(
        new ChecksumError(
          `${component}: the snapshot of collection "${collection}" is corrupt: the ${this.bytes} downloaded bytes of ${snapshot} have SHA-256 ${digest}, Qdrant reported ${checksum.toLowerCase()}`,
          {
            component,
            retryable: true,
            hint: 'The download was damaged in transit or on the Qdrant node; nothing was stored for it. Run the backup again; if it repeats, check the node\'s disk and any proxy in between.',
          },
        ),
      );
      return;
    }
    if (size !== undefined && this.bytes !== size) {
      cb(
        new BackupError('SOURCE_FAILED', `${component}: the snapshot of collection "${collection}" has ${this.bytes} bytes, Qdrant reported ${size}`, {
          component,
          retryable: true,
          hint: 'The download was cut short; run the backup again.',
        }),
      );
      return;
    }
    cb();
  }
}
