import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

export interface ResumeOptions {
  /** How many times a broken transfer is resumed. */
  resumes: number;
  /** Whether a transfer error may be resumed (network errors and idle timeouts). */
  resumable: (error: unknown) => boolean;
  /** Opens the rest of the file from `offset` with `Range: bytes=<offset>-` (and `If-Range`). */
  reopen: (offset: number, validator: string | undefined) => Promise<IncomingMessage>;
  onResume?: (offset: number, error: unknown, attempt: number) => void;
}

function contentRangeStart(res: IncomingMessage): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
  return m ? Number(m[1]) : undefined;
}

/**
 * The body of a snapshot download that survives broken connections: when the transfer fails
 * midway it asks again from the first missing byte with `Range` (Qdrant serves local snapshot
 * files with actix-files `NamedFile`, which answers 206). A server that answers 200 instead
 * (a snapshot kept in S3 by Qdrant, a proxy without ranges, or a file that changed under
 * `If-Range`) sends the whole file again and the bytes already passed on are skipped; the
 * caller's checksum still covers the result. Bytes leave in order, each exactly once.
 */
export function resumableDownload(first: IncomingMessage, options: ResumeOptions): Readable {
  const validator = (first.headers.etag as string | undefined) ?? (first.headers['last-modified'] as string | undefined);
  let current = first;
  async function* bytes(): AsyncGenerator<Buffer> {
    let offset = 0;
    let skip = 0;
    let attempt = 0;
    try {
      for (;;) {
        try {
          for await (const raw of current) {
            let chunk = raw as Buffer;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            offset += chunk.length;
            yield chunk;
          }
          if (skip > 0) throw new Error(`the server sent fewer bytes than the ${offset + skip} already received`);
          return;
        } catch (error) {
          if (attempt >= options.resumes || !options.resumable(error)) throw error;
          attempt += 1;
          current.destroy();
          options.onResume?.(offset, error, attempt);
          current = await options.reopen(offset, validator);
          const status = current.statusCode ?? 0;
          if (status === 206) {
            const start = contentRangeStart(current);
            if (start === undefined || start > offset) {
              throw new Error(`the server resumed the download at ${String(current.headers['content-range'])}, not at byte ${offset}`);
            }
            skip = offset - start;
          } else {
            skip = offset;
          }
        }
      }
    } finally {
      current.destroy();
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}
