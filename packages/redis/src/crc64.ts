/**
 * CRC-64/Jones as Redis uses it for DUMP payloads and RDB files (reflected, init 0, no final
 * xor; check value for "123456789" is 0xe9c6d914c4b8d9ca). The 64-bit state is kept in two
 * 32-bit halves so the hot loop stays in small integers instead of BigInt.
 */
const POLY_HI = 0x95ac9329; // reflected 0xad93d23594c935a9
const POLY_LO = 0xac4bc9b5;

const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let hi = 0;
  let lo = n;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  TABLE_HI[n] = hi;
  TABLE_LO[n] = lo;
}

/** Incremental CRC-64 over any number of chunks. */
export class Crc64 {
  private hi = 0;
  private lo = 0;

  update(data: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    const th = TABLE_HI;
    const tl = TABLE_LO;
    for (let i = 0; i < data.length; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ tl[idx]!) >>> 0;
      hi = ((hi >>> 8) ^ th[idx]!) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  /** The CRC as 8 little-endian bytes, the order Redis stores it in. */
  digestLE(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(this.lo, 0);
    out.writeUInt32LE(this.hi, 4);
    return out;
  }

  digestBigInt(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).digestBigInt();
}
