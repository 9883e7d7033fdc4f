import { PassThrough, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Codec } from '../interfaces/codec.js';
import type { Storage } from '../interfaces/storage.js';
import type { ArtifactOptions } from '../interfaces/source.js';
import type { ArtifactRecord } from '../manifest/manifest-schema.js';
import { safeRelativePath } from '../manifest/manifest-schema.js';
import { BackupError } from '../errors/backup-error.js';
import { HashStream } from './hash-stream.js';
import { FanOut } from './fan-out.js';

class CountStream extends Transform {
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    cb(null, chunk);
  }
}

export interface ArtifactSinkParams {
  setId: string;
  component: string;
  name: string;
  options: ArtifactOptions;
  /** The engine's configured codecs; compression ones may be replaced per artifact. */
  engineCodecs: Codec[];
  storages: Storage[];
  signal: AbortSignal;
  onBytes?: (storedBytes: number) => void;
  onStorageError: (storage: Storage, error: unknown) => void;
  /** Passed to `put`: until when the storage may lock the object (the set's retention). */
  retainUntil?: Date;
}

export interface ArtifactSink {
  sink: Writable;
  /** Resolves with the manifest record once every live storage has the artifact. */
  record: Promise<ArtifactRecord>;
  path: string;
}

/**
 * The codecs recorded for an artifact, in the order they apply. A `precompressed` codec is
 * among them (the source applied it); `codecsToApply` leaves it out.
 */
export function codecsForArtifact(engineCodecs: Codec[], options: ArtifactOptions): Codec[] {
  const compression = options.precompressed
    ? [options.precompressed.codec]
    : options.compression === undefined
      ? engineCodecs.filter((c) => c.kind === 'compression')
      : options.compression === false
        ? []
        : [options.compression];
  return [...compression, ...engineCodecs.filter((c) => c.kind === 'encryption')];
}

/** The codecs the engine runs on the bytes: those recorded, less one the source already applied. */
export function codecsToApply(codecs: Codec[], options: ArtifactOptions): Codec[] {
  const done = options.precompressed?.codec;
  return done ? codecs.filter((c) => c !== done) : codecs;
}

/** The shell pipeline that turns the stored artifact back into what the source wrote. */
export function manualRestoreCommand(path: string, codecs: Codec[] | { manualDecode: string }[], restoreHint?: string): string {
  const decoders = [...codecs].reverse().map((c) => c.manualDecode);
  const steps: string[] = [];
  if (decoders.length === 0) steps.push(`cat ${path}`);
  else {
    steps.push(`${decoders[0]} < ${path}`);
    steps.push(...decoders.slice(1));
  }
  return restoreHint ? `${steps.join(' | ')} | ${restoreHint}` : steps.join(' | ');
}

/** The size before compression a source reported for a precompressed artifact, checked. */
export function precompressedRawSize(component: string, path: string, precompressed: NonNullable<ArtifactOptions['precompressed']>): number {
  const rawSize = precompressed.rawSize();
  if (!Number.isSafeInteger(rawSize) || rawSize < 0) {
    throw new BackupError('INTERNAL', `${component}: ${path}: the source reported no valid size before compression (${String(rawSize)})`, { component });
  }
  return rawSize;
}

/** The manifest record of one stored artifact. */
export function artifactRecord(a: { name: string; path: string; size: number; sha256: string; rawSize: number; codecs: Codec[]; options: ArtifactOptions }): ArtifactRecord {
  const { options } = a;
  return {
    name: a.name,
    path: a.path,
    size: a.size,
    sha256: a.sha256,
    rawSize: a.rawSize,
    codecs: a.codecs.map((c) => c.describe()),
    ...(options.contentType ? { contentType: options.contentType } : {}),
    manualRestore: manualRestoreCommand(a.path, a.codecs, options.restoreHint),
    ...(options.metadata ? { metadata: options.metadata } : {}),
  };
}

/** Checks an artifact's name and returns its stored path (`component/name` plus the codecs' extensions). */
export function artifactPath(component: string, name: string, codecs: Codec[]): string {
  if (!safeRelativePath.safeParse(name).success || name.startsWith('.')) {
    throw new BackupError('INVALID_KEY', `${component}: artifact name "${name}" must be a relative path without "..", leading dots or backslashes`, {
      component,
    });
  }
  return `${component}/${name}${codecs.map((c) => c.extension).join('')}`;
}

