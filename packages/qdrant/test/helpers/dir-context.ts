/**
 * Drives a BackupSource directly, without the engine: a hand-made ctx that stores artifacts as
 * files in a folder (all or nothing, like a Storage) and reads them back with their SHA-256
 * enforced (like the engine's ctx.open). Codecs are not applied; the requested compression is
 * recorded so tests can check it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ChecksumError,
  silentLogger,
  type ArtifactOptions,
  type ArtifactRecord,
  type BackupSource,
  type ComponentManifest,
  type Logger,
  type SourceBackupResult,
  type SourceRestoreResult,
} from '@scholaria/backup-core';

export interface DirBackup {
  component: ComponentManifest;
  result?: SourceBackupResult;
  error?: unknown;
  /** compression option per artifact name, as passed to ctx.artifact. */
  compression: Record<string, ArtifactOptions['compression'] | 'engine-default'>;
}

export interface CapturingLogger extends Logger {
  lines: { level: string; message: string; fields?: Record<string, unknown> }[];
}

export function capturingLogger(): CapturingLogger {
  const lines: CapturingLogger['lines'] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function artifactWriter(path: string, onDone: (size: number, sha256: string) => void): Writable {
  const tmp = `${path}.partial`;
  const hash = createHash('sha256');
  let size = 0;
  type File = ReturnType<typeof createWriteStream>;
  let destroyed = false;
  let opening: Promise<File> | undefined;
  // One open for the whole artifact; none after destroy, so no temp file can appear after the
  // clean-up below has removed it.
  const open = () =>
    (opening ??= mkdir(dirname(path), { recursive: true }).then(() => {
      if (destroyed) throw new Error('artifact writer destroyed');
      const file = createWriteStream(tmp, { mode: 0o600 });
      // A write still in flight when destroy() closes the file fails with ERR_STREAM_DESTROYED:
      // expected then, and never an uncaught 'error' event.
      file.on('error', () => undefined);
      return file;
    }));
  const closeFile = (f: File) =>
    new Promise<void>((resolve) => {
      if (f.closed) return resolve();
      f.once('close', () => resolve());
      f.destroy();
    });
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      open().then(
        (f) => f.write(chunk, (e) => cb(e ?? undefined)),
        (e: Error) => cb(e),
      );
    },
    final(cb) {
      open()
        .then(
          (f) =>
            new Promise<void>((resolve, reject) => {
              f.once('error', reject);
              f.end(() => resolve());
            }),
        )
        .then(() => rename(tmp, path))
        .then(() => {
          onDone(size, hash.digest('hex'));
          cb();
        }, cb);
    },
    destroy(error, cb) {
      destroyed = true;
      // The file may still be opening: wait until it is open and closed before removing it.
      Promise.resolve(opening)
        .then((f) => (f ? closeFile(f) : undefined), () => undefined)
        .then(() => rm(tmp, { force: true }))
        .then(
          () => cb(error),
          () => cb(error),
        );
    },
  });
}

export async function backupToDir(
  source: BackupSource,
  dir: string,
  options: { setId?: string; logger?: Logger; signal?: AbortSignal } = {},
): Promise<DirBackup> {
  const artifacts: ArtifactRecord[] = [];
  const compression: DirBackup['compression'] = {};
  const startedAt = new Date().toISOString();
  const artifact = (name: string, opts: ArtifactOptions = {}): Writable => {
    compression[name] = opts.compression === undefined ? 'engine-default' : opts.compression;
    const path = `${source.name}/${name}`;
    return artifactWriter(join(dir, path), (size, sha256) => {
      artifacts.push({
        name,
        path,
        size,
        sha256,
        rawSize: size,
        codecs: [],
        ...(opts.contentType ? { contentType: opts.contentType } : {}),
        ...(opts.restoreHint ? { manualRestore: `cat ${path} | ${opts.restoreHint}` } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
      });
    });
  };
  const ctx = {
    setId: options.setId ?? 'test_20260101_020000',
    tier: 'daily',
    signal: options.signal ?? new AbortController().signal,
    logger: options.logger ?? silentLogger,
    artifact,
    async writeArtifact(name: string, body: Readable | AsyncIterable<Uint8Array>, opts?: ArtifactOptions) {
      await pipeline(body, artifact(name, opts));
    },
  };
  let result: SourceBackupResult | undefined;
  let error: unknown;
  try {
    result = await source.backup(ctx);
  } catch (e) {
    error = e;
  }
  const finishedAt = new Date().toISOString();
  const component: ComponentManifest = {
    name: source.name,
    status: error ? 'failed' : 'ok',
    startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
    artifacts,
    metadata: JSON.parse(JSON.stringify(result?.metadata ?? {})) as Record<string, unknown>,
    warnings: result?.warnings ?? [],
    ...(error ? { error: { code: String((error as { code?: unknown }).code ?? 'INTERNAL'), message: String((error as Error).message) } } : {}),
  };
  return { component, compression, ...(result ? { result } : {}), ...(error ? { error } : {}) };
}

/** Opens an artifact like the engine does: the stream errors at its end when the bytes do not match the manifest. */
function openArtifact(dir: string, component: ComponentManifest, name: string): Readable {
  const record = component.artifacts.find((a) => a.name === name);
  if (!record) throw new Error(`no artifact ${name}`);
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const digest = hash.digest('hex');
      cb(digest === record.sha256 ? null : new ChecksumError(`${record.path}: sha256 ${digest} does not match the manifest ${record.sha256}`));
    },
  });
  const file = createReadStream(join(dir, record.path));
  file.on('error', (e) => check.destroy(e));
  return file.pipe(check);
}

export async function restoreFromDir(
  source: BackupSource,
  dir: string,
  component: ComponentManifest,
  options: { dryRun?: boolean; options?: Record<string, unknown>; logger?: Logger; opened?: string[] } = {},
): Promise<SourceRestoreResult> {
  return await source.restore({
    setId: 'test_20260101_020000',
    signal: new AbortController().signal,
    logger: options.logger ?? silentLogger,
    dryRun: options.dryRun ?? false,
    component,
    options: options.options ?? {},
    async open(name: string) {
      options.opened?.push(name);
      return openArtifact(dir, component, name);
    },
  });
}

export async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
