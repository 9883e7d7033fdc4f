import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Crc64, crc64, RespCommandReader, RespFormatError, RespWriter, encodeCommand, rdbVersionForRedis, readDumpFooter, withDumpVersion } from '@scholaria/backup-redis';

describe('RESP writer and reader', () => {
  it('any commands, split at any points, read back byte for byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
        (commands, cuts) => {
          const writer = new RespWriter(64, 32);
          for (const c of commands) writer.command(c.map((b) => Buffer.from(b)));
          const stream = Buffer.concat(writer.take());
          const reader = new RespCommandReader();
          const out: Buffer[][] = [];
          let pos = 0;
          for (let i = 0; pos < stream.length; i++) {
            const n = cuts[i % cuts.length]!;
            out.push(...reader.push(stream.subarray(pos, pos + n)));
            pos += n;
          }
          reader.end();
          expect(out.map((c) => c.map((b) => b.toString('hex')))).toEqual(commands.map((c) => c.map((b) => Buffer.from(b).toString('hex'))));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('passes large values through without copying them into the chunk', () => {
    const big = Buffer.alloc(100_000, 7);
    const parts = new RespWriter(1024, 1000).command(['SET', 'k', big]).take();
    expect(parts).toContain(big);
  });

  it('writes raw fragments, array heads and integers as the same bytes as plain strings would give', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('int' as const), n: fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(0, -1, 9, 10, 99, 100, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1_795_690_506_461)) }),
            fc.record({ kind: fc.constant('bulk' as const), b: fc.uint8Array({ maxLength: 200 }) }),
            fc.record({ kind: fc.constant('raw' as const), b: fc.uint8Array({ maxLength: 100 }) }),
            fc.record({ kind: fc.constant('array' as const), n: fc.nat() }),
          ),
          { maxLength: 40 },
        ),
        fc.integer({ min: 16, max: 300 }),
        (ops, chunkSize) => {
          const writer = new RespWriter(chunkSize, 64);
          const expected: Buffer[] = [];
          const taken: Buffer[] = [];
          for (const [i, op] of ops.entries()) {
            if (op.kind === 'int') {
              writer.bulkInteger(op.n);
              expected.push(Buffer.from(`$${String(op.n).length}\r\n${op.n}\r\n`));
            } else if (op.kind === 'bulk') {
              writer.bulk(Buffer.from(op.b));
              expected.push(Buffer.from(`$${op.b.length}\r\n`), Buffer.from(op.b), Buffer.from('\r\n'));
            } else if (op.kind === 'raw') {
              writer.raw(Buffer.from(op.b));
              expected.push(Buffer.from(op.b));
            } else {
              writer.array(op.n);
              expected.push(Buffer.from(`*${op.n}\r\n`));
            }
            // Buffers handed out earlier must not change while the writer goes on in the same chunk.
            if (i % 3 === 0) taken.push(Buffer.concat(writer.take()));
          }
          const copies = taken.map((b) => Buffer.from(b));
          taken.push(Buffer.concat(writer.take()));
          expect(Buffer.concat(taken).toString('hex')).toBe(Buffer.concat(expected).toString('hex'));
          copies.forEach((c, i) => expect(taken[i]!.equals(c)).toBe(true));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('writes integers beyond 2^53 in decimal and refuses non-integers', () => {
    expect(Buffer.concat(new RespWriter().bulkInteger(2 ** 60).take()).toString()).toBe(`$19\r\n${2n ** 60n}\r\n`);
    expect(() => new RespWriter().bulkInteger(1.5)).toThrow(RangeError);
    expect(() => new RespWriter().bulkInteger(Number.NaN)).toThrow(RangeError);
  });

  it('rejects what is not an array of bulk strings, and truncation', () => {
    expect(() => new RespCommandReader().push(Buffer.from('+OK\r\n'))).toThrow(RespFormatError);
    expect(() => new RespCommandReader().push(Buffer.from('*1\r\n:1\r\n'))).toThrow(/expected '\$'/);
    expect(() => new RespCommandReader().push(Buffer.from('*1\r\n$3\r\nabcX\n'))).toThrow(/not followed by CRLF/);
    expect(() => new RespCommandReader().push(Buffer.from('*99999999\r\n'))).toThrow(/bad array length/);
    const r = new RespCommandReader();
    r.push(encodeCommand(['SELECT', '0']).subarray(0, 10));
    expect(() => r.end()).toThrow(/truncated/);
  });
});

describe('CRC-64 and DUMP footers', () => {
  it('matches the Redis CRC-64/Jones check value, in one piece or many', () => {
    expect(crc64(Buffer.from('123456789'))).toBe(0xe9c6d914c4b8d9can);
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
    const c = new Crc64();
    for (let i = 0; i < data.length; i += 7) c.update(data.subarray(i, i + 7));
    expect(c.digestBigInt()).toBe(crc64(data));
  });

  it('reads the RDB version and checks the CRC of a DUMP payload', () => {
    // DUMP of the string "hello" from Redis 7.0: type 0, length 5, bytes, version 10, CRC-64.
    const body = Buffer.from([0x00, 0x05, ...Buffer.from('hello'), 0x0a, 0x00]);
    const payload = Buffer.concat([body, new Crc64().update(body).digestLE()]);
    expect(readDumpFooter(payload, true)).toEqual({ rdbVersion: 10, crcValid: true });
    const bumped = withDumpVersion(payload, 12);
    expect(readDumpFooter(bumped, true)).toEqual({ rdbVersion: 12, crcValid: true });
    const broken = Buffer.from(bumped);
    broken[2] = 0x48;
    expect(readDumpFooter(broken, true)?.crcValid).toBe(false);
    expect(readDumpFooter(Buffer.alloc(5))).toBeUndefined();
  });

  it('maps Redis releases to the RDB version they read', () => {
    expect(rdbVersionForRedis('4.0.14')).toEqual({ rdbVersion: 8, assumed: false });
    expect(rdbVersionForRedis('5.0.7')).toEqual({ rdbVersion: 9, assumed: false });
    expect(rdbVersionForRedis('6.2.14')).toEqual({ rdbVersion: 9, assumed: false });
    expect(rdbVersionForRedis('7.0.15')).toEqual({ rdbVersion: 10, assumed: false });
    expect(rdbVersionForRedis('7.2.4')).toEqual({ rdbVersion: 11, assumed: false });
    expect(rdbVersionForRedis('7.4.1')).toEqual({ rdbVersion: 12, assumed: false });
    expect(rdbVersionForRedis('8.0.0')).toEqual({ rdbVersion: 12, assumed: true });
    expect(rdbVersionForRedis('garbage')).toBeUndefined();
  });
});

