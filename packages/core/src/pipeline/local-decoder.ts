import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BackupError } from '../errors/backup-error.js';
import type { ExternalDecoder } from '../interfaces/codec.js';
import type { ArtifactRecord } from '../manifest/manifest-schema.js';
import { childProcessEnv } from '../util/child-env.js';
import type { VerifiedLocalFile } from './local-file.js';

/** A verified local file whose codec has a decoding program (see `SourceRestoreContext.localDecodedFile`). */
export interface LocalDecodedFile {
  /** The encoded file as stored, verified (size, SHA-256) and still the same version. */
  file: VerifiedLocalFile;
  /** The program that decodes it: run it with `startFileDecoder`. */
  decoder: ExternalDecoder;
}

/** A decoding program running on a verified file: its stdout is the decoded bytes. */
export interface RunningFileDecoder {
  /** The decoded bytes: pass it as the consumer's stdin (spawn `stdio[0]`), then call `release()`. */
  readonly output: Readable;
  /** Closes this process's end of the output, so the program sees EPIPE if the consumer quits early. */
  release(): void;
  /** Resolves once the program exited 0; rejects with CODEC_FAILED (its stderr in the message) otherwise. */
  readonly done: Promise<void>;
  kill(): void;
}

const STDERR_TAIL = 4096;
const ENV_PREFIXES = ['ZSTD_', 'GZIP'];

function spawnFailure(decoder: ExternalDecoder, error: Error): BackupError {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
    return new BackupError('TOOL_MISSING', `${decoder.label} needs the "${decoder.command}" program, which was not found on PATH`, {
      cause: error,
      hint: decoder.missingHint,
      details: { command: decoder.command },
    });
  }
  return new BackupError('CODEC_FAILED', `${decoder.label} failed: could not start ${decoder.command}: ${error.message}`, {
    cause: error,
    hint: decoder.failureHint,
    details: { command: decoder.command },
  });
}

/** Waits for `child`; resolves on status 0, else rejects with CODEC_FAILED naming `what`. */
function exitOf(child: ChildProcess, decoder: ExternalDecoder, what: string, redact?: (text: string) => string): Promise<void> {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (t: string) => (stderr = (stderr + t).slice(-STDERR_TAIL)));
  return new Promise<void>((resolve, reject) => {
    child.once('error', (error) => reject(spawnFailure(decoder, error)));
    child.once('close', (code, signal) => {
      if (code === 0) return resolve();
      const text = (redact ? redact(stderr) : stderr).trim();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      reject(
        new BackupError('CODEC_FAILED', `${what}: ${decoder.label} failed: ${decoder.command} ${how}${text ? `: ${text}` : ''}`, {
          hint: decoder.failureHint,
          details: { command: decoder.command },
        }),
      );
    });
  });
}

/**
 * Runs the decoder's check (`zstd -t`) on a local file, reading it by itself (stdin is the
 * file); nothing passes through Node. Rejects with CODEC_FAILED when the bytes do not decode.
 */
export async function checkLocalFile(path: string, artifact: ArtifactRecord, decoder: ExternalDecoder, signal?: AbortSignal): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const child = spawn(decoder.command, decoder.checkArgs, { stdio: [handle.fd, 'ignore', 'pipe'], env: childProcessEnv(ENV_PREFIXES), windowsHide: true });
    const onAbort = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await exitOf(child, decoder, artifact.path);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    signal?.throwIfAborted();
  } finally {
    await handle.close();
  }
}

/** Starts the decoder on the verified file (its stdin is the file's descriptor). */
export function startFileDecoder(local: LocalDecodedFile, options: { signal?: AbortSignal; redact?: (text: string) => string; name?: string } = {}): RunningFileDecoder {
  const { decoder } = local;
  const child = spawn(decoder.command, decoder.args, { stdio: [local.file.fd, 'pipe', 'pipe'], env: childProcessEnv(ENV_PREFIXES), windowsHide: true });
  const done = exitOf(child, decoder, options.name ?? local.file.path, options.redact);
  done.catch(() => undefined);
  let exited = false;
  void done.then(
    () => (exited = true),
    () => (exited = true),
  );
  const kill = () => {
    if (!exited) child.kill('SIGTERM');
  };
  if (options.signal) {
    const signal = options.signal;
    if (signal.aborted) kill();
    else signal.addEventListener('abort', kill, { once: true });
    void done.finally(() => signal.removeEventListener('abort', kill)).catch(() => undefined);
  }
  return { output: child.stdout!, release: () => child.stdout?.destroy(), done, kill };
}
