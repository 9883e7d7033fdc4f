import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { startS3, type S3TestServer } from '@scholaria/backup-testkit';
import { afterAll, beforeAll } from 'vitest';
import { createS3Storage, type S3StorageOptions } from '@scholaria/backup-s3';

export const MiB = 1024 * 1024;

/**
 * Starts one s3rver for the test file and a plain S3 client on it (to check what the storage
 * wrote), and stops both after the file's tests; `ready` gets them once they are up.
 */
export function useS3Server(ready: (s3: S3TestServer, client: S3Client) => void): void {
  let server: S3TestServer | undefined;
  let client: S3Client | undefined;
  beforeAll(async () => {
    server = await startS3();
    client = new S3Client(server.clientConfig);
    ready(server, client);
  });
  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  });
}

export interface RecordedRequest {
  command: string;
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string>;
}

/**
 * A client for the test server that records every request it sends (after signing), so tests
 * can check which S3 operations and headers the storage used. Optional `fail` lets a test make
 * one operation fail before it reaches the server.
 */
export function recordingClient(
  s3: S3TestServer,
  fail?: (command: string, attempt: number) => Error | undefined,
): { client: S3Client; requests: RecordedRequest[] } {
  const client = new S3Client({ ...s3.clientConfig, maxAttempts: 3 });
  const requests: RecordedRequest[] = [];
  const attempts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName ?? '').replace(/Command$/, '');
      const request = args.request as { method: string; path: string; query: Record<string, unknown>; headers: Record<string, string> };
      requests.push({ command, method: request.method, path: request.path, query: { ...request.query }, headers: { ...request.headers } });
      const attempt = (attempts.get(command) ?? 0) + 1;
      attempts.set(command, attempt);
      const injected = fail?.(command, attempt);
      if (injected) throw injected;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordRequests', priority: 'low' },
  );
  return { client, requests };
}

/** A storage on the test server under a fresh prefix. */
export function storageOn(s3: S3TestServer, options: Partial<S3StorageOptions> = {}) {
  const base = options.client
    ? { bucket: s3.bucket }
    : { bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials };
  return createS3Storage({ ...base, prefix: `t/${randomUUID()}`, ...options } as S3StorageOptions);
}

export function bodyOf(...chunks: (Buffer | string)[]): Readable {
  return Readable.from(
    chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)),
    { objectMode: false },
  );
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A body the test feeds by hand; `feed` resolves once the consumer asks for more. */
export function controlledBody() {
  let waiters: (() => void)[] = [];
  const stream = new Readable({
    read() {
      const ready = waiters;
      waiters = [];
      for (const resolve of ready) resolve();
    },
  });
  return {
    stream,
    feed(chunk: Buffer): Promise<void> {
      const drained = new Promise<void>((resolve) => waiters.push(resolve));
      stream.push(chunk);
      return drained;
    },
    end() {
      stream.push(null);
    },
    fail(error: Error) {
      stream.destroy(error);
    },
  };
}

export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Answers a request itself (fault injection) and returns true, or returns false to forward it; may wait first. */
export type Intercept = (req: IncomingMessage, body: Buffer, res: ServerResponse) => boolean | Promise<boolean>;

/**
 * An HTTP proxy in front of the test server. `intercept` sees each request with its whole body;
 * `onResponse` may change the headers of a forwarded answer.
 */
export async function httpProxy(
  target: string,
  intercept: Intercept,
  onResponse?: (req: IncomingMessage, body: Buffer, headers: IncomingHttpHeaders) => void,
): Promise<{ endpoint: string; seen: string[]; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const seen: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    seen.push(`${req.method} ${req.url}`);
    if (await intercept(req, body, res)) return;
    const upstream = request({ host: hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (up) => {
      onResponse?.(req, body, up.headers);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const xml = (res: ServerResponse, status: number, body: string) => {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
};
