import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Dirent } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat as fsStat,
  statfs,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BackupError,
  NotFoundError,
  type Storage,
  type StorageCapacity,
  type StorageCapabilities,
  type LocalFileWriter,
  type StorageEntry,
  type StoragePutOptions,
} from '@scholaria/backup-core';
import { abortedError, fsFailure, linkRefused } from './fs-errors.js';
import { TEMP_PREFIX, validateKey, validatePrefix } from './fs-keys.js';
import { parseFsStorageOptions, type FsStorageOptions } from './fs-storage-options.js';

/**
 * The fs storage: declares every capability (`deleteMany`, `capacity`, `localFiles`), also
 * reachable as methods; `stat` and `createExclusive` are fs-only helpers the engine does not use.
 */
export interface FsStorage extends Storage {
  readonly capabilities: Required<StorageCapabilities>;
  /** Absolute root directory. */
  readonly root: string;
  deleteMany(keys: string[]): Promise<{ deleted: string[]; failed: { key: string; error: string }[] }>;
  stat(key: string): Promise<StorageEntry | undefined>;
  localPath(key: string): Promise<string | undefined>;
  capacity(): Promise<StorageCapacity>;
  createExclusive(key: string, body: Buffer): Promise<boolean>;
  deletePrefix(prefix: string): Promise<void>;
  /** A new file that becomes `key` on commit (see `LocalFilesCapability.createFile`). */
  createFile(key: string, options?: { signal?: AbortSignal }): Promise<LocalFileWriter>;
  /**
   * Removes temp files left by killed writers (they are invisible to `list`) that have not been
   * modified for `olderThanMs` (default: the `staleTempAfterMs` option), and the folders they
   * leave empty; with `dryRun` only finds them. Returns their keys.
   */
  removeStaleTempFiles(options?: { prefix?: string; olderThanMs?: number; dryRun?: boolean }): Promise<string[]>;
}

const errnoOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

const DELETE_CONCURRENCY = 8;

/** O_NOFOLLOW where the platform has it (not on Windows, where 0 leaves the flags unchanged). */
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

/**
 * Dirty bytes after which the sink starts writing the file back (an `fdatasync` on the thread
 * pool, without waiting for it): the disk then works while the source still produces, and the
 * final fsync only has the last few MiB left, where otherwise a whole artifact would wait in
 * the page cache and be written back at the end (about 1 s per 600 MB on the bench machine).
 */
const WRITE_BEHIND_BYTES = 32 * 1024 * 1024;

/**
 * A Writable over a FileHandle that leaves closing to the caller (who fsyncs first).
 * fs.WriteStream with autoClose: false never emits 'close', so pipeline() would wait forever.
 * With `writeBehind`, it also starts writing back every WRITE_BEHIND_BYTES; `settle()` waits for
 * the write-back in flight and rethrows its error (an I/O error must fail the put).
 */
function fileHandleSink(handle: FileHandle, writeBehind = false): Writable & { bytesWritten: number; settle(): Promise<void> } {
  let dirty = 0;
  let flushing: Promise<void> | undefined;
  let flushError: unknown;
  const writeAll = async (chunk: Buffer) => {
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
    if (!writeBehind) return;
    if (flushError !== undefined) throw flushError;
    dirty += chunk.length;
    if (dirty >= WRITE_BEHIND_BYTES && !flushing) {
      dirty = 0;
      flushing = handle.datasync().then(
        () => {
          flushing = undefined;
        },
        (error: unknown) => {
          flushError = error;
          flushing = undefined;
        },
      );
    }
  };
  const sink = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer | string, encoding, callback) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
      writeAll(bytes).then(() => {
        sink.bytesWritten += bytes.length;
        callback();
      }, callback);
    },
  }) as Writable & { bytesWritten: number; settle(): Promise<void> };
  sink.bytesWritten = 0;
  sink.settle = async () => {
    await flushing;
    if (flushError !== undefined) throw flushError;
  };
  return sink;
}

