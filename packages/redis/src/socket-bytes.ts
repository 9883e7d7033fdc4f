import type { Socket } from 'node:net';
import type { OnRead } from './raw-socket.js';

/** Bytes from a socket, in pieces the caller may keep (nothing handed out is overwritten). */
export interface ByteSource {
  /** The next piece, or undefined at the end of the stream; rejects with the socket's error. */
  next(): Promise<Buffer | undefined>;
}

/** The socket's async iterator: one fresh Buffer per read (TLS sockets, which have no `onread`). */
export function iteratorSource(socket: Socket): ByteSource {
  const iterator = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    async next() {
      const r = await iterator.next();
      return r.done ? undefined : r.value;
    },
  };
}

/** Bytes read and not handed out yet above which the socket stops reading (TCP backpressure). */
const PAUSE_ABOVE = 4 << 20;
const RESUME_BELOW = 1 << 20;

/**
 * A reader for `net.connect({ onread })`: the kernel's bytes land in one reused read buffer and
 * are copied into 1 MiB slabs; `next()` hands out what has gathered since the last call as a
 * view of a slab, which is never written again. Per read that is one copy and no allocation, no
 * stream machinery, and the consumer is woken at most once per event-loop turn (setImmediate),
 * so many small reads of a replication stream reach it as one piece. A bare 'data' listener or
 * async iterator costs a Buffer and a trip through Readable per read, which dominated the Node
 * side of rdb mode (docs/benchmarks.md, issue 22).
 */
export class OnreadSource implements ByteSource {
  readonly onread: OnRead;
  private slab: Buffer;
  private start = 0;
  private filled = 0;
  private readonly done: Buffer[] = [];
  private pending = 0;
  private paused = false;
  private ended = false;
  private error: Error | undefined;
  private waiter: (() => void) | undefined;
  private wakeScheduled = false;
  private socket: Socket | undefined;

  constructor(
    private readonly slabSize = 1 << 20,
    readSize = 256 << 10,
  ) {
    this.slab = Buffer.allocUnsafe(slabSize);
    this.onread = { buffer: Buffer.allocUnsafe(readSize), callback: (n, buf) => this.onData(n, buf) };
  }

  /** Binds the connected socket: its end, close and error finish the source. */
  attach(socket: Socket): void {
    this.socket = socket;
    const finish = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (error: Error) => {
      this.error ??= error;
      finish();
    });
    // Flowing mode, so the readable side reports its end ('end') although no 'data' is pushed.
    socket.resume();
  }

  private onData(n: number, buf: Buffer): boolean {
    let offset = 0;
    while (offset < n) {
      if (this.filled === this.slab.length) this.seal();
      const k = Math.min(n - offset, this.slab.length - this.filled);
      buf.copy(this.slab, this.filled, offset, offset + k);
      this.filled += k;
      offset += k;
    }
    this.pending += n;
    if (this.waiter && !this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(() => {
        this.wakeScheduled = false;
        this.wake();
      });
    }
    if (this.pending >= PAUSE_ABOVE) {
      this.paused = true;
      return false;
    }
    return true;
  }

  private seal(): void {
    if (this.filled > this.start) this.done.push(this.slab.subarray(this.start, this.filled));
    this.slab = Buffer.allocUnsafe(this.slabSize);
    this.start = 0;
    this.filled = 0;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private take(): Buffer | undefined {
    let piece: Buffer | undefined;
    if (this.done.length) piece = this.done.shift()!;
    else if (this.filled > this.start) {
      piece = this.slab.subarray(this.start, this.filled);
      this.start = this.filled;
    }
    if (!piece) return undefined;
    this.pending -= piece.length;
    if (this.paused && this.pending < RESUME_BELOW && this.socket && !this.socket.destroyed) {
      this.paused = false;
      this.socket.resume();
    }
    return piece;
  }

  async next(): Promise<Buffer | undefined> {
    for (;;) {
      const piece = this.take();
      if (piece) return piece;
      if (this.error) throw this.error;
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
