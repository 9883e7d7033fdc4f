import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Codec, ExternalEncoder } from '../interfaces/codec.js';
import { startExternalEncoder, type RunningExternalEncoder } from '../codecs/external-encoder-process.js';
import type { ArtifactOptions } from '../interfaces/source.js';
import type { LocalFileWriter, Storage } from '../interfaces/storage.js';
import type { ArtifactRecord } from '../manifest/manifest-schema.js';
import { BackupError } from '../errors/backup-error.js';
import { artifactPath, artifactRecord, codecsForArtifact, codecsToApply, precompressedRawSize } from './artifact-sink.js';

/**
 * An artifact a program writes straight into its file (`SourceBackupContext.artifactFile`):
 * pass `fd` as the program's stdout, call `start()` once it runs, and `finish()` once it exited
 * successfully. Meanwhile the file is read back as it grows (direct reads into one reused
 * buffer, from the page cache) for its SHA-256 and size, so Node never carries the bytes
 * through a stream, and the file is written back to the disk every 32 MiB.
 */
export interface FileArtifact {
  /**
   * Write-only descriptor on the new file: the producing program's stdout. Not to be used when
   * `input` is set: the encryption program writes the file then.
   */
  readonly fd: number;
  /**
   * Set when an encryption program (age) writes the file: the source writes its bytes here
   * (the program's stdin) and ends it; `finish()` then waits for the program to exit 0.
   */
  readonly input?: Writable;
  /**
   * With `input`, once writing it failed (a broken pipe says only that the program stopped
   * reading): closes `input`, waits for the encryption program to exit and gives its error when
   * it failed (e.g. the disk filled up), so that is what gets reported; undefined when it exited
   * 0, or without `input`.
   */
  inputFailure(): Promise<Error | undefined>;
  /**
   * Starts reading the file back. `head` gets a copy of each block read, from the first byte
   * on, until it returns (or resolves to) false: a reader of the dump's table of contents. A
   * promise holds the reading back until it settles.
   */
  start(head?: HeadConsumer): void;
  /** The program exited successfully: reads what is left, commits the file, resolves the record. */
  finish(): Promise<ArtifactRecord>;
  /** Stops and removes the file (the program failed or the backup was aborted). */
  destroy(error?: Error): void;
  /** True once `finish()` was called. */
  readonly finished: boolean;
  /** The manifest record once committed; rejects when the artifact failed or was destroyed. */
  readonly record: Promise<ArtifactRecord>;
}

/** Takes a copy of the next block of the file; false (or a promise of false) when it wants no more. */
export type HeadConsumer = (chunk: Buffer) => boolean | Promise<boolean>;

export interface FileArtifactParams {
  setId: string;
  component: string;
  name: string;
  options: ArtifactOptions;
  engineCodecs: Codec[];
  storage: Storage;
  signal: AbortSignal;
  onBytes?: (storedBytes: number) => void;
}

const READ_BYTES = 2 * 1024 * 1024;
const WRITE_BEHIND_BYTES = 32 * 1024 * 1024;
/** How long the reader waits when it has caught up with the program. */
const POLL_MS = 10;

/**
 * Whether `openFileArtifact` applies, and with which program in front of the file: the
 * source's bytes are precompressed, the set goes to one storage that can create local files,
 * and every engine codec left to apply is one encryption codec run as its own program (the
 * `age` program, `Codec.externalEncoder`) or there is none. Undefined when it does not apply.
 */
export async function fileArtifactPlan(
  storages: Storage[],
  engineCodecs: Codec[],
  options: ArtifactOptions,
): Promise<{ encrypter?: ExternalEncoder } | undefined> {
  if (!options.precompressed || storages.length !== 1) return undefined;
  if (!storages[0]!.capabilities?.localFiles?.createFile) return undefined;
  const left = codecsToApply(codecsForArtifact(engineCodecs, options), options);
  if (left.length === 0) return {};
  if (left.length > 1 || left[0]!.kind !== 'encryption') return undefined;
  const encrypter = await left[0]!.externalEncoder?.();
  return encrypter ? { encrypter } : undefined;
}

/**
 * Opens the artifact's file on the storage, with the plan `fileArtifactPlan` gave; with an
 * encrypter, the program is started writing the file and the source writes into `input`.
 */