export function createFsStorage(options: FsStorageOptions): FsStorage {
  const opts = parseFsStorageOptions(options);
  const root = path.resolve(opts.root);
  const name = `fs:${root}`;

  const pathOf = (segments: string[]) => path.join(root, ...segments);
  const tempName = () => `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`;

  /**
   * mkdir -p with an explicit mode on every directory it creates (mkdir's own mode is cut by
   * the umask). Directories that already exist, including a pre-existing root, keep their mode.
   */
  async function ensureDir(dir: string): Promise<void> {
    try {
      await mkdir(dir, { mode: opts.dirMode });
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'EEXIST') return;
      if (errno !== 'ENOENT') throw error;
      const parent = path.dirname(dir);
      if (parent === dir) throw error;
      await ensureDir(parent);
      try {
        await mkdir(dir, { mode: opts.dirMode });
      } catch (retryError) {
        if (errnoOf(retryError) === 'EEXIST') return;
        throw retryError;
      }
    }
    await chmod(dir, opts.dirMode);
  }

  /**
   * Refuses a key whose folders (below the root) include a symbolic link: this storage never
   * follows links under its root, so a planted `set/redis -> /etc` cannot make it read, write or
   * delete outside. (The root itself may be a link: the operator chose it.) A folder that does
   * not exist is fine: the caller then meets ENOENT. `last` also checks the key's own entry.
   */
  async function assertNoLinks(segments: string[], op: string, key: string, last = false): Promise<void> {
    const upTo = last ? segments.length : segments.length - 1;
    let at = root;
    for (let i = 0; i < upTo; i++) {
      at = path.join(at, segments[i]!);
      let info;
      try {
        info = await lstat(at);
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === 'ENOENT' || errno === 'ENOTDIR') return;
        throw fsFailure(error, { root, op, key });
      }
      if (info.isSymbolicLink()) throw linkRefused(root, op, key, segments.slice(0, i + 1).join('/'));
      if (i < segments.length - 1 && !info.isDirectory()) return;
    }
  }

  /** Opens a fresh temp file in `dir`. Retries when a concurrent delete removed the empty dir. */
  async function openTemp(dir: string): Promise<{ handle: FileHandle; tempPath: string }> {
    for (let attempt = 0; ; attempt++) {
      await ensureDir(dir);
      const tempPath = path.join(dir, tempName());
      try {
        const handle = await open(tempPath, 'wx', opts.fileMode);
        try {
          await handle.chmod(opts.fileMode);
        } catch (error) {
          await handle.close().catch(() => undefined);
          await unlink(tempPath).catch(() => undefined);
          throw error;
        }
        return { handle, tempPath };
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < 5) continue;
        throw error;
      }
    }
  }

  async function syncDir(dir: string): Promise<void> {
    if (!opts.fsync) return;
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } catch (error) {
      // Some file systems (and some FUSE mounts) refuse fsync on a directory; the rename is
      // still atomic there, only its durability across a power cut is up to the file system.
      if (errnoOf(error) !== 'EINVAL' && errnoOf(error) !== 'ENOTSUP') throw error;
    } finally {
      await handle.close();
    }
  }

  function isStaleTemp(name: string, mtimeMs: number, olderThanMs: number): boolean {
    return name.startsWith(TEMP_PREFIX) && Date.now() - mtimeMs >= olderThanMs;
  }

  /**
   * Removes `dir` and its parents up to (not including) the root while they are empty. Temp
   * files of writers that died long ago do not keep a directory alive.
   */
  async function pruneEmptyDirs(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(root + path.sep)) {
      try {
        await rmdir(current);
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === 'ENOENT') {
          current = path.dirname(current);
          continue;
        }
        if (errno !== 'ENOTEMPTY' && errno !== 'EEXIST') return;
        if (!(await removeOnlyStaleTemps(current))) return;
        try {
          await rmdir(current);
        } catch {
          return;
        }
      }
      current = path.dirname(current);
    }
  }

  /** True when `dir` held nothing but stale temp files, which are now removed. */
  async function removeOnlyStaleTemps(dir: string): Promise<boolean> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    const stale: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) return false;
      const full = path.join(dir, entry.name);
      const info = await fsStat(full).catch(() => undefined);
      if (!info || !isStaleTemp(entry.name, info.mtimeMs, opts.staleTempAfterMs)) return false;
      stale.push(full);
    }
    await Promise.all(stale.map((file) => unlink(file).catch(() => undefined)));
    return true;
  }

  async function writeTempFile(
    dir: string,
    body: Readable | Buffer,
    signal: AbortSignal | undefined,
  ): Promise<{ tempPath: string; size: number }> {
    const { handle, tempPath } = await openTemp(dir);
    let closed = false;
    try {
      let size: number;
      if (Buffer.isBuffer(body)) {
        await handle.writeFile(body);
        size = body.length;
      } else {
        const out = fileHandleSink(handle, opts.fsync);
        try {
          await pipeline(body, out, signal ? { signal } : {});
        } finally {
          // Never close the handle under a write-back still in flight.
          await out.settle().catch(() => undefined);
        }
        await out.settle();
        size = out.bytesWritten;
      }
      if (opts.fsync) await handle.sync();
      closed = true;
      await handle.close();
      return { tempPath, size };
    } catch (error) {
      if (!closed) await handle.close().catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
      throw error;
    }
  }

  const base: Omit<FsStorage, 'capabilities'> = {
    specVersion: 'v1',
    name,
    root,

    async put(key: string, body: Readable, options: StoragePutOptions = {}) {
      const { signal } = options;
      let segments: string[];
      try {
        segments = validateKey(key);
        if (signal?.aborted) throw abortedError(root, 'put', key, signal);
      } catch (error) {
        // The caller's pipeline would otherwise wait forever on a stream nobody reads.
        if (!body.destroyed) body.destroy();
        throw error;
      }
      const finalPath = pathOf(segments);
      const dir = path.dirname(finalPath);
      let tempPath: string | undefined;
      try {
        await assertNoLinks(segments, 'put', key);
        const written = await writeTempFile(dir, body, signal);
        tempPath = written.tempPath;
        // Abort is honoured up to the rename; after it the object exists and put succeeded.
        if (signal?.aborted) throw abortedError(root, 'put', key, signal);
        await rename(tempPath, finalPath);
        tempPath = undefined;
        await syncDir(dir);
        return { size: written.size };
      } catch (error) {
        if (!body.destroyed) body.destroy();
        if (tempPath) await unlink(tempPath).catch(() => undefined);
        await pruneEmptyDirs(dir);
        if (signal?.aborted) throw abortedError(root, 'put', key, signal);
        throw fsFailure(error, { root, op: 'put', key });
      }
    },

    async createFile(key: string, options: { signal?: AbortSignal } = {}): Promise<LocalFileWriter> {
      const { signal } = options;
      const segments = validateKey(key);
      if (signal?.aborted) throw abortedError(root, 'put', key, signal);
      const finalPath = pathOf(segments);
      const dir = path.dirname(finalPath);
      let opened: { handle: FileHandle; tempPath: string };
      try {
        await assertNoLinks(segments, 'put', key);
        opened = await openTemp(dir);
      } catch (error) {
        await pruneEmptyDirs(dir);
        throw fsFailure(error, { root, op: 'put', key });
      }
      const { handle, tempPath } = opened;
      let state: 'open' | 'committing' | 'done' = 'open';
      const remove = async () => {
        await handle.close().catch(() => undefined);
        await unlink(tempPath).catch(() => undefined);
        await pruneEmptyDirs(dir);
      };
      return {
        path: tempPath,
        fd: handle.fd,
        async flush() {
          if (!opts.fsync || state !== 'open') return;
          try {
            await handle.datasync();
          } catch (error) {
            throw fsFailure(error, { root, op: 'put', key });
          }
        },
        async commit() {
          if (state !== 'open') throw new BackupError('INTERNAL', `fs:${root}: createFile("${key}"): commit called twice or after abort`);
          state = 'committing';
          try {
            if (signal?.aborted) throw abortedError(root, 'put', key, signal);
            if (opts.fsync) await handle.sync();
            const { size } = await handle.stat();
            await handle.close();
            if (signal?.aborted) throw abortedError(root, 'put', key, signal);
            await rename(tempPath, finalPath);
            state = 'done';
            await syncDir(dir);
            return { size };
          } catch (error) {
            if (state !== 'done') {
              state = 'done';
              await remove();
            }
            throw fsFailure(error, { root, op: 'put', key });
          }
        },
        async abort() {
          if (state !== 'open') return;
          state = 'done';
          await remove();
        },
      };
    },

    async get(key: string, options: { signal?: AbortSignal } = {}) {
      const segments = validateKey(key);
      const { signal } = options;
      if (signal?.aborted) throw abortedError(root, 'get', key, signal);
      const notFound = (cause?: unknown) =>
        new NotFoundError(`fs:${root}: object "${key}" not found`, {
          cause,
          hint: 'check the key (list the storage to see what exists)',
          details: { root, key },
        });
      let handle: FileHandle;
      try {
        await assertNoLinks(segments, 'get', key);
        handle = await open(pathOf(segments), fsConstants.O_RDONLY | O_NOFOLLOW);
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === 'ENOENT' || errno === 'ENOTDIR') throw notFound(error);
        if (errno === 'ELOOP') throw linkRefused(root, 'get', key, key);
        throw fsFailure(error, { root, op: 'get', key });
      }
      try {
        const info = await handle.stat();
        // open(2) succeeds on a directory: a prefix is not an object.
        if (!info.isFile()) throw notFound();
      } catch (error) {
        await handle.close().catch(() => undefined);
        throw fsFailure(error, { root, op: 'get', key });
      }
      // 1 MiB reads: a restore reads whole artifacts, and 64 KiB reads cost a syscall and a stream round each.
      const stream = handle.createReadStream({ highWaterMark: 1024 * 1024 });
      return signal ? addAbortSignal(signal, stream) : stream;
    },

    async list(prefix: string, options: { signal?: AbortSignal } = {}) {
      const { dirSegments } = validatePrefix(prefix);
      const { signal } = options;
      const entries: StorageEntry[] = [];

      const walk = async (dir: string, rel: string): Promise<void> => {
        if (signal?.aborted) throw abortedError(root, 'list', prefix, signal);
        let dirents: Dirent[];
        try {
          dirents = await readdir(dir, { withFileTypes: true });
        } catch (error) {
          const errno = errnoOf(error);
          if (errno === 'ENOENT' || errno === 'ENOTDIR') return;
          throw fsFailure(error, { root, op: 'list', key: prefix });
        }
        await Promise.all(
          dirents.map(async (dirent) => {
            if (dirent.name.startsWith(TEMP_PREFIX)) return;
            const key = rel ? `${rel}/${dirent.name}` : dirent.name;
            const full = path.join(dir, dirent.name);
            if (dirent.isDirectory()) {
              const asDir = `${key}/`;
              if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) await walk(full, key);
              return;
            }
            // Symlinks and special files are not objects this storage wrote.
            if (!dirent.isFile() || !key.startsWith(prefix)) return;
            try {
              const info = await fsStat(full);
              entries.push({ key, size: info.size, modifiedAt: info.mtime });
            } catch (error) {
              if (errnoOf(error) === 'ENOENT') return; // deleted while listing
              throw fsFailure(error, { root, op: 'list', key: prefix });
            }
          }),
        );
      };

      // A listed folder that is a link (set/ -> /elsewhere) is not walked: nothing under it is an object here.
      if (dirSegments.length > 0) {
        try {
          await assertNoLinks(dirSegments, 'list', prefix, true);
        } catch (error) {
          if (BackupError.isInstance(error) && error.details?.link) return [];
          throw error;
        }
      }
      await walk(pathOf(dirSegments), dirSegments.join('/'));
      return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async delete(key: string) {
      const segments = validateKey(key);
      const target = pathOf(segments);
      try {
        // unlink(2) removes a link itself, never its target; a linked folder above it is refused.
        await assertNoLinks(segments, 'delete', key);
        await unlink(target);
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === 'ENOENT' || errno === 'ENOTDIR') return;
        if (errno === 'EISDIR' || errno === 'EPERM') {
          // Linux reports unlink(directory) as EISDIR, others as EPERM: a prefix is not an object.
          const info = await fsStat(target).catch(() => undefined);
          if (info?.isDirectory()) return;
        }
        throw fsFailure(error, { root, op: 'delete', key });
      }
      await pruneEmptyDirs(path.dirname(target));
    },

    async deleteMany(keys: string[]) {
      const deleted: string[] = [];
      const failed: { key: string; error: string }[] = [];
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const key = keys[next++] as string;
          try {
            await storage.delete(key);
            deleted.push(key);
          } catch (error) {
            failed.push({ key, error: error instanceof Error ? error.message : String(error) });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
      return { deleted, failed };
    },

    async stat(key: string) {
      const segments = validateKey(key);
      try {
        await assertNoLinks(segments, 'stat', key);
        const info = await lstat(pathOf(segments));
        return info.isFile() ? { key, size: info.size, modifiedAt: info.mtime } : undefined;
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
        throw fsFailure(error, { root, op: 'stat', key });
      }
    },

    async localPath(key: string) {
      const segments = validateKey(key);
      const file = pathOf(segments);
      try {
        // A link (or a linked folder) is never handed out: the caller would read its target.
        await assertNoLinks(segments, 'stat', key);
        return (await lstat(file)).isFile() ? file : undefined;
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
        throw fsFailure(error, { root, op: 'stat', key });
      }
    },

    async capacity() {
      // The root may not exist before the first write; its nearest existing ancestor is on the
      // file system it will be created on.
      let probe = root;
      for (;;) {
        try {
          const info = await statfs(probe);
          return { free: info.bavail * info.bsize, total: info.blocks * info.bsize };
        } catch (error) {
          const parent = path.dirname(probe);
          if (errnoOf(error) !== 'ENOENT' || parent === probe) {
            throw fsFailure(error, { root, op: 'capacity' });
          }
          probe = parent;
        }
      }
    },

    async createExclusive(key: string, body: Buffer) {
      const segments = validateKey(key);
      const finalPath = pathOf(segments);
      const dir = path.dirname(finalPath);
      let tempPath: string | undefined;
      try {
        // Written in full, then hard-linked into place: link(2) fails with EEXIST atomically,
        // and a reader never sees a half-written lock.
        tempPath = (await writeTempFile(dir, body, undefined)).tempPath;
        let created: boolean;
        try {
          await link(tempPath, finalPath);
          created = true;
        } catch (error) {
          const errno = errnoOf(error);
          if (errno === 'EEXIST') created = false;
          else if (errno === 'EPERM' || errno === 'ENOTSUP' || errno === 'EOPNOTSUPP' || errno === 'ENOSYS') {
            created = await createWithOpenWx(finalPath, body);
          } else throw error;
        }
        await unlink(tempPath);
        tempPath = undefined;
        if (created) await syncDir(dir);
        return created;
      } catch (error) {
        if (tempPath) await unlink(tempPath).catch(() => undefined);
        throw fsFailure(error, { root, op: 'createExclusive', key });
      }
    },

    async deletePrefix(prefix: string) {
      const { dirSegments } = validatePrefix(prefix);
      if (!prefix.endsWith('/') || dirSegments.length === 0) {
        throw invalidPrefixForDelete(prefix);
      }
      const target = pathOf(dirSegments);
      try {
        // Folders above must be real; the folder itself may be a link: rm removes the link, and
        // rm never follows links inside (it lstats), so a target outside the root is never touched.
        await assertNoLinks(dirSegments, 'deletePrefix', prefix);
        await rm(target, { recursive: true, force: true });
      } catch (error) {
        throw fsFailure(error, { root, op: 'deletePrefix', key: prefix });
      }
      await pruneEmptyDirs(path.dirname(target));
    },

    async removeStaleTempFiles(options: { prefix?: string; olderThanMs?: number; dryRun?: boolean } = {}) {
      const { dirSegments } = validatePrefix(options.prefix ?? '');
      const olderThanMs = options.olderThanMs ?? opts.staleTempAfterMs;
      const removed: string[] = [];
      const sweep = async (dir: string, rel: string): Promise<void> => {
        let dirents: Dirent[];
        try {
          dirents = await readdir(dir, { withFileTypes: true });
        } catch (error) {
          const errno = errnoOf(error);
          if (errno === 'ENOENT' || errno === 'ENOTDIR') return;
          throw fsFailure(error, { root, op: 'removeStaleTempFiles' });
        }
        for (const dirent of dirents) {
          const full = path.join(dir, dirent.name);
          const key = rel ? `${rel}/${dirent.name}` : dirent.name;
          if (dirent.isDirectory()) {
            await sweep(full, key);
          } else if (dirent.isFile() && dirent.name.startsWith(TEMP_PREFIX)) {
            const info = await fsStat(full).catch(() => undefined);
            if (info && isStaleTemp(dirent.name, info.mtimeMs, olderThanMs)) {
              if (!options.dryRun) await unlink(full).catch(() => undefined);
              removed.push(key);
            }
          }
        }
        if (dir !== root && !options.dryRun) await pruneEmptyDirs(dir);
      };
      await sweep(pathOf(dirSegments), dirSegments.join('/'));
      return removed;
    },
  };
  // Declared, so the engine uses them (prune's temp sweep, direct-file restores) and the
  // conformance suite tests them.
  const storage: FsStorage = Object.assign(base, {
    capabilities: Object.freeze({
      deleteMany: base.deleteMany,
      capacity: base.capacity,
      localFiles: Object.freeze({ localPath: base.localPath, deletePrefix: base.deletePrefix, removeStaleTempFiles: base.removeStaleTempFiles, createFile: base.createFile }),
    }),
  });

  function invalidPrefixForDelete(prefix: string): BackupError {
    return new BackupError('INVALID_KEY', `fs:${root}: deletePrefix needs a folder prefix ending in "/", not "${prefix}"`, {
      hint: 'Pass a set folder such as "scholaria_backup_20261126_020000/".',
    });
  }

  /** For file systems without hard links: O_EXCL create, at the price of a brief partial read window. */
  async function createWithOpenWx(finalPath: string, body: Buffer): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(finalPath, 'wx', opts.fileMode);
    } catch (error) {
      if (errnoOf(error) === 'EEXIST') return false;
      throw error;
    }
    try {
      await handle.chmod(opts.fileMode);
      await handle.writeFile(body);
      if (opts.fsync) await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(finalPath).catch(() => undefined);
      throw error;
    }
    await handle.close();
    return true;
  }

  return storage;
}
