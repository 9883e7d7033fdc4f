import { createWasmKernel, type Crc64Kernel } from './crc64-wasm.js';

/**
 * CRC-64/Jones as Redis uses it for DUMP payloads and RDB files (reflected, init 0, no final
 * xor; check value for "123456789" is 0xe9c6d914c4b8d9ca). Large inputs (a whole RDB snapshot)
 * go through a WebAssembly slice-by-16 kernel on 64-bit integers (`crc64-wasm.ts`); small ones,
 * and every input where WebAssembly is unavailable, through a JavaScript slice-by-8 that keeps
 * the 64-bit state in two 32-bit halves so the hot loop stays in small integers, not BigInt.
 */
const POLY_HI = 0x95ac9329; // reflected 0xad93d23594c935a9
const POLY_LO = 0xac4bc9b5;

// SLICE_*[k * 256 + n] is the CRC of byte n followed by k zero bytes (k < 16; JS uses k < 8).
const SLICES = 16;
const SLICE_HI = new Uint32Array(SLICES * 256);
const SLICE_LO = new Uint32Array(SLICES * 256);
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
  SLICE_HI[n] = hi;
  SLICE_LO[n] = lo;
}
for (let k = 1; k < SLICES; k++) {
  for (let n = 0; n < 256; n++) {
    const hi = SLICE_HI[(k - 1) * 256 + n]!;
    const lo = SLICE_LO[(k - 1) * 256 + n]!;
    const idx = lo & 0xff;
    SLICE_LO[k * 256 + n] = (((lo >>> 8) | (hi << 24)) ^ SLICE_LO[idx]!) >>> 0;
    SLICE_HI[k * 256 + n] = ((hi >>> 8) ^ SLICE_HI[idx]!) >>> 0;
  }
}

/** The JavaScript kernel: advances the CRC halves over `data`. */
export function jsCrc64Update(hi: number, lo: number, data: Uint8Array): [hi: number, lo: number] {
  const th = SLICE_HI;
  const tl = SLICE_LO;
  const n = data.length;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a = (lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    const b = (hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24))) >>> 0;
    const i7 = 7 * 256 + (a & 0xff);
    const i6 = 6 * 256 + ((a >>> 8) & 0xff);
    const i5 = 5 * 256 + ((a >>> 16) & 0xff);
    const i4 = 4 * 256 + (a >>> 24);
    const i3 = 3 * 256 + (b & 0xff);
    const i2 = 2 * 256 + ((b >>> 8) & 0xff);
    const i1 = 256 + ((b >>> 16) & 0xff);
    const i0 = b >>> 24;
    lo = (tl[i7]! ^ tl[i6]! ^ tl[i5]! ^ tl[i4]! ^ tl[i3]! ^ tl[i2]! ^ tl[i1]! ^ tl[i0]!) >>> 0;
    hi = (th[i7]! ^ th[i6]! ^ th[i5]! ^ th[i4]! ^ th[i3]! ^ th[i2]! ^ th[i1]! ^ th[i0]!) >>> 0;
  }
  for (; i < n; i++) {
    const idx = (lo ^ data[i]!) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ tl[idx]!) >>> 0;
    hi = ((hi >>> 8) ^ th[idx]!) >>> 0;
  }
  return [hi, lo];
}

/**
 * The WebAssembly kernel, or undefined where WebAssembly is missing or the kernel disagrees
 * with the JavaScript one on a self-test (then everything runs in JavaScript).
 */
export const wasmCrc64Kernel: Crc64Kernel | undefined = (() => {
  const kernel = createWasmKernel(SLICE_HI, SLICE_LO);
  if (!kernel) return undefined;
  const sample = new Uint8Array(1031);
  for (let i = 0; i < sample.length; i++) sample[i] = (i * 151 + 7) & 0xff;
  for (const len of [0, 1, 9, 15, 16, 17, 1031]) {
    const data = sample.subarray(0, len);
    const [wh, wl] = kernel.update(0x12345678, 0x9abcdef0, data);
    const [jh, jl] = jsCrc64Update(0x12345678, 0x9abcdef0, data);
    if (wh !== jh || wl !== jl) return undefined;
  }
  return kernel;
})();

/** Below this many bytes the JavaScript kernel is as fast as copying into WebAssembly memory. */
const WASM_MIN_BYTES = 64;

/** Incremental CRC-64 over any number of chunks. */
export class Crc64 {
  private hi = 0;
  private lo = 0;

  update(data: Uint8Array): this {
    const [hi, lo] =
      wasmCrc64Kernel && data.length >= WASM_MIN_BYTES ? wasmCrc64Kernel.update(this.hi, this.lo, data) : jsCrc64Update(this.hi, this.lo, data);
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
