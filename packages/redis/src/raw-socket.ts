import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { RawEndpoint } from './redis-connection.js';
import { redisError } from './redis-errors.js';

/**
 * A plain or TLS socket to the same place the ioredis client reached, resolved once connected.
 * Failures are CONNECTION_FAILED naming `purpose` ('data', 'replication') and the target.
 */
export async function openSocket(endpoint: RawEndpoint, connectTimeoutMs: number, purpose: string, target: string, onread?: OnRead): Promise<Socket> {
  try {
    return await connectSocket(endpoint, connectTimeoutMs, onread);
  } catch (error) {
    throw redisError('CONNECTION_FAILED', `cannot open the ${purpose} connection to ${target}: ${(error as Error).message}`, 'Check that the server is reachable from this host (host, port, TLS).', {
      cause: error,
      retryable: true,
    });
  }
}

/**
 * `net.connect`'s `onread`: the socket reads into `buffer` (reused for every read) and calls
 * `callback` instead of emitting 'data'; returning false pauses it. Plain TCP and Unix sockets
 * only: TLS sockets ignore it, so callers check `endpoint.tls` before relying on it.
 */
export interface OnRead {
  buffer: Buffer;
  callback: (bytes: number, buffer: Buffer) => boolean;
}

function connectSocket(endpoint: RawEndpoint, connectTimeoutMs: number, onread?: OnRead): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    const base = endpoint.path ? { path: endpoint.path } : { host: endpoint.host ?? 'localhost', port: endpoint.port ?? 6379 };
    if (endpoint.tls) {
      const servername = endpoint.tls.servername ?? (endpoint.host && !isIP(endpoint.host) ? endpoint.host : undefined);
      socket = tlsConnect({ ...endpoint.tls, ...base, ...(servername ? { servername } : {}) });
    } else {
      socket = netConnect(onread ? { ...base, onread } : base);
    }
    const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
    socket.once(endpoint.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
