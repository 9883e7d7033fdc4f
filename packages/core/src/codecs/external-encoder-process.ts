import { childProcessEnv } from '../util/child-env.js';
import { withParentDeathSignal } from '../util/parent-death.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable, type Writable } from 'node:stream';
import { BackupError } from '../errors/backup-error.js';
import type { ExternalEncoder } from '../interfaces/codec.js';

export interface StartExternalEncoderOptions {
  /** Aborting kills the program; the output then fails. */
  signal?: AbortSignal;
  /** Applied to the program's stderr before it goes into an error message (redact secrets). */
  redact?: (text: string) => string;
  /**
   * A descriptor for the program's stdout (a file opened for writing): the program writes its
   * output there itself and `output` carries no bytes; it still ends only after the program
   * exited with status 0 and said how many bytes it read, and errors otherwise.
   */
  stdout?: number;
  /**
   * False when the size before encoding is not needed (an encryption program after the
   * compressor): the program's stderr then need not report it, and `inputBytes()` throws.
   */
  countInput?: boolean;
}

/**
 * A codec's external encoder, started with its stdin free for another program to write into.
 * Usage, for a source that produces its data with a program of its own:
 *
 *     const encoder = await startExternalEncoder(await codec.externalEncoder(), { signal });
 *     const producer = spawn(cmd, args, { stdio: ['ignore', encoder.input, 'pipe'] });
 *     encoder.releaseInput();
 *     await pipeline(encoder.output, ctx.artifact(name, { precompressed: { codec, rawSize: encoder.inputBytes } }));
 *
 * The producer's bytes then go from one program to the other through an OS pipe and never pass
 * through Node; Node reads only the encoded output. The source still checks the producer's exit.
 */
export interface RunningExternalEncoder {
  /** The program's stdin: pass it as the producer's stdout (spawn `stdio[1]`), then call `releaseInput()`. */
  readonly input: Writable;
  /**
   * Closes this process's end of the input, so the program sees the end of its input once the
   * producer exits. Call it right after spawning the producer (or when that failed).
   */
  releaseInput(): void;
  /**
   * The encoded bytes. Ends only after the program exited with status 0 and said how many
   * bytes it read; errors with CODEC_FAILED (its stderr in the message) otherwise, so a
   * program that fails half-way never passes for a short success. Destroying it kills the program.
   * Empty when the program was started with `stdout`: then it only says how the program ended.
   */
  readonly output: Readable;
  /** Bytes the program read (the size before encoding); throws before `output` ended. */
  inputBytes(): number;
  readonly pid: number;
  /** Settles once the program has exited, however it ended. */
  readonly exited: Promise<void>;
  /** Stops the program (SIGTERM) if it still runs. */
  kill(): void;
}

const STDERR_TAIL = 16 * 1024;

function failure(encoder: ExternalEncoder, message: string, cause?: unknown): BackupError {
  return new BackupError('CODEC_FAILED', `${encoder.label} failed: ${message}`, {
    cause,
    hint: encoder.failureHint,
    details: { command: encoder.command },
  });
}

/** What programs (zstd, age; C and Go) print when a write fails for want of space. */
const DISK_FULL = /no space left on device|disk quota exceeded/i;

/**
 * A program that writes a file itself failed: when it says the disk is full, that is the
 * storage's problem, reported as a storage would report it, not as a broken program.
 */
function exitFailure(encoder: ExternalEncoder, message: string, text: string, writesFile: boolean): BackupError {
  if (writesFile && DISK_FULL.test(text)) {
    return new BackupError('STORAGE_FAILED', `${encoder.label} failed: no space left on the device it writes the backup file to (${message})`, {
      hint: 'free space on the disk holding the backup, e.g. prune old sets (scholaria-backup prune) or move the storage to a larger disk, then run the backup again',
      details: { command: encoder.command, errno: 'ENOSPC' },
    });
  }
  return failure(encoder, message);
}

