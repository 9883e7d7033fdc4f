import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ChecksumError } from '../errors/backup-error.js';

/** Passes bytes through while counting them and computing their SHA-256. */
export class HashStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private digestHex: string | undefined;

  constructor(private readonly onBytes?: (total: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(this.size);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digestHex = this.hash.digest('hex');
    cb();
  }

  get sha256(): string {
    if (this.digestHex === undefined) throw new Error('HashStream: digest read before the stream ended');
    return this.digestHex;
  }
}

/** Passes bytes through and fails at the end, before signalling end, if size or SHA-256 differ. */
export class VerifyStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private size = 0;

  constructor(
    private readonly expected: { sha256: string; size: number; path: string },
    private readonly onBytes?: (total: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(this.size);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = this.hash.digest('hex');
    if (this.size !== this.expected.size || actual !== this.expected.sha256) {
      cb(
        new ChecksumError(
          `${this.expected.path}: checksum mismatch (expected ${this.expected.size} bytes sha256 ${this.expected.sha256}, read ${this.size} bytes sha256 ${actual})`,
          { hint: 'The stored artifact is damaged or was changed. Restore from another set or another storage.', details: { path: this.expected.path } },
        ),
      );
      return;
    }
    cb();
  }
}
