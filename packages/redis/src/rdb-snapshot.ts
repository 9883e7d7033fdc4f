import type { Socket } from 'node:net';
import { openSocket } from './raw-socket.js';
import { iteratorSource, OnreadSource, type ByteSource } from './socket-bytes.js';
import type { RawEndpoint } from './redis-connection.js';
import { Crc64 } from './crc64.js';
import { encodeCommand } from './resp-writer.js';
import { abortedError, isNoPasswordConfigured, redisError } from './redis-errors.js';

const EOF_MARK_SIZE = 40;
/** Size of the blocks the payload is passed on in. */
const OUTPUT_BLOCK = 1 << 20;
const RDB_MAGIC = Buffer.from('REDIS');

/** The server refused to replicate to us (ACL, disabled command, proxy): `auto` falls back to logical. */
export class ReplicationRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicationRefusedError';
  }
}

export interface RdbSnapshotInfo {
  /** 'disk' for a `$<length>` transfer, 'diskless' for an `$EOF:<mark>` one. */
  transfer: 'disk' | 'diskless';
  /** Announced size for disk transfers. */
  size?: number;
  /** How the sync was started. */
  command: 'PSYNC' | 'SYNC';
  /** Set once the payload has been read. */
  rdbVersion?: number;
  bytes: number;
  /** Whether the RDB's trailing CRC-64 was checked (false when the server writes a zero checksum). */
  checksumVerified: boolean;
}

export interface RdbSession {
  info: RdbSnapshotInfo;
  /** Yields exactly the RDB payload, checks its magic and CRC-64, then closes the connection. */
  payload(): AsyncGenerator<Buffer>;
  close(): void;
}

export interface RdbSnapshotSettings {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  signal: AbortSignal;
  target: string;
}

/** Buffered reader over a socket's bytes: lines for the handshake, raw bytes after it. */
class SocketReader {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly source: ByteSource) {}

  private async fill(): Promise<boolean> {
    const next = await this.source.next();
    if (next === undefined) return false;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, next]) : next;
    return true;
  }

  /**
   * One reply line without its CRLF. Bare newlines are skipped: the master sends them as
   * keep-alives while it prepares the snapshot.
   */
  async line(): Promise<string | undefined> {
    for (;;) {
      while (this.buffer[0] === 0x0a) this.buffer = this.buffer.subarray(1);
      const end = this.buffer.indexOf('\r\n');
      if (end >= 0) {
        const text = this.buffer.toString('latin1', 0, end);
        this.buffer = this.buffer.subarray(end + 2);
        return text;
      }
      if (this.buffer.length > 4096) throw new Error('reply line too long');
      if (!(await this.fill())) return undefined;
    }
  }

  /** Whatever is buffered, then further chunks as they arrive; undefined at end of stream. */
  async chunk(): Promise<Buffer | undefined> {
    if (this.buffer.length) {
      const b = this.buffer;
      this.buffer = Buffer.alloc(0);
      return b;
    }
    return this.source.next();
  }
}

/**
 * Starts a full synchronisation the way `redis-cli --rdb` does: AUTH, `REPLCONF rdb-only 1`
 * (7.0+; ignored when unknown), `REPLCONF capa eof capa psync2`, then `PSYNC ? -1` (or `SYNC`
 * when PSYNC is refused). Resolves once the payload header arrived, so a refusal is known
 * before any artifact is opened.
 */