/**
 * Opens the write side of one artifact: source bytes -> codecs -> sha256 -> every storage.
 * The returned sink emits 'finish' only after every live storage committed the object.
 */
export function openArtifactSink(params: ArtifactSinkParams): ArtifactSink {
  const { setId, component, name, options, signal } = params;
  artifactPath(component, name, []);
  if (params.storages.length === 0) {
    throw new BackupError('STORAGE_FAILED', `${component}: no storage is available to write ${name} to`, { component });
  }
  const precompressed = options.precompressed;
  if (precompressed && precompressed.codec.kind !== 'compression') {
    throw new BackupError('INTERNAL', `${component}: artifact "${name}": precompressed names the ${precompressed.codec.kind} codec "${precompressed.codec.name}"; only a compression codec can be applied by the source`, {
      component,
    });
  }
  const codecs = codecsForArtifact(params.engineCodecs, options);
  const path = artifactPath(component, name, codecs);
  const key = `${setId}/${path}`;

  const counter = new CountStream();
  const stored = new HashStream(params.onBytes);
  const branches = params.storages.map((storage) => {
    const stream = new PassThrough({ highWaterMark: 1 << 20 });
    // A storage may attach its listeners only after an await (mkdir, open); the error still
    // reaches the caller through `done`, so an early one must not crash the process.
    stream.on('error', () => {});
    const done = storage.put(key, stream, {
      signal,
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(params.retainUntil ? { retainUntil: params.retainUntil } : {}),
    });
    return { name: storage.name, stream, done, storage };
  });
  let storageFailure: unknown;
  const fan = new FanOut(branches, (branch, error) => {
    storageFailure ??= error;
    const storage = branches.find((b) => b === branch)?.storage;
    if (storage) params.onStorageError(storage, error);
  });
  // When no storage is left, say why (disk full, read-only, ...) instead of "writing stopped".
  const failure = (fallback: Error): Error => {
    if (storageFailure === undefined || fan.liveBranches.length > 0) return fallback;
    const be = BackupError.isInstance(storageFailure) ? storageFailure : undefined;
    const reason = storageFailure instanceof Error ? storageFailure.message : String(storageFailure);
    return new BackupError(be?.code ?? 'STORAGE_FAILED', `${component}: writing ${path} failed: ${reason}`, {
      component,
      cause: storageFailure,
      retryable: be?.retryable ?? false,
      ...(be?.hint ? { hint: be.hint } : {}),
    });
  };
  const head = new PassThrough({ highWaterMark: 1 << 20 });
  const encoders = codecsToApply(codecs, options).map((c) => c.encode());
  const done = pipeline([head, counter, ...encoders, stored, fan], { signal });
  // Reported through `record`/the sink; avoid an unhandled rejection in between.
  done.catch(() => {});

  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (head.write(chunk)) return cb();
      const onDrain = () => {
        head.off('close', onClose);
        cb();
      };
      const onClose = () => {
        head.off('drain', onDrain);
        cb(failure(new BackupError('STORAGE_FAILED', `${component}: writing ${path} stopped`, { component })));
      };
      head.once('drain', onDrain);
      head.once('close', onClose);
    },
    final(cb) {
      head.end();
      done.then(
        () => cb(),
        (error) => cb(failure(error as Error)),
      );
    },
    destroy(error, cb) {
      if (!head.destroyed) head.destroy(error ?? new Error(`${component}: ${path} was closed before it was complete`));
      cb(error);
    },
  });
  done.catch((error) => {
    if (!sink.destroyed) sink.destroy(failure(error as Error));
  });

  const record = new Promise<ArtifactRecord>((resolve, reject) => {
    sink.on('finish', () => {
      let rawSize = counter.size;
      if (precompressed) {
        try {
          rawSize = precompressedRawSize(component, path, precompressed);
        } catch (error) {
          reject(error);
          return;
        }
      }
      resolve(artifactRecord({ name, path, size: stored.size, sha256: stored.sha256, rawSize, codecs, options }));
    });
    sink.on('error', reject);
    sink.on('close', () => {
      if (!sink.writableFinished) reject(new BackupError('SOURCE_FAILED', `${component}: ${path} was closed before it was complete`, { component }));
    });
  });
  record.catch(() => {});
  return { sink, record, path };
}

export function toReadable(body: Readable | AsyncIterable<Uint8Array>): Readable {
  return body instanceof Readable ? body : Readable.from(body, { objectMode: false });
}
