import { childProcessEnv } from '../util/child-env.js';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { BackupError } from '../errors/backup-error.js';

export interface ChildProcessDuplexOptions {
  command: string;
  /** Passed as an argument array: never through a shell. */
  args: string[];
  /** Names the work in messages, e.g. 'zstd compression'. */
  label: string;
  /** What to do when the program is not installed, e.g. 'apt-get install zstd'. */
  missingHint: string;
  /** What to do when it exits non-zero. */
  failureHint: string;
}

const STDERR_TAIL = 4096;

/**
 * A child process as a Duplex: bytes written go to its stdin, its stdout is readable. Unlike a
 * plain `Duplex.from({ writable: stdin, readable: stdout })`, the readable side ends only after
 * the child exited with status 0, so a tool that fails after writing part of its output (a
 * corrupt frame half-way) fails the stream instead of passing for a short success. Destroying
 * the stream kills the child.
 */
export class ChildProcessDuplex extends Duplex {
  private child: ChildProcessWithoutNullStreams | undefined;
  private stderrTail = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly childClosed: Promise<void>;
  private markChildClosed!: () => void;

  constructor(private readonly spec: ChildProcessDuplexOptions) {
    super({ readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    this.childClosed = new Promise((resolve) => {
      this.markChildClosed = resolve;
    });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(this.spec.command, this.spec.args, { stdio: ['pipe', 'pipe', 'pipe'], env: childProcessEnv(['ZSTD_', 'AGE', 'GZIP']) });
    } catch (error) {
      callback(this.spawnFailure(error as Error));
      return;
    }
    this.child = child;
    let spawned = false;
    child.once('spawn', () => {
      spawned = true;
      callback();
    });
    child.on('error', (error) => {
      if (!spawned) callback(this.spawnFailure(error));
      else this.destroy(this.failure(`${this.spec.command} failed: ${error.message}`, error));
    });
    // EPIPE here means the child quit early; its exit status and stderr say why.
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
    });
    child.on('close', (code, signal) => {
      this.exit = { code, signal };
      this.markChildClosed();
      if (!spawned || this.destroyed) return;
      const failure = this.exitFailure();
      if (failure) this.destroy(failure);
      else if (!this.writableEnded) {
        this.destroy(this.failure(`${this.spec.command} exited before reading all of its input`));
      } else this.push(null);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const stdin = this.child?.stdin;
    if (!stdin || this.exit) {
      callback(this.exitFailure() ?? this.failure(`${this.spec.command} is no longer running`));
      return;
    }
    stdin.write(chunk, (error) => {
      if (!error) callback();
      else void this.childClosed.then(() => callback(this.exitFailure() ?? this.failure(error.message, error)));
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    const stdin = this.child?.stdin;
    if (!stdin) {
      callback();
      return;
    }
    stdin.end((error?: Error | null) => {
      if (!error) callback();
      else void this.childClosed.then(() => callback(this.exitFailure() ?? this.failure(error.message, error)));
    });
  }

  override _read(): void {
    this.child?.stdout.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const child = this.child;
    if (child && !this.exit) {
      child.kill('SIGTERM');
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
    }
    callback(error);
  }

  private failure(message: string, cause?: unknown): BackupError {
    return new BackupError('CODEC_FAILED', `${this.spec.label} failed: ${message}`, {
      cause,
      hint: this.spec.failureHint,
      details: { command: this.spec.command },
    });
  }

  private exitFailure(): BackupError | undefined {
    if (!this.exit) return undefined;
    const { code, signal } = this.exit;
    if (code === 0) return undefined;
    const stderr = this.stderrTail.trim();
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    return this.failure(`${this.spec.command} ${how}${stderr ? `: ${stderr}` : ''}`);
  }

  private spawnFailure(error: Error): BackupError {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT') {
      return new BackupError(
        'TOOL_MISSING',
        `${this.spec.label} needs the "${this.spec.command}" program, which was not found on PATH`,
        { cause: error, hint: this.spec.missingHint, details: { command: this.spec.command } },
      );
    }
    return this.failure(`could not start ${this.spec.command}: ${error.message}`, error);
  }
}
