import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startS3, type S3TestServer } from '@scholaria/backup-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, storageOn } from './helpers.js';

// RSS also counts garbage not yet collected and memory the allocator keeps, so it moves by tens
// of MiB for reasons unrelated to the storage. This test forces a collection before each sample
// and watches live Buffer memory (process.memoryUsage().arrayBuffers), which is what a storage
// that buffered the object would grow. Twice: V8 frees the memory of dead ArrayBuffers in a
// sweep that can trail the collection, and the second collection finishes the first one's.
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as () => void;
const gc = () => {
  collect();
  collect();
};

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3();
  // One multipart put first, so one-time allocations (SDK, sockets, s3rver) are not measured.
  await putMeasured(12 * MiB, { partSizeBytes: 5 * MiB });
}, 60_000);
afterAll(async () => {
  await s3?.stop();
});

async function putMeasured(totalBytes: number, options: { partSizeBytes?: number; queueSize?: number }) {
  const storage = storageOn(s3, options);
  const base = randomBytes(64 * 1024);
  const sent = createHash('sha256');
  let produced = 0;
  let index = 0;
  gc();
  const baseline = process.memoryUsage().arrayBuffers;
  let peak = baseline;
  const source = new Readable({
    read() {
      if (produced >= totalBytes) return void this.push(null);
      const chunk = Buffer.allocUnsafe(Math.min(base.length, totalBytes - produced));
      base.copy(chunk);
      chunk.writeUInt32LE(index++, 0);
      produced += chunk.length;
      sent.update(chunk);
      if (index % 48 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      }
      this.push(chunk);
    },
  });
  const { size } = await storage.put('mem/object.bin', source);
  const received = createHash('sha256');
  for await (const chunk of await storage.get('mem/object.bin')) received.update(chunk as Buffer);
  await storage.delete('mem/object.bin');
  await storage.close();
  expect(size).toBe(totalBytes);
  expect(received.digest('hex')).toBe(sent.digest('hex'));
  return (peak - baseline) / MiB;
}

// The storage fills parts into a pool of at most queueSize + 1 part buffers (queueSize in
// flight, one filling) and reads no further while every buffer is busy. Measured on this
// machine: (queueSize + 1) parts plus 0.2-0.4 MiB, run after run. The bound adds 2 MiB for the
// body's chunks and the test server's request buffers (s3rver runs in this process); a storage
// that copied each part once more (as lib-storage's Buffer.concat did) would exceed it.
const SLACK_MIB = 2;

describe('memory stays bounded while putting a large object', () => {
  it('5 MiB parts, queue 4: a 100 MiB object (20 parts) never has more than 5 parts (+ 2 MiB) of live memory', async () => {
    const used = await putMeasured(100 * MiB, { partSizeBytes: 5 * MiB, queueSize: 4 });
    console.log(`live Buffer memory during put (5 MiB parts, queue 4, 100 MiB object): ${used.toFixed(1)} MiB`);
    expect(used).toBeLessThan((4 + 1) * 5 + SLACK_MIB);
    // The samples see at least the part being filled, or they measure nothing.
    expect(used).toBeGreaterThan(5);
  }, 120_000);

  it('queue 1: a 60 MiB object (12 parts) never has more than 2 parts (+ 2 MiB) of live memory', async () => {
    const used = await putMeasured(60 * MiB, { partSizeBytes: 5 * MiB, queueSize: 1 });
    console.log(`live Buffer memory during put (5 MiB parts, queue 1, 60 MiB object): ${used.toFixed(1)} MiB`);
    expect(used).toBeLessThan((1 + 1) * 5 + SLACK_MIB);
    expect(used).toBeGreaterThan(5);
  }, 120_000);
});
