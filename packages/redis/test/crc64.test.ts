import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { readDumpFooter } from '@scholaria/backup-redis';
import { Crc64, crc64, jsCrc64Update, wasmCrc64Kernel } from '../src/crc64.js';
import { crc64WasmBytes, wasmApi, WASM_CHUNK } from '../src/crc64-wasm.js';

const exec = promisify(execFile);

/** Both kernels over `data` in the given pieces, as 16 hex digits each. */
function bothKernels(data: Uint8Array, pieces: number[] = [data.length]): { js: string; wasm: string } {
  const wasm = wasmCrc64Kernel!;
  let js: [number, number] = [0, 0];
  let w: [number, number] = [0, 0];
  let offset = 0;
  for (const n of pieces) {
    const part = data.subarray(offset, offset + n);
    js = jsCrc64Update(js[0], js[1], part);
    w = wasm.update(w[0], w[1], part);
    offset += n;
  }
  const hex = ([hi, lo]: [number, number]) => hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
  return { js: hex(js), wasm: hex(w) };
}

describe('CRC-64/Jones kernels', () => {
  it('the WebAssembly kernel is available on this Node and the module is a valid one', () => {
    expect(wasmApi()?.validate(crc64WasmBytes())).toBe(true);
    expect(wasmCrc64Kernel).toBeDefined();
  });

  it('both give the Redis check value for "123456789" and 0 for nothing', () => {
    expect(bothKernels(Buffer.from('123456789'))).toEqual({ js: 'e9c6d914c4b8d9ca', wasm: 'e9c6d914c4b8d9ca' });
    expect(bothKernels(Buffer.alloc(0))).toEqual({ js: '0000000000000000', wasm: '0000000000000000' });
    // Redis's second vector (src/crc64.c): the Lorem ipsum paragraph with its C string's NUL (446 bytes).
    const li = Buffer.from(
      'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ' +
        'Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ' +
        'Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. ' +
        'Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.\0',
    );
    expect(li.length).toBe(446);
    expect(bothKernels(li)).toEqual({ js: 'c7794709e69683b3', wasm: 'c7794709e69683b3' });
    expect(crc64(li)).toBe(0xc7794709e69683b3n);
  });

  it('agree on every length around the 8- and 16-byte steps, at any alignment and in any pieces', () => {
    const data = randomBytes(5000);
    for (let start = 0; start < 9; start++) {
      for (let len = 0; len <= 70; len++) {
        const part = data.subarray(start, start + len);
        const { js, wasm } = bothKernels(part);
        expect(wasm, `start ${start} length ${len}`).toBe(js);
      }
    }
    const pieces = [1, 7, 16, 3, 100, 2048, 15, 2810];
    const split = bothKernels(data, pieces);
    expect(split.wasm).toBe(split.js);
    expect(split.js).toBe(bothKernels(data).js);
  });

  it('agree on inputs larger than the WebAssembly memory window', () => {
    const data = randomBytes(WASM_CHUNK * 2 + 12345);
    const { js, wasm } = bothKernels(data);
    expect(wasm).toBe(js);
    const c = new Crc64();
    c.update(data.subarray(0, 100)).update(data.subarray(100, 100)).update(data.subarray(100));
    expect(c.digestBigInt().toString(16).padStart(16, '0')).toBe(js);
  });
});

describe('CRC-64 against real Redis output', () => {
  let server: RedisServer;
  let temp: TempDir;
  beforeAll(async () => {
    [server, temp] = await Promise.all([startRedis(), makeTempDir('scholaria-crc64-')]);
    const r = new Redis(server.url());
    try {
      await r.set('small', 'hello');
      await r.set('big', randomBytes(3 * 1024 * 1024));
      await r.rpush('list', ...Array.from({ length: 3000 }, (_, i) => `item-${i}`));
      await r.hset('hash', Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`f${i}`, randomBytes(20).toString('hex')])));
    } finally {
      r.disconnect();
    }
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), temp?.remove()]);
  });

  it('both kernels reproduce the CRC of DUMP payloads of every size', async () => {
    const r = new Redis(server.url());
    try {
      for (const key of ['small', 'big', 'list', 'hash']) {
        const payload = (await r.dumpBuffer(key))!;
        expect(readDumpFooter(payload, true)?.crcValid, key).toBe(true);
        const stored = Buffer.from(payload.subarray(payload.length - 8)).reverse().toString('hex');
        expect(bothKernels(payload.subarray(0, payload.length - 8)), key).toEqual({ js: stored, wasm: stored });
      }
    } finally {
      r.disconnect();
    }
  });

  it('both kernels reproduce the trailing CRC of an RDB file written by redis-cli --rdb', async () => {
    const file = join(temp.path, 'dump.rdb');
    await exec('redis-cli', ['-h', server.host, '-p', String(server.port), '--rdb', file]);
    const rdb = await readFile(file);
    expect(rdb.length).toBeGreaterThan(3 * 1024 * 1024);
    const stored = Buffer.from(rdb.subarray(rdb.length - 8)).reverse().toString('hex');
    expect(stored).not.toBe('0000000000000000');
    expect(bothKernels(rdb.subarray(0, rdb.length - 8), [100_000, 1_000_000, rdb.length])).toEqual({ js: stored, wasm: stored });
  });
});