export async function openFileArtifact(params: FileArtifactParams & { plan: { encrypter?: ExternalEncoder } }): Promise<FileArtifact> {
  const { setId, component, name, options, signal, storage } = params;
  const precompressed = options.precompressed;
  const createFile = storage.capabilities?.localFiles?.createFile;
  if (!precompressed || !createFile) {
    throw new BackupError('INTERNAL', `${component}: artifact "${name}" cannot be written as a local file`, { component });
  }
  const codecs = codecsForArtifact(params.engineCodecs, options);
  const path = artifactPath(component, name, codecs);
  const writer: LocalFileWriter = await createFile(`${setId}/${path}`, { signal });
  let reader: FileHandle | undefined;
  let encrypter: RunningExternalEncoder | undefined;
  try {
    reader = await open(writer.path, 'r');
    if (params.plan.encrypter) encrypter = await startExternalEncoder(params.plan.encrypter, { signal, stdout: writer.fd, countInput: false });
  } catch (error) {
    await reader?.close().catch(() => undefined);
    await writer.abort();
    if (BackupError.isInstance(error)) throw error;
    throw new BackupError('STORAGE_FAILED', `${component}: cannot read back ${path} while it is written: ${(error as Error).message}`, { component, cause: error });
  }
  const file: FileHandle = reader!;
  // The encrypter ends (exit 0, or an error) on its own; only its end matters.
  const encrypted = encrypter ? finished(encrypter.output.resume()) : undefined;
  encrypted?.catch(() => undefined);

  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  let position = 0;
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  let syncError: unknown;
  let head: HeadConsumer | undefined;
  let producerDone = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let finishCalled = false;
  let committed = false;

  const rest = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, POLL_MS);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const readBack = async (): Promise<void> => {
    for (;;) {
      if (failure) throw failure;
      if (syncError !== undefined) throw syncError;
      const { bytesRead } = await file.read(buffer, 0, READ_BYTES, position);
      if (bytesRead > 0) {
        const block = buffer.subarray(0, bytesRead);
        hash.update(block);
        if (head) {
          const more = head(Buffer.from(block));
          if (!(typeof more === 'boolean' ? more : await more)) head = undefined;
        }
        position += bytesRead;
        unsynced += bytesRead;
        params.onBytes?.(position);
        if (unsynced >= WRITE_BEHIND_BYTES && !syncing) {
          unsynced = 0;
          syncing = writer.flush().then(
            () => void (syncing = undefined),
            (error: unknown) => {
              syncError = error;
              syncing = undefined;
            },
          );
        }
        continue;
      }
      // Nothing new: the program is still writing, or it exited and this was the end.
      if (producerDone) return;
      await rest();
    }
  };

  const start = (consumer?: HeadConsumer) => {
    if (loop) return;
    head = consumer;
    loop = readBack();
    loop.catch(() => undefined);
  };

  let settle!: { resolve: (r: ArtifactRecord) => void; reject: (e: unknown) => void };
  const record = new Promise<ArtifactRecord>((resolve, reject) => (settle = { resolve, reject }));
  record.catch(() => undefined);

  const cleanUp = async (error: unknown) => {
    failure ??= error instanceof Error ? error : new Error(String(error));
    encrypter?.kill();
    encrypter?.input.destroy();
    await encrypter?.exited;
    wake?.();
    await loop?.catch(() => undefined);
    await syncing;
    await file.close().catch(() => undefined);
    await writer.abort().catch(() => undefined);
  };

  const onAbort = () => destroy(new BackupError('ABORTED', `${component}: writing ${path} was aborted`, { component }));
  signal.addEventListener('abort', onAbort, { once: true });

  const finish = async (): Promise<ArtifactRecord> => {
    if (finishCalled) return record;
    finishCalled = true;
    try {
      if (failure) throw failure;
      if (encrypter && encrypted) {
        if (!encrypter.input.writableEnded) encrypter.input.end();
        await encrypted;
      }
      producerDone = true;
      start();
      wake?.();
      await loop;
      await syncing;
      if (syncError !== undefined) throw syncError;
      // Checked before the commit: a file that is not what was hashed never becomes the key.
      const { size } = await file.stat();
      if (size !== position) {
        throw new BackupError('STORAGE_FAILED', `${component}: ${path} holds ${size} bytes but ${position} were read back`, {
          component,
          hint: 'Something else wrote to the file while the backup wrote it; run the backup again.',
        });
      }
      await file.close();
      await writer.commit();
      const rawSize = precompressedRawSize(component, path, precompressed);
      const done = artifactRecord({ name, path, size: position, sha256: hash.digest('hex'), rawSize, codecs, options });
      committed = true;
      settle.resolve(done);
      return done;
    } catch (error) {
      await cleanUp(error);
      settle.reject(failure ?? error);
      throw failure ?? error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };

  function destroy(error?: Error): void {
    const reason = error ?? new BackupError('SOURCE_FAILED', `${component}: ${path} was closed before it was complete`, { component });
    if (failure || committed) return;
    failure = reason;
    signal.removeEventListener('abort', onAbort);
    void cleanUp(reason).then(() => settle.reject(reason));
  }

  const inputFailure = async (): Promise<Error | undefined> => {
    if (!encrypter || !encrypted) return undefined;
    encrypter.input.destroy();
    return encrypted.then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
  };

  return {
    fd: writer.fd,
    ...(encrypter ? { input: encrypter.input } : {}),
    inputFailure,
    start,
    finish,
    destroy,
    get finished() {
      return finishCalled;
    },
    record,
  };
}
