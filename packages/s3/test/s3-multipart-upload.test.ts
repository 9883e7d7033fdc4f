import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { BackupError } from '@scholaria/backup-core';
import type { S3TestServer } from '@scholaria/backup-testkit';
import { describe, expect, it } from 'vitest';
import { StreamUploadError, uploadStream } from '../src/multipart-upload.js';
import { bodyOf, controlledBody, httpProxy, MiB, readAll, recordingClient, storageOn, useS3Server, waitFor, xml } from './helpers.js';

const PART = 5 * MiB;

let s3: S3TestServer;
let raw: S3Client;
useS3Server((server, client) => {
  s3 = server;
  raw = client;
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `data` in chunks of odd sizes, so part boundaries fall inside chunks. */
function oddChunks(data: Buffer): Readable {
  const sizes = [1, 65_537, 300_001, 7, 1_048_573];
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - offset);
    chunks.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return Readable.from(chunks, { objectMode: false });
}

async function openUploads(prefix: string): Promise<number> {
  const listed = await raw.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }));
  return listed.Uploads?.length ?? 0;
}

async function objectExists(key: string): Promise<boolean> {
  return raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(
    () => true,
    () => false,
  );
}

describe('part boundaries', () => {
  const cases: [string, number, number][] = [
    ['empty', 0, 0],
    ['1 byte', 1, 0],
    ['one part less a byte', PART - 1, 0],
    ['exactly one part', PART, 0],
    ['one part and a byte', PART + 1, 2],
    ['exactly three parts', 3 * PART, 3],
  ];
  for (const [label, bytes, parts] of cases) {
    it(`${label} (${bytes} bytes): ${parts === 0 ? 'one PutObject' : `${parts} parts`}, read back byte for byte`, async () => {
      const { client, requests } = recordingClient(s3);
      const storage = storageOn(s3, { client, partSizeBytes: PART, queueSize: 2 });
      const data = randomBytes(bytes);
      const { size } = await storage.put('b/object.bin', oddChunks(data));
      expect(size).toBe(bytes);
      const commands = requests.map((r) => r.command);
      if (parts === 0) {
        expect(commands).toEqual(['PutObject']);
        expect(requests[0]!.headers['content-length']).toBe(String(bytes));
      } else {
        const uploads = requests.filter((r) => r.command === 'UploadPart');
        expect(uploads.map((r) => Number(r.query.partNumber)).sort((a, b) => a - b)).toEqual(Array.from({ length: parts }, (_, i) => i + 1));
        const lengths = uploads.map((r) => [Number(r.query.partNumber), Number(r.headers['content-length'])]).sort((a, b) => a[0]! - b[0]!);
        expect(lengths.map(([, n]) => n)).toEqual(Array.from({ length: parts }, (_, i) => (i < parts - 1 ? PART : bytes - (parts - 1) * PART)));
        expect(commands.filter((c) => c === 'CreateMultipartUpload')).toHaveLength(1);
        expect(commands.at(-1)).toBe('CompleteMultipartUpload');
        expect(commands).not.toContain('PutObject');
      }
      const back = await readAll(await storage.get('b/object.bin'));
      expect(back.length).toBe(bytes);
      expect(sha256(back)).toBe(sha256(data));
      client.destroy();
    });
  }

  it('a body of one large Buffer and a body of strings are cut the same way', async () => {
    const storage = storageOn(s3, { partSizeBytes: PART });
    const data = randomBytes(2 * PART + 3);
    await storage.put('one-chunk.bin', bodyOf(data));
    expect(sha256(await readAll(await storage.get('one-chunk.bin')))).toBe(sha256(data));
    const text = 'x'.repeat(PART + 10);
    await storage.put('strings.txt', Readable.from([text.slice(0, 100), text.slice(100)]));
    expect((await readAll(await storage.get('strings.txt'))).toString()).toBe(text);
    await storage.close();
  });
});

