import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { QdrantHttpError, QdrantTimeoutError } from './qdrant-errors.js';

/**
 * Raw HTTP for what @qdrant/js-client-rest cannot do: stream a snapshot download and stream a
 * multipart snapshot upload, both without holding the file in memory and with an inactivity
 * timeout instead of a total one (a multi-GB transfer may take an hour and still be healthy).
 */
export interface RawHttpConfig {
  baseUrl: URL;
  apiKey?: string;
  userAgent: string;
}

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path below the base URL, segments already encoded: '/collections/docs/snapshots'. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string | number>;
  body?: Readable;
  /** The request fails when no byte moves for this long. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
}

export function buildUrl(base: URL, path: string, query?: Record<string, string>): URL {
  const url = new URL(base.href);
  url.pathname = `${base.pathname.replace(/\/+$/, '')}${path}`;
  url.search = query ? new URLSearchParams(query).toString() : '';
  return url;
}

async function readSmallBody(res: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    if (size < limit) chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Sends one request and resolves with the response once its headers arrived with a status
 * below 400; rejects with QdrantHttpError (status + parsed body) otherwise. When `body` fails
 * (e.g. the artifact's checksum check), the request is aborted and that error is the rejection.
 */
export function rawRequest(config: RawHttpConfig, request: RawRequest): Promise<IncomingMessage> {
  const url = buildUrl(config.baseUrl, request.path, request.query);
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<IncomingMessage>((resolve, reject) => {
    let settled = false;
    let bodyError: unknown;
    let response: IncomingMessage | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    const headers: Record<string, string | number> = { 'user-agent': config.userAgent, ...request.headers };
    if (config.apiKey) headers['api-key'] = config.apiKey;
    // A fresh connection per transfer: keep-alive sockets would carry the idle timeout over.
    const req = transport.request(url, { method: request.method, headers, agent: false, signal: request.signal });
    req.setTimeout(request.idleTimeoutMs, () => {
      const error = new QdrantTimeoutError(request.idleTimeoutMs);
      response?.destroy(error);
      req.destroy(error);
    });
    req.on('error', (error) => {
      request.body?.destroy();
      settle(() => reject(bodyError ?? error));
    });
    req.on('response', (res) => {
      response = res;
      const status = res.statusCode ?? 0;
      if (status >= 400) {
        request.body?.unpipe(req);
        request.body?.destroy();
        readSmallBody(res).then(
          (body) => settle(() => reject(new QdrantHttpError(status, body))),
          (error: unknown) => settle(() => reject(error)),
        );
        return;
      }
      settle(() => resolve(res));
    });
    if (request.body) {
      request.body.once('error', (error) => {
        bodyError = error;
        req.destroy(error);
      });
      request.body.pipe(req);
    } else {
      req.end();
    }
  });
}

export async function readText(res: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error(`answer larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a JSON answer fully (small bodies only) and returns Qdrant's `result`. */
export async function readResult(res: IncomingMessage): Promise<unknown> {
  const body = await readSmallBody(res);
  if (body && typeof body === 'object' && 'result' in body) return (body as { result: unknown }).result;
  return body;
}

export interface MultipartBody {
  body: Readable;
  contentType: string;
  /** Known when the file size is known, so proxies that refuse chunked uploads still work. */
  contentLength?: number;
}

/**
 * A multipart/form-data body with one file field, streamed: the file bytes pass through as they
 * are read. With `size` given the body has a Content-Length and a short or long file is an error.
 */
export function multipartFileBody(field: string, filename: string, file: Readable, size?: number): MultipartBody {
  const boundary = `----scholaria-backup-${randomBytes(16).toString('hex')}`;
  const safeName = filename.replace(/["\r\n\\]/g, '_');
  const head = Buffer.from(
    `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="${field}"; filename="${safeName}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  async function* parts(): AsyncGenerator<Buffer> {
    yield head;
    let sent = 0;
    for await (const chunk of file) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      sent += buf.length;
      if (size !== undefined && sent > size) throw new Error(`${filename} is longer than the ${size} bytes recorded in the manifest`);
      yield buf;
    }
    if (size !== undefined && sent !== size) throw new Error(`${filename} has ${sent} bytes, the manifest recorded ${size}`);
    yield tail;
  }
  const body = Readable.from(parts(), { objectMode: false });
  body.once('close', () => {
    if (!file.destroyed) file.destroy();
  });
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    ...(size !== undefined ? { contentLength: head.length + size + tail.length } : {}),
  };
}
