import { childProcessEnv } from '../util/child-env.js';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import * as stream from 'node:stream';
import type { Duplex } from 'node:stream';
import * as zlib from 'node:zlib';
import { z } from 'zod';
import { ConfigError } from '../errors/backup-error.js';
import type { Codec, CodecRecord, ExternalDecoder, ExternalEncoder } from '../interfaces/codec.js';
import { ChildProcessDuplex } from './child-process-duplex.js';
import { ZstdFrameScanner } from './zstd-frame-scanner.js';
import { assertRecordFor, codecFailure, isZlibError, mapStreamErrors, parseCodecOptions } from './codec-support.js';

export const zstdCodecOptionsSchema = z
  .object({
    /** 1 fastest ... 19 smallest (the `zstd` tool's regular range). */
    level: z.number().int().min(1).max(19).default(3),
    /** Compression threads; 0 = one per core. Decompression is single-threaded in zstd. */
    threads: z.number().int().min(0).max(256).default(0),
    /** 'auto': Node's zlib when it has zstd (Node >= 22.15), else the `zstd` program. */
    implementation: z.enum(['auto', 'zlib', 'binary']).default('auto'),
    /** The `zstd` program used by the binary implementation. */
    binary: z.string().min(1).default('zstd'),
  })
  .strict();

export type ZstdCodecOptions = z.input<typeof zstdCodecOptionsSchema>;

const INSTALL_HINT = 'apt-get install zstd (or run on Node >= 22.15, which has zstd built in)';

// Typed loosely: @types/node for Node 20 does not declare the zstd API.
interface ZlibWithZstd {
  createZstdCompress(options?: { params?: Record<number, number> }): Duplex;
  createZstdDecompress(options?: { params?: Record<number, number> }): Duplex;
  constants: Record<string, number>;
}

// stream.compose exists on every Node that has zlib zstd (>= 22.15); @types/node 20 lacks it.
const composeStreams = (...streams: Duplex[]): Duplex =>
  (stream as unknown as { compose: (...s: Duplex[]) => Duplex }).compose(...streams);

function zlibZstd(): ZlibWithZstd | undefined {
  const candidate = zlib as unknown as Partial<ZlibWithZstd>;
  return typeof candidate.createZstdCompress === 'function' && typeof candidate.createZstdDecompress === 'function'
    ? (candidate as ZlibWithZstd)
    : undefined;
}

/** Whether zstd can be used here, and how: Node's zlib, the `zstd` program, or not at all. */
export async function zstdAvailable(
  options: { binary?: string } = {},
): Promise<{ available: boolean; via: 'zlib' | 'binary' | 'none' }> {
  if (zlibZstd()) return { available: true, via: 'zlib' };
  const works = await new Promise<boolean>((resolve) => {
    const child = spawn(options.binary ?? 'zstd', ['--version'], { stdio: 'ignore', env: childProcessEnv(['ZSTD_']) });
    child.once('error', () => resolve(false));
    child.once('close', (code) => resolve(code === 0));
  });
  return works ? { available: true, via: 'binary' } : { available: false, via: 'none' };
}

/**
 * The summary line `zstd -vv` prints on stderr: `(1234567 B => 45678 B, ...)` in zstd 1.5,
 * `(1234567 => 45678 bytes, ...)` in 1.4. The last one counts (one input here).
 */
