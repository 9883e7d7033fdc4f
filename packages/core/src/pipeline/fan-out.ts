import { PassThrough, Writable } from 'node:stream';

export interface FanOutBranch {
  name: string;
  stream: PassThrough;
  /** Resolves when the consumer (storage.put) finished; rejects when it failed. */
  done: Promise<unknown>;
}

/**
 * Writes every chunk to each live branch and waits until all of them can take more
 * (backpressure follows the slowest storage). A failing branch is dropped and reported through
 * `onBranchError`; the stream fails only when no branch is left.
 */
export class FanOut extends Writable {
  private readonly live: Set<FanOutBranch>;
  /** Set when the whole write is torn down (source failed or aborted): not a storage failure. */
  private tearingDown = false;

  constructor(
    branches: FanOutBranch[],
    private readonly onBranchError: (branch: FanOutBranch, error: unknown) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.live = new Set(branches);
    for (const branch of branches) {
      branch.done.catch((error) => this.drop(branch, error));
    }
  }

  private drop(branch: FanOutBranch, error: unknown): void {
    if (!this.live.delete(branch)) return;
    branch.stream.destroy();
    if (!this.tearingDown) this.onBranchError(branch, error);
    this.emit('branch-dropped');
  }

  private noneLeft(): Error {
    return new Error('every storage failed');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    if (this.live.size === 0) return cb(this.noneLeft());
    const waits: Promise<void>[] = [];
    for (const branch of this.live) {
      if (!branch.stream.write(chunk)) {
        waits.push(
          new Promise<void>((resolve) => {
            const done = () => {
              branch.stream.off('drain', done);
              this.off('branch-dropped', check);
              resolve();
            };
            const check = () => {
              if (!this.live.has(branch)) done();
            };
            branch.stream.on('drain', done);
            this.on('branch-dropped', check);
          }),
        );
      }
    }
    if (waits.length === 0) return cb();
    Promise.all(waits).then(
      () => cb(this.live.size === 0 ? this.noneLeft() : null),
      (error) => cb(error as Error),
    );
  }

  override _final(cb: (error?: Error | null) => void): void {
    const branches = [...this.live];
    for (const branch of branches) branch.stream.end();
    Promise.allSettled(branches.map((b) => b.done)).then(() => {
      cb(this.live.size === 0 ? this.noneLeft() : null);
    });
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    if (error) this.tearingDown = true;
    for (const branch of this.live) branch.stream.destroy(error ?? undefined);
    cb(error);
  }

  get liveBranches(): string[] {
    return [...this.live].map((b) => b.name);
  }
}
