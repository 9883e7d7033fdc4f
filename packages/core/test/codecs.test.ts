import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BackupError,
  createGzipCodec,
  createZstdCodec,
  zstdAvailable,
  type Codec,
} from '@scholaria/backup-core';
import { ChildProcessDuplex } from '../src/codecs/child-process-duplex.js';
import { ZstdFrameScanner } from '../src/codecs/zstd-frame-scanner.js';
import { backupErrorOf } from '@scholaria/backup-testkit';

const MiB = 1024 * 1024;
const nativeZstd = typeof (zlib as unknown as { createZstdCompress?: unknown }).createZstdCompress === 'function';

/** Deterministic, partly compressible data generated on the fly (never held in memory). */
function generated(bytes: number): Readable {
  let produced = 0;
  let n = 0;
  const noise = randomBytes(16 * 1024);
  return new Readable({
    read() {
      if (produced >= bytes) return void this.push(null);
      const size = Math.min(64 * 1024, bytes - produced);
      const chunk =
        n++ % 2 === 0
          ? Buffer.from(`row ${n}\tscholaria\tchunk text about topics and contexts\n`.repeat(2000)).subarray(0, size)
          : Buffer.concat([noise, noise, noise, noise]).subarray(0, size);
      produced += chunk.length;
      this.push(chunk);
    },
  });
}

function hashTap() {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, result: () => ({ sha256: hash.digest('hex'), size }) };
}

function hashSink() {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb();
    },
  });
  return { stream, result: () => ({ sha256: hash.digest('hex'), size }) };
}

