import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { getFreePort, registerCleanup } from '@scholaria/backup-testkit';

export interface ProxiedRequest {
  n: number;
  method: string;
  /** Path and query as sent. */
  path: string;
  /** The SDK's attempt number of this request (from `amz-sdk-request: attempt=N`), 1 when absent. */
  attempt: number;
  /** What the proxy did with it. */
  fault: Fault;
}

/** What to do with one request: pass it on, answer with an error, never answer, reset, or cut the answer. */
export type Fault = 'pass' | 500 | 503 | 'hang' | 'reset' | { cutAfterBytes: number };

export interface FaultProxy {
  url: string;
  requests: ProxiedRequest[];
  /** Decides the fault for each request; replace it at any time. */
  rule: (r: Omit<ProxiedRequest, 'fault'>) => Fault;
  faultsServed(): number;
  stop(): Promise<void>;
}

function s3Error(res: ServerResponse, status: number): void {
  const code = status === 503 ? 'SlowDown' : 'InternalError';
  res.writeHead(status, { 'content-type': 'application/xml', connection: 'close' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the fault proxy</Message><RequestId>fault</RequestId></Error>`);
}

/**
 * An HTTP proxy on loopback in front of an S3 endpoint that injects faults per request. Requests
 * are forwarded with their original headers (Host included), so SigV4 signatures stay valid.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const port = await getFreePort();
  const sockets = new Set<Socket>();
  let n = 0;
  const proxy: FaultProxy = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    rule: () => 'pass',
    faultsServed: () => proxy.requests.filter((r) => r.fault !== 'pass').length,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      unregister();
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const attempt = Number(/attempt=(\d+)/.exec(String(req.headers['amz-sdk-request'] ?? ''))?.[1] ?? 1);
    const info = { n: ++n, method: req.method ?? 'GET', path: req.url ?? '/', attempt };
    const fault = proxy.rule(info);
    proxy.requests.push({ ...info, fault });
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 500 || fault === 503 || fault === 'hang') {
      req.resume();
      req.on('end', () => {
        if (fault !== 'hang') s3Error(res, fault);
      });
      return;
    }
    const up = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (typeof fault === 'object') {
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            const room = fault.cutAfterBytes - sent;
            if (room <= 0) return;
            res.write(chunk.subarray(0, room));
            sent += Math.min(room, chunk.length);
            if (sent >= fault.cutAfterBytes) setTimeout(() => res.socket?.destroy(), 20);
          });
          upRes.on('end', () => {
            if (sent < fault.cutAfterBytes) res.end();
          });
        } else {
          upRes.pipe(res);
        }
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const unregister = registerCleanup(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return proxy;
}
