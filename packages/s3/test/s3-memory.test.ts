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
// that buffered the object would grow.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

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

// Measured on this machine: steady state about (queueSize + 2) x partSize (the parts in flight,
// the part being assembled and its concatenated copy), with brief peaks of a few parts more
// while sockets still hold finished parts. The bounds below leave room for those peaks and
// still sit far below the object size.
describe('memory stays bounded while putting a large object', () => {
  it('5 MiB parts, queue 4: a 100 MiB object (20 parts) never has more than 12 parts of live memory', async () => {
    const used = await putMeasured(100 * MiB, { partSizeBytes: 5 * MiB, queueSize: 4 });
    console.log(`live Buffer memory during put (5 MiB parts, queue 4, 100 MiB object): ${used.toFixed(1)} MiB`);
    expect(used).toBeLessThan(12 * 5);
  }, 120_000);

  it('queue 1: a 60 MiB object (12 parts) never has more than 7 parts of live memory', async () => {
    const used = await putMeasured(60 * MiB, { partSizeBytes: 5 * MiB, queueSize: 1 });
    console.log(`live Buffer memory during put (5 MiB parts, queue 1, 60 MiB object): ${used.toFixed(1)} MiB`);
    expect(used).toBeLessThan(7 * 5);
  }, 120_000);
});
