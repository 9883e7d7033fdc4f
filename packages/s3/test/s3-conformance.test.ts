import { afterAll, beforeAll } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { startS3, storageConformance, type S3TestServer } from '@scholaria/backup-testkit';
import { createS3Storage } from '@scholaria/backup-s3';

const MiB = 1024 * 1024;
let s3: S3TestServer;

beforeAll(async () => {
  s3 = await startS3();
  // The large-object test measures process RSS, which also grows once when the SDK's multipart
  // code and the allocator first warm up (the other tests only make single-part puts). Warm up
  // here so the measurement is about the put itself.
  const warm = createS3Storage({ bucket: s3.bucket, prefix: 'warm-up', endpoint: s3.endpoint, credentials: s3.credentials, partSizeBytes: 5 * MiB });
  await warm.put('warm.bin', Readable.from([randomBytes(12 * MiB)], { objectMode: false }));
  await warm.delete('warm.bin');
  await warm.close();
}, 60_000);
afterAll(async () => {
  await s3?.stop();
});

// Each test gets a fresh prefix in the one bucket, which also checks that the storage prefix
// is stripped from every key it returns. Parts of 5 MiB (S3's minimum) make the 100 MiB object
// a 20-part multipart upload.
storageConformance({
  name: 's3 (s3rver)',
  create: async () => {
    const storage = createS3Storage({
      bucket: s3.bucket,
      prefix: `conformance/${randomUUID()}`,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: s3.credentials,
      partSizeBytes: 5 * MiB,
      queueSize: 2,
    });
    return { storage };
  },
  // S3 declares deleteMany only: no free-space figure, no local files.
  skip: { capacity: true, localFiles: true },
  largeObjectBytes: 100 * MiB,
});
