import type { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type ChecksumAlgorithm,
  type CompletedPart,
  type PutObjectCommandInput,
  type S3Client,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import { MAX_PARTS } from './s3-storage-options.js';

/** What a streamed upload sets on the object: everything of PutObject but the body. */
export type StreamUploadParams = Omit<PutObjectCommandInput, 'Body' | 'ContentLength'> & { Bucket: string; Key: string };

export interface StreamUploadOptions {
  client: S3Client;
  params: StreamUploadParams;
  partSize: number;
  /** Parts sent at once; the reader waits while this many are in flight. */
  queueSize: number;
  /** Stops reading, waits for the parts in flight and aborts the multipart upload. */
  signal?: AbortSignal;
  /** Removes the multipart upload's parts; called once after any failure. */
  abortUpload(uploadId: string): Promise<void>;
  /** S3's limit; lower only in tests. */
  maxParts?: number;
}

/** Why a streamed upload failed: its input, the service, the part limit or the caller's signal. */
export type StreamUploadFailure = 'input' | 'service' | 'part-limit' | 'aborted';

export class StreamUploadError extends Error {
  override readonly name = 'StreamUploadError';
  constructor(
    readonly reason: StreamUploadFailure,
    override readonly cause: unknown,
    /** Set when the multipart upload could not be aborted, so its parts may remain. */
    readonly abortProblem?: string,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** The client's own checksum setting, which for a caller's ready client may differ from ours. */
export async function requestChecksumCalculation(client: S3Client): Promise<string | undefined> {
  const setting: unknown = client.config.requestChecksumCalculation;
  return typeof setting === 'function' ? String(await (setting as () => Promise<unknown>)()) : (setting as string | undefined);
}

const PART_CHECKSUMS = ['ChecksumCRC32', 'ChecksumCRC32C', 'ChecksumCRC64NVME', 'ChecksumSHA1', 'ChecksumSHA256'] as const;

function completedPart(partNumber: number, out: UploadPartCommandOutput): CompletedPart {
  if (!out.ETag) throw new Error(`part ${partNumber}: the UploadPart answer has no ETag (a proxy or CORS rule hiding the header?)`);
  const part: CompletedPart = { PartNumber: partNumber, ETag: out.ETag };
  for (const field of PART_CHECKSUMS) if (out[field]) part[field] = out[field];
  return part;
}

/**
 * Streams `body` to S3 with bounded memory. An object that fits in one part goes as one
 * PutObject; a larger one as a multipart upload whose parts are filled into a fixed pool of at
 * most queueSize + 1 buffers of partSize bytes, allocated on first use and reused: queueSize
 * parts in flight and one filling. The body is not read while every buffer is busy, so memory
 * is about (queueSize + 1) x partSize whatever the object size, and no part is copied twice.
 * Any failure (the body, a part, the signal) waits for the parts in flight, then aborts the
 * multipart upload; the body is destroyed. Throws a StreamUploadError saying whose fault it was.
 */
export async function uploadStream(body: Readable, o: StreamUploadOptions): Promise<{ size: number }> {
  const { client, params, partSize, queueSize, signal } = o;
  const maxParts = o.maxParts ?? MAX_PARTS;
  const mode = await requestChecksumCalculation(client);
  // As lib-storage does: where the SDK adds checksums by default, the upload must announce one.
  const algorithm: ChecksumAlgorithm | undefined = params.ChecksumAlgorithm ?? (mode === 'WHEN_SUPPORTED' ? 'CRC32' : undefined);

  let failure: StreamUploadError | undefined;
  /** Records the first failure and stops the reader, also while it waits for a slow input. */
  const fail = (reason: StreamUploadFailure, cause: unknown) => {
    failure ??= new StreamUploadError(reason, cause);
    body.destroy();
  };
  const onAbort = () => fail('aborted', signal?.reason);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });

  // Part 1 is kept as the chunks read (no copy) until it overflows: a small object (manifest,
  // checksums, a lock) then costs one PutObject and no part-sized buffer.
  let head: Buffer[] | undefined = [];
  let size = 0;
  const free: Buffer[] = [];
  let allocated = 0;
  let filling: Buffer | undefined;
  let filled = 0;
  let nextPart = 1;
  let uploadId: string | undefined;
  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();

  const takeBuffer = (): Buffer => {
    const buffer = free.pop();
    if (buffer) return buffer;
    // Never reached with more than queueSize parts in flight; a guard against a broken invariant.
    if (allocated > queueSize) throw new Error(`multipart upload: all ${allocated} part buffers are busy`);
    allocated++;
    return Buffer.allocUnsafe(partSize);
  };

  const throwIfFailed = () => {
    if (failure) throw failure;
  };

  const send = async (buffer: Buffer, length: number): Promise<void> => {
    if (uploadId === undefined) {
      const created = await client.send(
        new CreateMultipartUploadCommand({ ...params, ...(algorithm ? { ChecksumAlgorithm: algorithm } : {}) }),
      );
      if (!created.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
      uploadId = created.UploadId;
      throwIfFailed();
    }
    while (inFlight.size >= queueSize) {
      await Promise.race(inFlight);
      throwIfFailed();
    }
    const partNumber = nextPart++;
    const task: Promise<void> = client
      .send(
        new UploadPartCommand({
          Bucket: params.Bucket,
          Key: params.Key,
          UploadId: uploadId,
          PartNumber: partNumber,
          // A Buffer, so the SDK can resend it when it retries the part.
          Body: length === buffer.length ? buffer : buffer.subarray(0, length),
          ContentLength: length,
          ...(algorithm ? { ChecksumAlgorithm: algorithm } : {}),
        }),
      )
      .then((out) => void parts.push(completedPart(partNumber, out)))
      .catch((error: unknown) => fail('service', error))
      .finally(() => {
        inFlight.delete(task);
        free.push(buffer);
      });
    inFlight.add(task);
  };

  try {
    try {
      for await (const chunk of body) {
        throwIfFailed();
        const bytes = toBuffer(chunk as Buffer | Uint8Array | string);
        size += bytes.length;
        if (head) {
          if (size <= partSize) {
            head.push(bytes);
            continue;
          }
          filling = takeBuffer();
          filled = 0;
          for (const held of head) filled += held.copy(filling, filled);
          head = undefined;
        }
        for (let offset = 0; offset < bytes.length; ) {
          if (filled === partSize) {
            // More bytes follow this full part: it is not the last one.
            if (nextPart >= maxParts) throw new StreamUploadError('part-limit', new Error(`more than ${maxParts} parts`));
            await send(filling!, partSize);
            filling = takeBuffer();
            filled = 0;
          }
          const n = bytes.copy(filling!, filled, offset, Math.min(bytes.length, offset + partSize - filled));
          filled += n;
          offset += n;
        }
      }
    } catch (error) {
      if (error instanceof StreamUploadError) throw error;
      // The body is destroyed by us only after a failure was recorded: report that one, not
      // the read it broke off. Anything else is the input's own error.
      throwIfFailed();
      failure = new StreamUploadError('input', error);
      throw failure;
    }
    throwIfFailed();

    if (head) {
      const data = head.length === 1 ? head[0]! : Buffer.concat(head, size);
      head = undefined;
      await client.send(new PutObjectCommand({ ...params, Body: data, ContentLength: data.length }));
      return { size };
    }
    await send(filling!, filled);
    await Promise.all(inFlight);
    throwIfFailed();
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
    );
    uploadId = undefined;
    return { size };
  } catch (error) {
    const thrown = error instanceof StreamUploadError ? error : (failure ?? new StreamUploadError('service', error));
    if (!body.destroyed) body.destroy();
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) {
      try {
        await o.abortUpload(uploadId);
      } catch (abortError) {
        throw new StreamUploadError(thrown.reason, thrown.cause, abortError instanceof Error ? abortError.message : String(abortError));
      }
    }
    throw thrown;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function toBuffer(chunk: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  return typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
