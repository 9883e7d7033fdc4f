import { Transform, type TransformCallback } from 'node:stream';
import { BackupError } from '../errors/backup-error.js';

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type State = 'magic' | 'skippableSize' | 'frameHeaderDescriptor' | 'frameHeaderRest' | 'blockHeader';
type Skipping = 'skippableBody' | 'blockBody' | 'checksum';

/**
 * Passes zstd data through unchanged while following its frame structure (RFC 8878: frame
 * header, 3-byte block headers, optional checksum, skippable frames), and fails at the end
 * when the input stopped inside a frame or held no frame at all. Node's zlib zstd decoder
 * returns a silently short result for truncated input (nodejs/node#64592), where `zstd -d`
 * reports "premature end"; a restore must never take a cut-off dump for a whole one.
 */
export class ZstdFrameScanner extends Transform {
  private state: State = 'magic';
  private need = 4;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private skipping: Skipping | undefined;
  private skip = 0;
  private lastBlock = false;
  private hasChecksum = false;
  private frames = 0;
  private offset = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.scan(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.frames === 0 && this.offset === 0) {
      callback(this.failure('the input is empty: it holds no zstd frame'));
    } else if (this.state !== 'magic' || this.headerBytes !== 0 || this.skipping) {
      callback(this.failure(`the input ends inside a zstd frame after ${this.offset} bytes (truncated data)`));
    } else callback();
  }

  private scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skipping) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        this.offset += n;
        if (this.skip === 0) this.endSkip();
        continue;
      }
      const n = Math.min(this.need - this.headerBytes, chunk.length - i);
      this.header.push(chunk.subarray(i, i + n));
      this.headerBytes += n;
      i += n;
      this.offset += n;
      if (this.headerBytes === this.need) {
        const bytes = Buffer.concat(this.header);
        this.header = [];
        this.headerBytes = 0;
        this.onHeader(bytes);
      }
    }
  }

  private expect(state: State, need: number): void {
    this.state = state;
    this.need = need;
    if (need === 0) this.onHeader(Buffer.alloc(0));
  }

  private startSkip(what: Skipping, bytes: number): void {
    if (bytes === 0) {
      this.skipping = what;
      this.endSkip();
      return;
    }
    this.skipping = what;
    this.skip = bytes;
  }

  private frameDone(): void {
    this.frames++;
    this.expect('magic', 4);
  }

  private endSkip(): void {
    const what = this.skipping;
    this.skipping = undefined;
    if (what === 'blockBody') {
      if (!this.lastBlock) this.expect('blockHeader', 3);
      else if (this.hasChecksum) this.startSkip('checksum', 4);
      else this.frameDone();
    } else {
      this.frameDone();
    }
  }

  private onHeader(bytes: Buffer): void {
    switch (this.state) {
      case 'magic': {
        const magic = bytes.readUInt32LE(0);
        if (magic === ZSTD_MAGIC) this.expect('frameHeaderDescriptor', 1);
        else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) this.expect('skippableSize', 4);
        else throw this.failure(`no zstd frame starts at byte ${this.offset - 4} (bad magic number): the data is not zstd`);
        return;
      }
      case 'skippableSize':
        this.startSkip('skippableBody', bytes.readUInt32LE(0));
        return;
      case 'frameHeaderDescriptor': {
        const fhd = bytes[0]!;
        const fcsFlag = fhd >> 6;
        const singleSegment = (fhd & 0x20) !== 0;
        if ((fhd & 0x08) !== 0) throw this.failure('a zstd frame header has its reserved bit set');
        this.hasChecksum = (fhd & 0x04) !== 0;
        const didBytes = [0, 1, 2, 4][fhd & 0x03]!;
        const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
        this.expect('frameHeaderRest', (singleSegment ? 0 : 1) + didBytes + fcsBytes);
        return;
      }
      case 'frameHeaderRest':
        this.expect('blockHeader', 3);
        return;
      case 'blockHeader': {
        const header = bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16);
        this.lastBlock = (header & 1) === 1;
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        if (type === 3) throw this.failure('a zstd block has the reserved block type');
        this.startSkip('blockBody', type === 1 ? 1 : size);
        return;
      }
    }
  }

  private failure(message: string): BackupError {
    return new BackupError('CODEC_FAILED', `zstd decompression failed: ${message}`, {
      hint: 'the data is not valid zstd or is damaged; run verify on the set to check its checksums',
      details: { codec: 'zstd', direction: 'decode' },
    });
  }
}