describe('checksums', () => {
  it('with checksumAlgorithm, every part carries it and CompleteMultipartUpload lists the parts\' checksums in part order', async () => {
    const completes: string[] = [];
    // s3rver predates flexible checksums: echo each part's checksum in its answer, as S3 does.
    const proxy = await httpProxy(
      s3.endpoint,
      (req, body) => {
        if (req.method === 'POST' && req.url?.includes('uploadId=')) completes.push(body.toString());
        return false;
      },
      (req, _body, headers) => {
        if (req.method === 'PUT' && req.url?.includes('partNumber=')) headers['x-amz-checksum-sha256'] = req.headers['x-amz-checksum-sha256'];
      },
    );
    const { client, requests } = recordingClient({ ...s3, clientConfig: { ...s3.clientConfig, endpoint: proxy.endpoint } });
    try {
      const storage = storageOn(s3, { client, partSizeBytes: PART, queueSize: 3, checksumAlgorithm: 'SHA256' });
      const data = randomBytes(3 * PART + 5);
      await storage.put('sums/object.bin', oddChunks(data));
      expect(requests.find((r) => r.command === 'CreateMultipartUpload')!.headers['x-amz-checksum-algorithm']).toBe('SHA256');
      const parts = requests.filter((r) => r.command === 'UploadPart').sort((a, b) => Number(a.query.partNumber) - Number(b.query.partNumber));
      expect(parts).toHaveLength(4);
      const expected = parts.map((p, i) => {
        const slice = data.subarray(i * PART, (i + 1) * PART);
        expect(p.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update(slice).digest('base64'));
        return p.headers['x-amz-checksum-sha256'];
      });
      expect(completes).toHaveLength(1);
      const listed = [...completes[0]!.matchAll(/<Part>.*?<ChecksumSHA256>([^<]+)<\/ChecksumSHA256>.*?<PartNumber>(\d+)<\/PartNumber>.*?<\/Part>/g)].map((m) => [
        Number(m[2]),
        m[1],
      ]);
      expect(listed).toEqual(expected.map((sum, i) => [i + 1, sum]));
      expect(sha256(await readAll(await storage.get('sums/object.bin')))).toBe(sha256(data));
    } finally {
      client.destroy();
      await proxy.close();
    }
  });
});

describe('memory: a fixed pool of part buffers', () => {
  /**
   * A proxy that holds every UploadPart answer until released, so the parts in flight stay in
   * flight and the test can see how far the storage reads its body meanwhile.
   */
  async function holdingProxy() {
    let held: (() => void)[] = [];
    let holding = true;
    const proxy = await httpProxy(s3.endpoint, async (req) => {
      if (holding && req.method === 'PUT' && req.url?.includes('partNumber=')) await new Promise<void>((resolve) => held.push(resolve));
      return false;
    });
    return {
      proxy,
      held: () => held.length,
      release() {
        holding = false;
        for (const resolve of held) resolve();
        held = [];
      },
    };
  }

  it('stops reading its body while queueSize parts are in flight and one more is full', async () => {
    const { proxy, held, release } = await holdingProxy();
    const storage = storageOn(s3, { endpoint: proxy.endpoint, partSizeBytes: PART, queueSize: 2 });
    const body = controlledBody();
    const putting = storage.put('held/object.bin', body.stream);
    putting.catch(() => undefined);
    const sent = createHash('sha256');
    let fed = 0;
    const total = 8 * PART;
    const feeding = (async () => {
      while (fed < total) {
        const chunk = randomBytes(256 * 1024);
        sent.update(chunk);
        fed += chunk.length;
        await body.feed(chunk);
      }
      body.end();
    })();
    try {
      await waitFor(() => held() === 2, 'two parts in flight');
      // Give a reader that ignored backpressure time to run ahead; the bound must hold anyway.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(held()).toBe(2);
      // Two parts sent, one full in the pool, and the chunk the reader waits with plus one the
      // stream buffers: nothing more was taken from the body.
      expect(fed).toBeGreaterThanOrEqual(3 * PART);
      expect(fed).toBeLessThanOrEqual(3 * PART + 2 * 256 * 1024);
      release();
      await feeding;
      expect(await putting).toEqual({ size: total });
      expect(sha256(await readAll(await storage.get('held/object.bin')))).toBe(sent.digest('hex'));
    } finally {
      release();
      await storage.close();
      await proxy.close();
    }
  });

  it('an abort while the reader waits for a free buffer: ABORTED, no object, no open multipart upload', async () => {
    const { proxy, held, release } = await holdingProxy();
    const storage = storageOn(s3, { endpoint: proxy.endpoint, partSizeBytes: PART, queueSize: 1 });
    const controller = new AbortController();
    const body = controlledBody();
    const putting = storage.put('held/aborted.bin', body.stream, { signal: controller.signal });
    putting.catch(() => undefined);
    void (async () => {
      for (let i = 0; i < 40; i++) await body.feed(randomBytes(MiB));
    })().catch(() => undefined);
    try {
      await waitFor(() => held() === 1, 'a part in flight');
      controller.abort(new Error('SIGTERM'));
      release();
      const error = await putting.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(BackupError.isInstance(error) && error.code).toBe('ABORTED');
      expect((error as Error).message).toContain('SIGTERM');
      expect(body.stream.destroyed).toBe(true);
      expect(await openUploads(`${storage.prefix}/`)).toBe(0);
      expect(await objectExists(`${storage.prefix}/held/aborted.bin`)).toBe(false);
    } finally {
      release();
      await storage.close();
      await proxy.close();
    }
  });
});

