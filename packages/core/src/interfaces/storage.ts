import type { Readable } from 'node:stream';

export interface StorageEntry {
  /** Relative, '/'-separated key. */
  key: string;
  size: number;
  modifiedAt: Date;
}

export interface StoragePutOptions {
  signal?: AbortSignal;
  contentType?: string;
  /** Size in bytes when known in advance (helps multipart part sizing). */
  size?: number;
  /** When the set this object belongs to may be deleted at the earliest (object lock). */
  retainUntil?: Date;
}

export interface StorageCapacity {
  free: number;
  total: number;
}

/** Several keys deleted in one call (S3 DeleteObjects); without it prune deletes one by one. */
export type DeleteManyCapability = (keys: string[]) => Promise<{ deleted: string[]; failed: { key: string; error: string }[] }>;

/**
 * For storages that keep objects as plain local files (fs): what a killed writer leaves behind
 * that `list` does not show can be found and removed, and a restore may read a file directly.
 */
export interface LocalFilesCapability {
  /**
   * The absolute path of the local file that holds `key`; undefined when the key is not such a
   * file. A restore uses it to verify an artifact with direct reads and hand the verified file
   * to a tool that reads files itself (pg_restore), instead of piping the bytes through Node.
   */
  localPath(key: string): Promise<string | undefined>;
  /**
   * Removes everything under `prefix` (which ends with '/'), including what a killed writer
   * left that `list` does not show (temp files). Prune calls it after deleting a set's keys.
   */
  deletePrefix(prefix: string): Promise<void>;
  /**
   * Removes what killed writers left that `list` does not show (temp files) and that has not
   * been modified for `olderThanMs`; with `dryRun` only reports it. Returns the keys. Prune
   * calls it with the incomplete-set grace period, so a folder holding nothing but such a file
   * (a backup killed during its first artifact) does not stay behind unseen.
   */
  removeStaleTempFiles(options?: { prefix?: string; olderThanMs?: number; dryRun?: boolean }): Promise<string[]>;
  /**
   * Optional. Opens a new file that becomes `key` on `commit()`: a backup gives its descriptor
   * to a program as stdout (pg_dump | zstd > file), so the bytes never pass through Node, and the
   * engine hashes the file by reading it back. Until the commit nothing is visible under `key`
   * (it is a temp file, which `removeStaleTempFiles` finds if the writer is killed).
   */
  createFile?(key: string, options?: { signal?: AbortSignal }): Promise<LocalFileWriter>;
}

/** A file being written for one key (`LocalFilesCapability.createFile`). */
export interface LocalFileWriter {
  /** Absolute path of the file while it is written (not yet `key`): read it back to hash it. */
  readonly path: string;
  /** A write-only descriptor on the file at offset 0: give it to a child as its stdout. */
  readonly fd: number;
  /** Starts writing the file's data back to the disk (fdatasync) and waits for it. */
  flush(): Promise<void>;
  /** Makes the file durable and visible as `key` (fsync, rename, folder fsync); returns its size. */
  commit(): Promise<{ size: number }>;
  /** Removes the file; nothing is left under `key`. Safe to call after a failed commit. */
  abort(): Promise<void>;
}

/** The optional abilities of a storage; each one declared is covered by `storageConformance`. */
export interface StorageCapabilities {
  deleteMany?: DeleteManyCapability;
  /** Free and total bytes, for the health check's free-space rule. */
  capacity?: () => Promise<StorageCapacity>;
  localFiles?: LocalFilesCapability;
}

/**
 * Where backup sets live. Keys are relative '/'-separated paths; storages reject keys with
 * '..', absolute paths or NUL bytes. `put` is all or nothing: a failed or aborted put leaves
 * no object behind under `key`.
 */
export interface Storage {
  readonly specVersion: 'v1';
  /** Human readable identity without secrets, e.g. 'fs:/backup' or 's3://bucket/prefix'. */
  readonly name: string;
  put(key: string, body: Readable, options?: StoragePutOptions): Promise<{ size: number }>;
  /** Throws NotFoundError (code NOT_FOUND) when the key does not exist. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /** Every object whose key starts with `prefix` (recursive), in any order. */
  list(prefix: string, options?: { signal?: AbortSignal }): Promise<StorageEntry[]>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * What this storage can do beyond the required methods, declared up front (like a kysely
   * dialect's adapter) rather than guessed from which optional methods exist. The engine uses
   * nothing else, and `storageConformance` tests every capability a storage declares.
   */
  readonly capabilities?: StorageCapabilities;
  close?(): Promise<void>;
}
