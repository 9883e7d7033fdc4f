import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { RawEndpoint } from './redis-connection.js';

/** A plain or TLS socket to the same place the ioredis client reached, resolved once connected. */
export function openSocket(endpoint: RawEndpoint, connectTimeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    const base = endpoint.path ? { path: endpoint.path } : { host: endpoint.host ?? 'localhost', port: endpoint.port ?? 6379 };
    if (endpoint.tls) {
      const servername = endpoint.tls.servername ?? (endpoint.host && !isIP(endpoint.host) ? endpoint.host : undefined);
      socket = tlsConnect({ ...endpoint.tls, ...base, ...(servername ? { servername } : {}) });
    } else {
      socket = netConnect(base);
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