describe('failures leave nothing behind', () => {
  it('an input that fails after some parts: the input\'s error, no object, no open upload, a previous object intact', async () => {
    const storage = storageOn(s3, { partSizeBytes: PART, queueSize: 2 });
    await storage.put('f/object.bin', bodyOf('previous'));
    const body = controlledBody();
    const putting = storage.put('f/object.bin', body.stream);
    putting.catch(() => undefined);
    for (let i = 0; i < 3 * 5 + 2; i++) await body.feed(randomBytes(MiB));
    await waitFor(async () => (await openUploads(`${storage.prefix}/`)) === 1, 'an open multipart upload');
    body.fail(new Error('gzip: unexpected end of file'));
    const error = await putting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(BackupError.isInstance(error) && error.code).toBe('STORAGE_FAILED');
    expect((error as Error).message).toMatch(/put "f\/object.bin" failed because its input stream failed: gzip: unexpected end of file/);
    expect(await openUploads(`${storage.prefix}/`)).toBe(0);
    expect((await readAll(await storage.get('f/object.bin'))).toString()).toBe('previous');
    await storage.close();
  });

  it('a part the service refuses: the S3 error, the body destroyed, no object, no open upload', async () => {
    const proxy = await httpProxy(s3.endpoint, (req, _body, res) => {
      if (req.method !== 'PUT' || !req.url?.includes('partNumber=2')) return false;
      xml(res, 403, '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      return true;
    });
    const storage = storageOn(s3, { endpoint: proxy.endpoint, partSizeBytes: PART, queueSize: 2 });
    try {
      const body = Readable.from((function* () {
        for (let i = 0; i < 40; i++) yield randomBytes(MiB);
      })(), { objectMode: false });
      const error = await storage.put('f/refused.bin', body).catch((e: unknown) => e);
      expect(BackupError.isInstance(error) && error.code).toBe('AUTH_FAILED');
      expect((error as Error).message).toMatch(/put "f\/refused.bin" was refused: .*AccessDenied/);
      expect(body.destroyed).toBe(true);
      expect(proxy.seen.some((r) => r.startsWith('DELETE') && r.includes('uploadId='))).toBe(true);
      expect(proxy.seen.some((r) => r.startsWith('POST') && r.includes('uploadId='))).toBe(false);
      expect(await openUploads(`${storage.prefix}/`)).toBe(0);
      expect(await objectExists(`${storage.prefix}/f/refused.bin`)).toBe(false);
    } finally {
      await storage.close();
      await proxy.close();
    }
  });

  it('an abort that fails twice: the put\'s error says parts may remain (orphanedUpload)', async () => {
    const { client } = recordingClient(s3, (command) =>
      command === 'AbortMultipartUpload' ? Object.assign(new Error('injected: proxy said no'), { name: 'BadRequest' }) : undefined,
    );
    const storage = storageOn(s3, { client, partSizeBytes: PART, queueSize: 1 });
    const body = controlledBody();
    const putting = storage.put('f/orphan.bin', body.stream);
    putting.catch(() => undefined);
    for (let i = 0; i < 7; i++) await body.feed(randomBytes(MiB));
    await waitFor(async () => (await openUploads(`${storage.prefix}/`)) === 1, 'an open multipart upload');
    body.fail(new Error('source gone'));
    const error = await putting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).message).toMatch(/source gone/);
    expect((error as BackupError).details).toMatchObject({ orphanedUpload: true });
    expect((error as BackupError).hint).toMatch(/could not be aborted \(injected: proxy said no\)/);
    // Clean up what the test left on purpose.
    const listed = await raw.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: `${storage.prefix}/` }));
    for (const u of listed.Uploads ?? []) await raw.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: u.Key, UploadId: u.UploadId }));
    client.destroy();
  });
});

describe('the 10,000-part limit', () => {
  const upload = (body: Readable, requests?: string[]) => {
    const client = new S3Client(s3.clientConfig);
    if (requests) {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          requests.push(String(context.commandName).replace(/Command$/, ''));
          return next(args);
        },
        { step: 'initialize', name: 'recordCommands' },
      );
    }
    const Key = `limit/${randomBytes(6).toString('hex')}`;
    return {
      Key,
      client,
      done: uploadStream(body, {
        client,
        params: { Bucket: s3.bucket, Key },
        partSize: PART,
        queueSize: 2,
        maxParts: 2,
        abortUpload: async (UploadId) => void (await client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId }))),
      }),
    };
  };

  it('an object of exactly maxParts parts fits', async () => {
    const { done, client } = upload(bodyOf(randomBytes(2 * PART)));
    expect(await done).toEqual({ size: 2 * PART });
    client.destroy();
  });

  it('one byte more fails before the part past the limit is sent, and the upload is aborted', async () => {
    const requests: string[] = [];
    const { done, client, Key } = upload(oddChunks(randomBytes(2 * PART + 1)), requests);
    const error = await done.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamUploadError);
    expect((error as StreamUploadError).reason).toBe('part-limit');
    expect(requests.filter((c) => c === 'UploadPart').length).toBeLessThanOrEqual(2);
    expect(requests).toContain('AbortMultipartUpload');
    expect(requests).not.toContain('CompleteMultipartUpload');
    expect(await openUploads(Key)).toBe(0);
    expect(await objectExists(Key)).toBe(false);
    client.destroy();
  });
});