export function zstdInputBytes(stderr: string): number | undefined {
  const matches = [...stderr.matchAll(/\(\s*(\d+)(?: B)? =>\s*\d+(?: B| bytes),/g)];
  const last = matches.at(-1);
  if (!last) return undefined;
  const n = Number(last[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The lines of zstd's stderr that say what went wrong, without the -vv banner and settings. */
function zstdErrorText(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /error|warning|zstd:|cannot|denied|not /i.test(l) && !l.startsWith('***'));
  return (errors.length > 0 ? errors : lines.slice(-3)).join('; ');
}

/** Options that make `zstd` print the exact byte counts on stderr and nothing per block. */
const COUNTING_FLAGS = ['-vv', '--no-progress'];
const PROBE_BYTES = 1000;
const countingProbes = new Map<string, Promise<boolean>>();

/**
 * Whether this `zstd` program runs and reports the exact number of bytes it read (the
 * manifest's rawSize when it compresses outside Node). Checked once per program.
 */
function reportsInputBytes(binary: string): Promise<boolean> {
  let probe = countingProbes.get(binary);
  if (!probe) {
    probe = new Promise<boolean>((resolve) => {
      let stderr = '';
      const child = spawn(binary, [...COUNTING_FLAGS, '-1', '-c'], { stdio: ['pipe', 'ignore', 'pipe'], windowsHide: true, env: childProcessEnv(['ZSTD_']) });
      child.once('error', () => resolve(false));
      child.stdin.on('error', () => undefined);
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (t: string) => (stderr += t));
      child.once('close', (code) => resolve(code === 0 && zstdInputBytes(stderr) === PROBE_BYTES));
      child.stdin.end(Buffer.alloc(PROBE_BYTES, 120));
    });
    countingProbes.set(binary, probe);
  }
  return probe;
}

/**
 * Zstandard, in the standard frame format (with content checksums) that `zstd -d` reads. Runs
 * outside the source's process when it uses the `zstd` program, which is what makes
 * `pg_dump -Z0 | zstd -T2` several times faster than pg_dump's own single-core compression.
 */
export function createZstdCodec(options: ZstdCodecOptions = {}): Codec {
  const { level, threads, implementation, binary } = parseCodecOptions(
    zstdCodecOptionsSchema,
    options,
    'createZstdCodec',
  );
  const native = zlibZstd();
  if (implementation === 'zlib' && !native) {
    throw new ConfigError('createZstdCodec: invalid options', [
      `implementation: "zlib" needs Node >= 22.15 (zlib.createZstdCompress); this is Node ${process.version}. Use "auto" or "binary"`,
    ]);
  }
  const useZlib = implementation === 'zlib' || (implementation === 'auto' && native !== undefined);

  const mapZlib = (direction: 'encode' | 'decode') => (e: Error) =>
    isZlibError(e) ? codecFailure('zstd', direction, e) : e;

  const zlibEncoder = (z: ZlibWithZstd): Duplex => {
    const c = z.constants;
    const params: Record<number, number> = {
      [c.ZSTD_c_compressionLevel as number]: level,
      [c.ZSTD_c_checksumFlag as number]: 1,
    };
    const workers = threads === 0 ? availableParallelism() : threads;
    if (workers > 1 && c.ZSTD_c_nbWorkers !== undefined) {
      try {
        return z.createZstdCompress({ params: { ...params, [c.ZSTD_c_nbWorkers]: workers } });
      } catch {
        // A libzstd built without multithreading refuses nbWorkers: compress on one thread.
      }
    }
    return z.createZstdCompress({ params });
  };

  const binaryStream = (direction: 'encode' | 'decode' | 'check') =>
    new ChildProcessDuplex({
      command: binary,
      // -t decompresses and checks the frames' content checksums without writing the output.
      args: direction === 'encode' ? ['-q', '-c', `-${level}`, `-T${threads}`] : direction === 'decode' ? ['-q', '-d', '-c'] : ['-q', '-t'],
      label: `zstd ${direction === 'encode' ? 'compression' : 'decompression'}`,
      missingHint: INSTALL_HINT,
      failureHint:
        direction === 'encode'
          ? 'check that the zstd program works (zstd --version) and that memory is available'
          : 'the data is not valid zstd or is damaged; run verify on the set to check its checksums',
    });

  return {
    specVersion: 'v1',
    name: 'zstd',
    kind: 'compression',
    extension: '.zst',
    manualDecode: 'zstd -d',
    encode: () => (useZlib ? mapStreamErrors(zlibEncoder(native!), mapZlib('encode')) : binaryStream('encode')),
    decode: (record?: CodecRecord) => {
      assertRecordFor('zstd', record);
      if (!useZlib) return binaryStream('decode');
      return composeStreams(new ZstdFrameScanner(), mapStreamErrors(native!.createZstdDecompress(), mapZlib('decode')));
    },
    ...(useZlib
      ? {}
      : {
          check: (record?: CodecRecord) => {
            assertRecordFor('zstd', record);
            return binaryStream('check');
          },
        }),
    describe: () => ({ name: 'zstd', params: { level } }),
    // The `zstd` program, also under 'auto' where Node's zlib would encode in-process: fed by
    // an OS pipe it keeps the uncompressed bytes out of Node altogether. 'zlib' means no program.
    externalEncoder: async (): Promise<ExternalEncoder | undefined> => {
      if (implementation === 'zlib' || !(await reportsInputBytes(binary))) return undefined;
      return {
        command: binary,
        args: ['-c', `-${level}`, `-T${threads}`, ...COUNTING_FLAGS],
        label: 'zstd compression',
        missingHint: INSTALL_HINT,
        failureHint: 'check that the zstd program works (zstd --version) and that memory is available',
        inputBytes: zstdInputBytes,
        errorText: zstdErrorText,
      };
    },
    // The `zstd` program also decodes where Node's zlib would (a restore then pipes it into
    // pg_restore without Node in between); it checks the frames' content checksums as `decode()` does.
    externalDecoder: async (record?: CodecRecord): Promise<ExternalDecoder | undefined> => {
      assertRecordFor('zstd', record);
      if (implementation === 'zlib' || !(await reportsInputBytes(binary))) return undefined;
      return {
        command: binary,
        args: ['-q', '-d', '-c'],
        checkArgs: ['-q', '-t'],
        label: 'zstd decompression',
        missingHint: INSTALL_HINT,
        failureHint: 'the data is not valid zstd or is damaged; run verify on the set to check its checksums',
      };
    },
  };
}