export async function startRdbSnapshot(endpoint: RawEndpoint, settings: RdbSnapshotSettings): Promise<RdbSession> {
  if (settings.signal.aborted) throw abortedError();
  // Plain TCP reads into one reused buffer (see OnreadSource); TLS sockets have no onread.
  const onread = endpoint.tls ? undefined : new OnreadSource();
  const socket = await openSocket(endpoint, settings.connectTimeoutMs, 'replication', settings.target, onread?.onread);
  socket.setTimeout(settings.idleTimeoutMs, () =>
    socket.destroy(new Error(`no data from the server for ${settings.idleTimeoutMs} ms`)),
  );
  const onAbort = () => socket.destroy(abortedError());
  settings.signal.addEventListener('abort', onAbort, { once: true });
  const close = () => {
    settings.signal.removeEventListener('abort', onAbort);
    socket.destroy();
  };
  // Errors surface through the reader; this listener only keeps them from being unhandled.
  socket.on('error', () => {});
  if (onread) onread.attach(socket);
  const reader = new SocketReader(onread ?? iteratorSource(socket));

  const request = async (args: string[]): Promise<string> => {
    socket.write(encodeCommand(args));
    const reply = await reader.line();
    if (reply === undefined) throw new ReplicationRefusedError(`the server closed the connection after ${args[0]}`);
    return reply;
  };

  let header: string | undefined;
  let command: 'PSYNC' | 'SYNC' = 'PSYNC';
  try {
    if (endpoint.password !== undefined) {
      const auth = await request(endpoint.username ? ['AUTH', endpoint.username, endpoint.password] : ['AUTH', endpoint.password]);
      if (auth.startsWith('-') && !isNoPasswordConfigured(auth)) {
        throw redisError('AUTH_FAILED', `authentication for the replication connection to ${settings.target} failed: ${auth.slice(1)}`, 'Check the password (and the username for an ACL user).');
      }
    }
    // Both are hints: a server that does not know them still serves a plain disk-based SYNC.
    await request(['REPLCONF', 'rdb-only', '1']);
    await request(['REPLCONF', 'capa', 'eof', 'capa', 'psync2']);

    let reply = await request(['PSYNC', '?', '-1']);
    if (reply.startsWith('-')) {
      const psyncError = reply.slice(1);
      command = 'SYNC';
      reply = await request(['SYNC']);
      if (reply.startsWith('-')) throw new ReplicationRefusedError(`PSYNC refused (${psyncError}); SYNC refused (${reply.slice(1)})`);
    }
    if (reply.startsWith('+FULLRESYNC')) {
      reply = (await reader.line()) ?? '';
    } else if (reply.startsWith('+CONTINUE')) {
      throw new ReplicationRefusedError('the server offered a partial resynchronisation instead of a snapshot');
    }
    if (!reply.startsWith('$')) {
      throw new ReplicationRefusedError(reply ? `unexpected reply to ${command}: ${reply.slice(0, 200)}` : `the server closed the connection after ${command}`);
    }
    header = reply;
  } catch (error) {
    close();
    if (error instanceof ReplicationRefusedError || (error as { code?: string }).code === 'AUTH_FAILED' || (error as { code?: string }).code === 'ABORTED') {
      throw error;
    }
    throw redisError('SOURCE_FAILED', `replication handshake with ${settings.target} failed: ${(error as Error).message}`, 'Check the server log; retry, or use mode "logical".', {
      cause: error,
      retryable: true,
    });
  }

  const eofMark = header.startsWith('$EOF:') ? Buffer.from(header.slice(5), 'latin1') : undefined;
  if (eofMark && eofMark.length !== EOF_MARK_SIZE) {
    close();
    throw redisError('SOURCE_FAILED', `malformed diskless transfer header from ${settings.target}`, 'Retry, or use mode "logical".');
  }
  const size = eofMark ? undefined : Number(header.slice(1));
  if (!eofMark && !(Number.isSafeInteger(size) && size! >= 0)) {
    close();
    throw redisError('SOURCE_FAILED', `malformed RDB length header from ${settings.target}`, 'Retry, or use mode "logical".');
  }

  const info: RdbSnapshotInfo = {
    transfer: eofMark ? 'diskless' : 'disk',
    ...(size !== undefined ? { size } : {}),
    command,
    bytes: 0,
    checksumVerified: false,
  };

  async function* payload(): AsyncGenerator<Buffer> {
    // The RDB's last 8 bytes are a CRC-64 of everything before them; keep them back to compare.
    const crc = new Crc64();
    let held = Buffer.alloc(0);
    let start = Buffer.alloc(0);
    const check = (block: Buffer) => {
      if (block.length >= 8) {
        if (held.length) crc.update(held);
        crc.update(block.subarray(0, block.length - 8));
        held = Buffer.from(block.subarray(block.length - 8));
      } else {
        const joined = Buffer.concat([held, block]);
        const keep = Math.min(8, joined.length);
        crc.update(joined.subarray(0, joined.length - keep));
        held = Buffer.from(joined.subarray(joined.length - keep));
      }
    };
    // The socket delivers at most 64 KiB a read, often much less; every chunk costs a trip
    // through the engine's streams and a write call in the storage, so pass on blocks of
    // OUTPUT_BLOCK bytes instead (one copy; memory stays at one block plus the sink's buffers).
    let block = Buffer.allocUnsafe(OUTPUT_BLOCK);
    let filled = 0;
    const flush = (): Buffer | undefined => {
      if (filled === 0) return undefined;
      const out = filled === block.length ? block : block.subarray(0, filled);
      check(out);
      block = Buffer.allocUnsafe(OUTPUT_BLOCK);
      filled = 0;
      return out;
    };
    const emit = function* (data: Buffer): Generator<Buffer> {
      if (data.length === 0) return;
      if (start.length < 9) start = Buffer.concat([start, data.subarray(0, 9 - start.length)]);
      info.bytes += data.length;
      let offset = 0;
      while (offset < data.length) {
        const n = Math.min(block.length - filled, data.length - offset);
        data.copy(block, filled, offset, offset + n);
        filled += n;
        offset += n;
        if (filled === block.length) yield flush()!;
      }
    };
    try {
      if (eofMark) {
        // Diskless: the payload ends with the 40-byte mark; anything after it is replication traffic.
        let tail = Buffer.alloc(0);
        let found = false;
        while (!found) {
          const chunk = await reader.chunk();
          if (chunk === undefined) throw new Error('connection closed before the end of the diskless transfer');
          // Look for the mark across the boundary first, then inside the chunk, so each chunk
          // is passed on without being copied.
          const boundary = Buffer.concat([tail, chunk.subarray(0, EOF_MARK_SIZE)]);
          const across = boundary.indexOf(eofMark);
          const inside = across >= 0 ? -1 : chunk.indexOf(eofMark);
          if (across >= 0) {
            yield* emit(boundary.subarray(0, across));
            found = true;
          } else if (inside >= 0) {
            yield* emit(tail);
            yield* emit(chunk.subarray(0, inside));
            found = true;
          } else if (chunk.length >= EOF_MARK_SIZE - 1) {
            yield* emit(tail);
            yield* emit(chunk.subarray(0, chunk.length - (EOF_MARK_SIZE - 1)));
            tail = Buffer.from(chunk.subarray(chunk.length - (EOF_MARK_SIZE - 1)));
          } else {
            const data = Buffer.concat([tail, chunk]);
            const cut = Math.max(0, data.length - (EOF_MARK_SIZE - 1));
            yield* emit(data.subarray(0, cut));
            tail = Buffer.from(data.subarray(cut));
          }
        }
      } else {
        let left = size!;
        while (left > 0) {
          const chunk = await reader.chunk();
          if (chunk === undefined) throw new Error(`connection closed with ${left} bytes of the RDB still to come`);
          const take = chunk.length > left ? chunk.subarray(0, left) : chunk;
          left -= take.length;
          yield* emit(take);
        }
      }
      const last = flush();
      if (last) yield last;
      if (!start.subarray(0, 5).equals(RDB_MAGIC)) throw new Error('the payload does not start with the REDIS magic');
      info.rdbVersion = Number(start.toString('latin1', 5, 9));
      if (held.length !== 8) throw new Error('the payload is too short for an RDB file');
      if (!held.every((b) => b === 0)) {
        if (!crc.digestLE().equals(held)) throw new Error('the RDB checksum does not match its content');
        info.checksumVerified = true;
      }
    } catch (error) {
      if ((error as { code?: string }).code === 'ABORTED') throw error;
      throw redisError('SOURCE_FAILED', `RDB transfer from ${settings.target} failed: ${(error as Error).message}`, 'Retry the backup; check the server log for a failed BGSAVE or a full output buffer (client-output-buffer-limit replica).', {
        cause: error,
        retryable: true,
      });
    } finally {
      close();
    }
  }

  return { info, payload, close };
}
