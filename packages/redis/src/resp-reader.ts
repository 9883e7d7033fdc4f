const CR = 0x0d;
const LF = 0x0a;
const MAX_ARGS = 1024;
/** Redis's own default `proto-max-bulk-len`. */
const MAX_BULK = 512 * 1024 * 1024;

export class RespFormatError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
    this.name = 'RespFormatError';
  }
}

/**
 * Incremental parser of a RESP request stream: arrays of bulk strings, the only shape the
 * logical artifact contains (and what `redis-cli --pipe` sends). A bulk string split over
 * many chunks is gathered as a list and joined once, so large values cost one copy.
 */
export class RespCommandReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes consumed before `buf`, for error offsets. */
  private base = 0;
  private args: Buffer[] | null = null;
  private remaining = 0;
  private bulkLen = -1;
  private bulkParts: Buffer[] = [];
  private bulkHave = 0;

  push(chunk: Buffer): Buffer[][] {
    const rest = this.buf.length - this.pos;
    this.base += this.pos;
    this.buf = rest > 0 ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
    const out: Buffer[][] = [];
    for (;;) {
      if (this.bulkLen >= 0) {
        const need = this.bulkLen + 2 - this.bulkHave;
        const avail = this.buf.length - this.pos;
        if (avail < need) {
          if (avail > 0) this.bulkParts.push(this.buf.subarray(this.pos));
          this.bulkHave += avail;
          this.pos = this.buf.length;
          break;
        }
        this.bulkParts.push(this.buf.subarray(this.pos, this.pos + need));
        this.pos += need;
        const whole = this.bulkParts.length === 1 ? this.bulkParts[0]! : Buffer.concat(this.bulkParts, this.bulkLen + 2);
        if (whole[this.bulkLen] !== CR || whole[this.bulkLen + 1] !== LF) {
          throw new RespFormatError('bulk string not followed by CRLF', this.base + this.pos - 2);
        }
        this.args!.push(whole.subarray(0, this.bulkLen));
        this.bulkLen = -1;
        this.bulkParts = [];
        this.bulkHave = 0;
        if (--this.remaining === 0) {
          out.push(this.args!);
          this.args = null;
        }
        continue;
      }
      const lineEnd = this.buf.indexOf('\r\n', this.pos, 'latin1');
      if (lineEnd < 0) {
        if (this.buf.length - this.pos > 32) throw new RespFormatError('header line too long', this.base + this.pos);
        break;
      }
      const type = this.buf[this.pos];
      const text = this.buf.toString('latin1', this.pos + 1, lineEnd);
      const n = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
      if (this.args === null) {
        if (type !== 0x2a /* * */) throw new RespFormatError("expected '*' (a RESP array)", this.base + this.pos);
        if (!(n >= 1 && n <= MAX_ARGS)) throw new RespFormatError(`bad array length ${JSON.stringify(text)}`, this.base + this.pos);
        this.args = [];
        this.remaining = n;
      } else {
        if (type !== 0x24 /* $ */) throw new RespFormatError("expected '$' (a bulk string)", this.base + this.pos);
        if (!(n >= 0 && n <= MAX_BULK)) throw new RespFormatError(`bad bulk length ${JSON.stringify(text)}`, this.base + this.pos);
        this.bulkLen = n;
      }
      this.pos = lineEnd + 2;
    }
    return out;
  }

  /** Throws when the stream ended inside a command (a truncated artifact). */
  end(): void {
    if (this.args !== null || this.buf.length - this.pos > 0) {
      throw new RespFormatError('stream ends inside a command (truncated)', this.base + this.buf.length);
    }
  }
}
