/**
 * Builds RESP request arrays (`*N\r\n$len\r\n<bytes>\r\n...`) into few, large buffers. Payloads
 * above `largeValueBytes` are passed through as their own chunk instead of being copied, so a
 * tens-of-MB value costs no second copy.
 */
export class RespWriter {
  private chunk: Buffer;
  private used = 0;
  private readonly out: Buffer[] = [];

  constructor(
    private readonly chunkSize = 256 * 1024,
    private readonly largeValueBytes = 64 * 1024,
  ) {
    this.chunk = Buffer.allocUnsafe(chunkSize);
  }

  private ensure(n: number): void {
    if (this.used + n <= this.chunk.length) return;
    this.flushChunk();
    if (n > this.chunk.length) this.chunk = Buffer.allocUnsafe(Math.max(n, this.chunkSize));
  }

  private flushChunk(): void {
    if (this.used === 0) return;
    this.out.push(this.chunk.subarray(0, this.used));
    this.chunk = Buffer.allocUnsafe(this.chunkSize);
    this.used = 0;
  }

  private ascii(s: string): void {
    this.ensure(s.length);
    this.used += this.chunk.write(s, this.used, 'latin1');
  }

  private bulk(value: Buffer | string): void {
    if (typeof value === 'string') {
      const len = Buffer.byteLength(value);
      this.ascii(`$${len}\r\n`);
      this.ensure(len + 2);
      this.used += this.chunk.write(value, this.used);
      this.ascii('\r\n');
      return;
    }
    this.ascii(`$${value.length}\r\n`);
    if (value.length >= this.largeValueBytes) {
      this.flushChunk();
      this.out.push(value);
    } else {
      this.ensure(value.length);
      value.copy(this.chunk, this.used);
      this.used += value.length;
    }
    this.ascii('\r\n');
  }

  command(args: readonly (Buffer | string)[]): this {
    this.ascii(`*${args.length}\r\n`);
    for (const a of args) this.bulk(a);
    return this;
  }

  /** Everything written since the last call. */
  take(): Buffer[] {
    this.flushChunk();
    return this.out.splice(0, this.out.length);
  }
}

export function encodeCommand(args: readonly (Buffer | string)[]): Buffer {
  return Buffer.concat(new RespWriter(1024).command(args).take());
}
