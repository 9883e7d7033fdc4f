const DOLLAR = 0x24;
const STAR = 0x2a;
const CR = 0x0d;
const LF = 0x0a;
/** Below this length a byte loop beats the native copy's call overhead. */
const SMALL_COPY = 40;

/** Decimal digits of a non-negative safe integer. */
function digitCount(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Builds RESP request arrays (`*N\r\n$len\r\n<bytes>\r\n...`) into few, large buffers, without
 * a string or a Buffer per argument: headers and numbers are written byte by byte, constant
 * fragments are copied as they are (`raw`). Payloads above `largeValueBytes` are passed through
 * as their own chunk instead of being copied, so a tens-of-MB value costs no second copy.
 * Buffers returned by `take` are never written to again (the writer goes on after them).
 */
export class RespWriter {
  private chunk: Buffer;
  private used = 0;
  /** Start of the bytes of `chunk` not yet handed out. */
  private start = 0;
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
    this.chunk = Buffer.allocUnsafe(Math.max(n, this.chunkSize));
    this.used = 0;
    this.start = 0;
  }

  private flushChunk(): void {
    if (this.used > this.start) this.out.push(this.chunk.subarray(this.start, this.used));
    this.start = this.used;
  }

  private put(bytes: Uint8Array): void {
    const n = bytes.length;
    const chunk = this.chunk;
    let at = this.used;
    if (n < SMALL_COPY) for (let i = 0; i < n; i++) chunk[at++] = bytes[i]!;
    else {
      chunk.set(bytes, at);
      at += n;
    }
    this.used = at;
  }

  /** Writes the digits of a safe integer (with `-` when negative); room must be ensured. */
  private digits(n: number): void {
    const chunk = this.chunk;
    if (n < 0) {
      chunk[this.used++] = 0x2d;
      n = -n;
    }
    const count = digitCount(n);
    let at = this.used + count;
    this.used = at;
    do {
      const q = Math.floor(n / 10);
      chunk[--at] = 0x30 + (n - q * 10);
      n = q;
    } while (n > 0);
  }

  private header(type: number, n: number): void {
    this.ensure(24);
    this.chunk[this.used++] = type;
    this.digits(n);
    this.chunk[this.used++] = CR;
    this.chunk[this.used++] = LF;
  }

  /** Appends pre-encoded RESP (constant command heads and tails) as it is. */
  raw(bytes: Buffer): this {
    this.ensure(bytes.length);
    this.put(bytes);
    return this;
  }

  /** `*n\r\n`: the head of an array of n bulk strings. */
  array(n: number): this {
    this.header(STAR, n);
    return this;
  }

  /** One bulk string (`$len\r\n<bytes>\r\n`). */
  bulk(value: Buffer | string): this {
    if (typeof value === 'string') return this.bulk(Buffer.from(value));
    const n = value.length;
    if (n >= this.largeValueBytes) {
      this.header(DOLLAR, n);
      this.flushChunk();
      this.out.push(value);
      this.ensure(2);
    } else {
      this.ensure(n + 24);
      this.chunk[this.used++] = DOLLAR;
      this.digits(n);
      this.chunk[this.used++] = CR;
      this.chunk[this.used++] = LF;
      this.put(value);
    }
    this.chunk[this.used++] = CR;
    this.chunk[this.used++] = LF;
    return this;
  }

  /** An integer as a bulk string (`$len\r\n<digits>\r\n`), without a string in between. */
  bulkInteger(n: number): this {
    if (!Number.isSafeInteger(n)) {
      if (!Number.isInteger(n)) throw new RangeError(`not an integer: ${n}`);
      // Beyond 2^53 (an expiry hundreds of millennia away): decimal, as exact as the number is.
      return this.bulk(Buffer.from(BigInt(n).toString(), 'latin1'));
    }
    this.ensure(48);
    const chunk = this.chunk;
    chunk[this.used++] = DOLLAR;
    this.digits(n < 0 ? digitCount(-n) + 1 : digitCount(n));
    chunk[this.used++] = CR;
    chunk[this.used++] = LF;
    this.digits(n);
    chunk[this.used++] = CR;
    chunk[this.used++] = LF;
    return this;
  }

  command(args: readonly (Buffer | string)[]): this {
    this.array(args.length);
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
