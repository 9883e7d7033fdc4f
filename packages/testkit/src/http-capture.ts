import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { getFreePort } from './free-port.js';
import { registerCleanup } from './cleanup.js';

export interface CapturedRequest {
  method: string;
  /** Path and query string, as requested (`/hooks/abc?x=1`). */
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON when it is JSON (whatever the content type says), else undefined. */
  json?: unknown;
}

export interface HttpCaptureResponse {
  /** Default 200. */
  status?: number;
  /** A string or Buffer is sent as is, anything else as JSON. Default 'ok'. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer after this many milliseconds. */
  delayMs?: number;
  /** Never answer (the socket stays open until the client gives up or `stop()`). */
  hang?: boolean;
}

export interface StartHttpCaptureOptions {
  /** Decides the answer to request `index` (0-based); default `{ status: 200, body: 'ok' }`. */
  respond?: (request: CapturedRequest, index: number) => HttpCaptureResponse | undefined;
}

export interface HttpCapture {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  host: string;
  port: number;
  /** Every request received, in order, including those answered with an error or left hanging. */
  requests: CapturedRequest[];
  /** Resolves once `n` requests arrived; rejects after `timeoutMs` (default 10 s). */
  waitForRequests(n: number, timeoutMs?: number): Promise<CapturedRequest[]>;
  /** Closes the server and destroys every open socket, hanging ones included. */
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Starts a real HTTP server on 127.0.0.1 at a random port that records every request. */
export async function startHttpCapture(options: StartHttpCaptureOptions = {}): Promise<HttpCapture> {
  const host = '127.0.0.1';
  const port = await getFreePort(host);
  const requests: CapturedRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const json = parseJson(body);
    const captured: CapturedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body,
      ...(json !== undefined ? { json } : {}),
    };
    const index = requests.length;
    // Recorded before answering: a client that got its response can rely on the record.
    requests.push(captured);
    for (const w of [...waiters]) w();

    const answer = options.respond?.(captured, index) ?? {};
    if (answer.hang) return;
    const send = () => {
      const status = answer.status ?? 200;
      const payload =
        answer.body === undefined
          ? 'ok'
          : typeof answer.body === 'string' || Buffer.isBuffer(answer.body)
            ? answer.body
            : JSON.stringify(answer.body);
      const contentType =
        answer.body !== undefined && typeof answer.body !== 'string' && !Buffer.isBuffer(answer.body)
          ? 'application/json'
          : 'text/plain; charset=utf-8';
      res.writeHead(status, { 'content-type': contentType, ...(answer.headers ?? {}) });
      res.end(status === 204 || status === 304 ? undefined : payload);
    };
    if (answer.delayMs && answer.delayMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) send();
      }, answer.delayMs);
      timers.add(timer);
    } else {
      send();
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
    }).finally(() => {
      unregister();
      for (const w of [...waiters]) w();
    });
    return stopping;
  };
  const unregister = registerCleanup(stop);

  return {
    url: `http://${host}:${port}`,
    host,
    port,
    requests,
    waitForRequests(n: number, timeoutMs = 10_000) {
      return new Promise<CapturedRequest[]>((resolve, reject) => {
        const check = () => {
          if (requests.length >= n) {
            cleanup();
            resolve(requests.slice());
          } else if (stopped) {
            cleanup();
            reject(new Error(`HTTP capture stopped with ${requests.length} of ${n} requests`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`waited ${timeoutMs} ms for ${n} requests, got ${requests.length}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    stop,
  };
}
