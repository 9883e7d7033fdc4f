/// <reference path="./types/redis-parser.d.ts" />
import type { Socket } from 'node:net';
import RedisParser from 'redis-parser';
import type { RawEndpoint } from './redis-connection.js';
import { openSocket } from './raw-socket.js';
import { encodeCommand } from './resp-writer.js';
import { isNoPasswordConfigured, redisError } from './redis-errors.js';

/** A parsed reply: bulk and simple strings as Buffers, integers as numbers, errors as Error values. */
export type Reply = Buffer | number | null | Error | Reply[];

interface Pending {
  expected: number;
  replies: Reply[];
  resolve(replies: Reply[]): void;
  reject(error: Error): void;
}

export interface RespConnectionSettings {
  connectTimeoutMs: number;
  /** Fail when the server sends nothing for this long while replies are awaited. */
  idleTimeoutMs: number;
  target: string;
}

/**
 * A bare pipelined RESP connection for the bulk paths (DUMP and RESTORE of every key). ioredis
 * builds a Command object, a promise and a callback per command, which on a loaded machine
 * costs more than Redis takes to answer; here a batch is one pre-encoded write and its replies
 * come back as one array, parsed by `redis-parser` (the parser ioredis itself uses).
 * ioredis still opens the first connection (URL, Sentinel, TLS and auth handling) and answers
 * INFO/CONFIG; this connection goes to the address that client reached, with its credentials.
 */
export class RespConnection {
  private readonly pending: Pending[] = [];
  private failure: Error | undefined;
  private readonly parser: RedisParser;

  private constructor(
    private readonly socket: Socket,
    private readonly settings: RespConnectionSettings,
  ) {
    this.parser = new RedisParser({
      returnBuffers: true,
      returnReply: (reply) => this.reply(reply as Reply),
      returnError: (error) => this.reply(error),
      returnFatalError: (error) => this.fail(error),
    });
    socket.on('data', (chunk: Buffer) => this.parser.execute(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('the server closed the connection')));
    socket.setTimeout(settings.idleTimeoutMs, () => {
      if (this.pending.length) this.fail(new Error(`no reply from the server for ${settings.idleTimeoutMs} ms`));
    });
  }

  static async open(endpoint: RawEndpoint, settings: RespConnectionSettings): Promise<RespConnection> {
    const socket = await openSocket(endpoint, settings.connectTimeoutMs, 'data', settings.target);
    const connection = new RespConnection(socket, settings);
    if (endpoint.password !== undefined) {
      const args = endpoint.username ? ['AUTH', endpoint.username, endpoint.password] : ['AUTH', endpoint.password];
      const [reply] = await connection.send([encodeCommand(args)], 1);
      if (reply instanceof Error && !isNoPasswordConfigured(reply.message)) {
        connection.close();
        throw redisError('AUTH_FAILED', `authentication of the data connection to ${settings.target} failed: ${reply.message}`, 'Check the password (and the username for an ACL user).');
      }
    }
    return connection;
  }

  private reply(reply: Reply): void {
    const head = this.pending[0];
    if (!head) {
      this.fail(new Error('reply without a request'));
      return;
    }
    head.replies.push(reply);
    if (head.replies.length === head.expected) {
      this.pending.shift();
      head.resolve(head.replies);
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = redisError('CONNECTION_FAILED', `connection to ${this.settings.target} lost: ${error.message}`, 'Retry; check the server log and network if it happens again.', {
      cause: error,
      retryable: true,
    });
    for (const p of this.pending.splice(0)) p.reject(this.failure);
    this.socket.destroy();
  }

  /** Writes pre-encoded commands and resolves with their `expected` replies, in order. */
  send(chunks: readonly Buffer[], expected: number): Promise<Reply[]> {
    const promise = this.failure
      ? Promise.reject(this.failure)
      : new Promise<Reply[]>((resolve, reject) => {
          this.pending.push({ expected, replies: [], resolve, reject });
          this.socket.cork();
          for (const c of chunks) this.socket.write(c);
          this.socket.uncork();
        });
    // Callers keep several requests in flight and await them in order; when the connection
    // drops, the later ones must not surface as unhandled rejections meanwhile.
    promise.catch(() => {});
    return promise;
  }

  close(): void {
    this.failure ??= new Error('connection closed');
    this.socket.destroy();
  }
}