function spawnFailure(encoder: ExternalEncoder, error: Error): BackupError {
  if ((error as { code?: unknown }).code === 'ENOENT') {
    return new BackupError('TOOL_MISSING', `${encoder.label} needs the "${encoder.command}" program, which was not found on PATH`, {
      cause: error,
      hint: encoder.missingHint,
      details: { command: encoder.command },
    });
  }
  return failure(encoder, `could not start ${encoder.command}: ${error.message}`, error);
}

class EncoderOutput extends Readable {
  constructor(
    private readonly child: ChildProcess,
    private readonly hasExited: () => boolean,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.hasExited()) this.child.kill('SIGTERM');
    this.child.stdout?.destroy();
    callback(error);
  }
}

/** Starts `encoder` (see `RunningExternalEncoder`); rejects with TOOL_MISSING or CODEC_FAILED if it cannot start. */
export async function startExternalEncoder(
  encoder: ExternalEncoder,
  options: StartExternalEncoderOptions = {},
): Promise<RunningExternalEncoder> {
  if (options.signal?.aborted) throw new BackupError('ABORTED', `${encoder.label} aborted before it started`);
  // Writing a file itself, the program has no pipe back to this process that would break if
  // this process were killed: it gets a parent-death signal instead, where Linux offers one.
  const run = options.stdout === undefined ? { command: encoder.command, args: encoder.args } : await withParentDeathSignal(encoder.command, encoder.args);
  let child: ChildProcess;
  try {
    child = spawn(run.command, run.args, { stdio: ['pipe', options.stdout ?? 'pipe', 'pipe'], windowsHide: true, env: childProcessEnv(['ZSTD_', 'AGE']) });
  } catch (error) {
    throw spawnFailure(encoder, error as Error);
  }
  let stderr = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let bytesRead: number | undefined;
  const output = new EncoderOutput(child, () => exit !== undefined);
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
  });

  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(spawnFailure(encoder, error)));
  }).catch((error: unknown) => {
    for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
    throw error;
  });

  const describe = (): string => {
    const text = (encoder.errorText ? encoder.errorText(stderr) : stderr).trim();
    return options.redact ? options.redact(text) : text;
  };
  child.on('error', (error) => output.destroy(failure(encoder, `${encoder.command} failed: ${error.message}`, error)));
  // EPIPE or a reset here only means the program quit; its exit status says why.
  child.stdin?.on('error', () => undefined);
  child.stdout?.on('data', (chunk: Buffer) => {
    if (!output.push(chunk)) child.stdout?.pause();
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL);
  });
  void exited.then(() => {
    if (output.destroyed) return;
    const { code, signal } = exit!;
    if (code !== 0) {
      const text = describe();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      output.destroy(exitFailure(encoder, `${encoder.command} ${how}${text ? `: ${text}` : ''}`, text, options.stdout !== undefined));
      return;
    }
    bytesRead = options.countInput === false ? -1 : encoder.inputBytes(stderr);
    if (bytesRead === undefined) {
      output.destroy(failure(encoder, `${encoder.command} did not report how many bytes it read`));
      return;
    }
    output.push(null);
  });

  const kill = () => {
    if (!exit) child.kill('SIGTERM');
  };
  if (options.signal) {
    const signal = options.signal;
    signal.addEventListener('abort', kill, { once: true });
    void exited.then(() => signal.removeEventListener('abort', kill));
  }

  return {
    input: child.stdin!,
    releaseInput: () => child.stdin?.destroy(),
    output,
    inputBytes: () => {
      if (bytesRead === undefined) throw new BackupError('INTERNAL', `${encoder.label}: the input size is known only once the output ended`);
      if (bytesRead < 0) throw new BackupError('INTERNAL', `${encoder.label}: started without countInput, it does not know its input size`);
      return bytesRead;
    },
    pid: child.pid!,
    exited,
    kill,
  };
}