async function collect(stream: Readable | Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function encodeBytes(codec: Codec, input: Buffer): Promise<Buffer> {
  const encoder = codec.encode();
  const [, out] = await Promise.all([pipeline(Readable.from([input]), encoder), collect(encoder)]);
  return out;
}

async function decodeBytes(codec: Codec, input: Buffer): Promise<Buffer> {
  const decoder = codec.decode(codec.describe());
  const [, out] = await Promise.all([pipeline(Readable.from([input]), decoder), collect(decoder)]);
  return out;
}

/** Runs a real tool with `input` on stdin; resolves with its stdout, rejects on non-zero exit. */
async function runTool(command: string, args: string[], input: Readable): Promise<Buffer> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const [out] = await Promise.all([collect(child.stdout), pipeline(input, child.stdin)]);
  const code = await exited;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`);
  return out;
}

const variants: { label: string; make: () => Codec; tool: { encode: string[]; decode: string[]; command: string }; magic: string }[] = [
  { label: 'gzip', make: () => createGzipCodec(), tool: { command: 'gzip', encode: ['-c'], decode: ['-d', '-c'] }, magic: '1f8b' },
  { label: 'gzip level 1', make: () => createGzipCodec({ level: 1 }), tool: { command: 'gzip', encode: ['-c', '-1'], decode: ['-d', '-c'] }, magic: '1f8b' },
  { label: 'zstd (auto)', make: () => createZstdCodec(), tool: { command: 'zstd', encode: ['-q', '-c', '-3'], decode: ['-q', '-d', '-c'] }, magic: '28b52ffd' },
  {
    label: 'zstd (binary, level 9, 2 threads)',
    make: () => createZstdCodec({ implementation: 'binary', level: 9, threads: 2 }),
    tool: { command: 'zstd', encode: ['-q', '-c', '-9'], decode: ['-q', '-d', '-c'] },
    magic: '28b52ffd',
  },
  ...(nativeZstd
    ? [
        {
          label: 'zstd (zlib)',
          make: () => createZstdCodec({ implementation: 'zlib' }),
          tool: { command: 'zstd', encode: ['-q', '-c', '-3'], decode: ['-q', '-d', '-c'] },
          magic: '28b52ffd',
        },
      ]
    : []),
];

describe('codec metadata and options', () => {
  it('gzip describes itself', () => {
    const codec = createGzipCodec();
    expect(codec).toMatchObject({ specVersion: 'v1', name: 'gzip', kind: 'compression', extension: '.gz', manualDecode: 'gunzip' });
    expect(codec.describe()).toEqual({ name: 'gzip', params: { level: 6 } });
    expect(createGzipCodec({ level: 9 }).describe()).toEqual({ name: 'gzip', params: { level: 9 } });
  });

  it('zstd describes itself', () => {
    const codec = createZstdCodec();
    expect(codec).toMatchObject({ specVersion: 'v1', name: 'zstd', kind: 'compression', extension: '.zst', manualDecode: 'zstd -d' });
    expect(codec.describe()).toEqual({ name: 'zstd', params: { level: 3 } });
    expect(createZstdCodec({ level: 19, threads: 4 }).describe()).toEqual({ name: 'zstd', params: { level: 19 } });
  });

  it('rejects bad options with a ConfigError naming the field', () => {
    const cases: [() => unknown, string][] = [
      [() => createGzipCodec({ level: 0 }), 'level'],
      [() => createGzipCodec({ level: 10 }), 'level'],
      [() => createGzipCodec({ lvl: 3 } as never), 'lvl'],
      [() => createZstdCodec({ level: 20 }), 'level'],
      [() => createZstdCodec({ threads: -1 }), 'threads'],
      [() => createZstdCodec({ implementation: 'wasm' as never }), 'implementation'],
    ];
    for (const [make, field] of cases) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(BackupError.isInstance(error)).toBe(true);
      expect((error as BackupError).code).toBe('CONFIG_INVALID');
      expect((error as BackupError).message).toContain(field);
    }
  });

  it('implementation "zlib" works where Node has zstd and is a clear config error where it does not', async () => {
    if (nativeZstd) {
      const codec = createZstdCodec({ implementation: 'zlib' });
      const data = Buffer.from('native zstd');
      expect((await decodeBytes(codec, await encodeBytes(codec, data))).equals(data)).toBe(true);
    } else {
      let error: unknown;
      try {
        createZstdCodec({ implementation: 'zlib' });
      } catch (e) {
        error = e;
      }
      expect((error as BackupError).code).toBe('CONFIG_INVALID');
      expect((error as BackupError).message).toContain('22.15');
    }
  });

  it('refuses to decode a record written by another codec', () => {
    const error = (() => {
      try {
        createZstdCodec().decode({ name: 'gzip', params: { level: 6 } });
      } catch (e) {
        return e as BackupError;
      }
      return undefined;
    })();
    expect(error?.code).toBe('CODEC_FAILED');
    expect(error?.message).toContain('gzip');
  });

  it('zstdAvailable reports how zstd runs here, and "none" without zlib zstd or the program', async () => {
    expect(await zstdAvailable()).toEqual({ available: true, via: nativeZstd ? 'zlib' : 'binary' });
    expect(await zstdAvailable({ binary: '/nonexistent/zstd' })).toEqual(
      nativeZstd ? { available: true, via: 'zlib' } : { available: false, via: 'none' },
    );
  });
});

for (const variant of variants) {
  describe(`${variant.label}`, () => {
    it('round-trips an empty input', async () => {
      const codec = variant.make();
      const encoded = await encodeBytes(codec, Buffer.alloc(0));
      expect(encoded.length).toBeGreaterThan(0);
      expect((await decodeBytes(codec, encoded)).length).toBe(0);
    });

    it('round-trips a small input and writes the standard magic bytes', async () => {
      const codec = variant.make();
      const data = Buffer.from('users, topics, contexts, chunks — 한국어 ✓');
      const encoded = await encodeBytes(codec, data);
      expect(encoded.subarray(0, variant.magic.length / 2).toString('hex')).toBe(variant.magic);
      expect((await decodeBytes(codec, encoded)).equals(data)).toBe(true);
    });

    it('round-trips 24 MiB streamed through encode and decode', async () => {
      const codec = variant.make();
      const tapIn = hashTap();
      const tapMid = hashTap();
      const sink = hashSink();
      await pipeline(generated(24 * MiB), tapIn.stream, codec.encode(), tapMid.stream, codec.decode(codec.describe()), sink.stream);
      const input = tapIn.result();
      expect(input.size).toBe(24 * MiB);
      expect(sink.result()).toEqual(input);
      expect(tapMid.result().size).toBeLessThan(input.size);
    });

    it(`its output is read by the real ${variant.tool.command}`, async () => {
      const codec = variant.make();
      const tapIn = hashTap();
      const encoded = Readable.from(
        (async function* () {
          const encoder = codec.encode();
          const feeding = pipeline(generated(3 * MiB + 123), tapIn.stream, encoder);
          yield* encoder;
          await feeding;
        })(),
        { objectMode: false },
      );
      const decoded = await runTool(variant.tool.command, variant.tool.decode, encoded);
      expect(createHash('sha256').update(decoded).digest('hex')).toBe(tapIn.result().sha256);
    });

    it(`reads what the real ${variant.tool.command} writes`, async () => {
      const codec = variant.make();
      const tapIn = hashTap();
      const byTool = await runTool(variant.tool.command, variant.tool.encode, generated(2 * MiB + 7).pipe(tapIn.stream));
      const decoded = await decodeBytes(codec, byTool);
      expect(createHash('sha256').update(decoded).digest('hex')).toBe(tapIn.result().sha256);
    });

    it('fails a corrupt input with CODEC_FAILED', async () => {
      const codec = variant.make();
      const error = await backupErrorOf(decodeBytes(codec, randomBytes(4096)));
      expect(error.code).toBe('CODEC_FAILED');
      expect(error.message).toMatch(/zstd|gzip/);
      expect(error.hint).toBeTruthy();
    });

    it('fails a truncated input with CODEC_FAILED instead of returning a short result', async () => {
      const codec = variant.make();
      const encoded = await encodeBytes(codec, randomBytes(300_000));
      const error = await backupErrorOf(decodeBytes(codec, encoded.subarray(0, Math.floor(encoded.length / 2))));
      expect(error.code).toBe('CODEC_FAILED');
    });

    it('fails an input with a flipped byte with CODEC_FAILED', async () => {
      const codec = variant.make();
      const encoded = await encodeBytes(codec, randomBytes(300_000));
      const middle = Math.floor(encoded.length / 2);
      encoded[middle] = encoded[middle]! ^ 0xff;
      const error = await backupErrorOf(decodeBytes(codec, encoded));
      expect(error.code).toBe('CODEC_FAILED');
    });

    it('passes an upstream error through unchanged', async () => {
      const codec = variant.make();
      const upstream = new Error('pg_dump exited with code 1');
      const source = new Readable({
        read() {
          this.destroy(upstream);
        },
      });
      await expect(pipeline(source, codec.encode(), hashSink().stream)).rejects.toBe(upstream);
    });
  });
}

describe('zstd through the zstd program', () => {
  it('is used when forced, even where zlib has zstd', async () => {
    const codec = createZstdCodec({ implementation: 'binary' });
    const encoder = codec.encode();
    expect(encoder).toBeInstanceOf(ChildProcessDuplex);
    const encoded = await collect(Readable.from([Buffer.from('forced')]).pipe(encoder));
    const child = (encoder as unknown as { child: ChildProcess }).child;
    expect(child.spawnfile).toBe('zstd');
    expect(child.spawnargs.slice(1)).toEqual(['-q', '-c', '-3', '-T0']);
    expect(child.exitCode).toBe(0);
    expect(codec.decode()).toBeInstanceOf(ChildProcessDuplex);
    expect((await decodeBytes(codec, encoded)).toString()).toBe('forced');
  });

  it('fails with TOOL_MISSING and an install hint when the program is missing', async () => {
    const codec = createZstdCodec({ implementation: 'binary', binary: 'zstd-not-installed-here' });
    const error = await backupErrorOf(pipeline(Readable.from([Buffer.from('data')]), codec.encode(), hashSink().stream));
    expect(error.code).toBe('TOOL_MISSING');
    expect(error.message).toContain('zstd-not-installed-here');
    expect(error.hint).toContain('apt-get install zstd');
    const decodeError = await backupErrorOf(decodeBytes(codec, Buffer.from('data')));
    expect(decodeError.code).toBe('TOOL_MISSING');
  });

  it("includes the program's stderr when it exits non-zero", async () => {
    const codec = createZstdCodec({ implementation: 'binary' });
    const error = await backupErrorOf(decodeBytes(codec, Buffer.from('definitely not zstd data')));
    expect(error.code).toBe('CODEC_FAILED');
    expect(error.message).toMatch(/exited with code \d+: .*zstd/s);
  });

  it('check (zstd -t) accepts whole data, outputs nothing, and fails truncated or damaged data like decode', async () => {
    const codec = createZstdCodec({ implementation: 'binary' });
    const encoded = await encodeBytes(codec, randomBytes(300_000));
    const check = async (input: Buffer) => {
      const checker = codec.check!(codec.describe());
      const [, out] = await Promise.all([pipeline(Readable.from([input]), checker), collect(checker)]);
      return out;
    };
    expect(codec.check!(codec.describe())).toBeInstanceOf(ChildProcessDuplex);
    expect((await check(encoded)).length).toBe(0);
    const truncated = await backupErrorOf(check(encoded.subarray(0, Math.floor(encoded.length / 2))));
    expect(truncated.code).toBe('CODEC_FAILED');
    expect(truncated.message).toMatch(/premature end/);
    const damaged = Buffer.from(encoded);
    damaged[damaged.length >> 1] = damaged[damaged.length >> 1]! ^ 0xff;
    expect((await backupErrorOf(check(damaged))).code).toBe('CODEC_FAILED');
    expect(() => codec.check!({ name: 'gzip' })).toThrow(/gzip/);
  });

  it('kills the child when the stream is destroyed', async () => {
    const encoder = createZstdCodec({ implementation: 'binary' }).encode();
    // The write callback runs once the child is spawned and has taken the bytes.
    await new Promise<void>((resolve, reject) => encoder.write(randomBytes(100_000), (e) => (e ? reject(e) : resolve())));
    const child = (encoder as unknown as { child: ChildProcess }).child;
    expect(child.exitCode).toBeNull();
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal)));
    encoder.destroy();
    expect(await exited).toBe('SIGTERM');
  });
});

describe('zstd frame scanner (guards Node zlib zstd against truncated input)', () => {
  const zstdOf = (data: Buffer, args: string[] = []) => runTool('zstd', ['-q', '-c', ...args], Readable.from([data]));
  const scan = (data: Buffer) => collect(Readable.from([data]).pipe(new ZstdFrameScanner()));
  const skippable = (payload: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0x184d2a53, 0);
    head.writeUInt32LE(payload.length, 4);
    return Buffer.concat([head, payload]);
  };

  it('accepts real zstd output of every block kind, unchanged, and fails every truncation of it', async () => {
    const samples = [
      await zstdOf(randomBytes(300_000)), // raw blocks
      await zstdOf(Buffer.alloc(400_000, 0x61)), // RLE blocks
      await zstdOf(Buffer.from('scholaria chunk text '.repeat(20_000)), ['-19']), // compressed blocks
      await zstdOf(Buffer.from('no checksum'), ['--no-check']),
      await zstdOf(Buffer.alloc(0)),
      Buffer.concat([await zstdOf(Buffer.from('frame one')), skippable(randomBytes(33)), await zstdOf(Buffer.from('two'))]),
    ];
    for (const sample of samples) {
      expect((await scan(sample)).equals(sample)).toBe(true);
      const cuts = new Set([1, 3, 4, 5, 6, 9, 12, Math.floor(sample.length / 2), sample.length - 4, sample.length - 1]);
      for (const cut of cuts) {
        if (cut <= 0 || cut >= sample.length) continue;
        const error = await backupErrorOf(scan(sample.subarray(0, cut)));
        expect(error.code).toBe('CODEC_FAILED');
        expect(error.message).toMatch(/truncated|ends inside/);
      }
    }
  });

  it('reads a file-mode frame carrying its content size', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'scanner-'));
    try {
      const file = path.join(dir, 'input.bin');
      await writeFile(file, randomBytes(1000));
      const out = await runTool('zstd', ['-q', '-c', file], Readable.from([]));
      expect((await scan(out)).equals(out)).toBe(true);
      expect((await backupErrorOf(scan(out.subarray(0, out.length - 2)))).code).toBe('CODEC_FAILED');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects empty input and data that is not zstd', async () => {
    expect((await backupErrorOf(scan(Buffer.alloc(0)))).message).toContain('empty');
    expect((await backupErrorOf(scan(Buffer.from('PGDMP custom dump')))).message).toContain('not zstd');
  });
});
