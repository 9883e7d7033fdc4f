import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Feeds `data` in uneven slices so chunk boundaries never line up with age's 64 KiB chunks. */
export function sliced(data: Buffer, maxSlice = 50_000): Readable {
  let offset = 0;
  let turn = 0;
  return new Readable({
    read() {
      if (offset >= data.length) return void this.push(null);
      const size = 1 + ((turn++ * 7919) % maxSlice);
      this.push(data.subarray(offset, offset + size));
      offset += size;
    },
  });
}

export async function collect(source: Readable, ...transforms: Duplex[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline([
    source,
    ...transforms,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        parts.push(chunk);
        cb();
      },
    }),
  ] as unknown as [Readable, Writable]);
  return Buffer.concat(parts);
}

/** Runs a pipeline and returns what came out before it failed, plus the error (or undefined). */
export async function collectUntilError(source: Readable, ...transforms: Duplex[]): Promise<{ out: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    await pipeline([
      source,
      ...transforms,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          parts.push(chunk);
          cb();
        },
      }),
    ] as unknown as [Readable, Writable]);
    return { out: Buffer.concat(parts), error: undefined };
  } catch (error) {
    return { out: Buffer.concat(parts), error };
  }
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export const randomData = (size: number): Buffer => randomBytes(size);
