import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { ArtifactRecord } from '../manifest/manifest-schema.js';
import { BackupError, ChecksumError } from '../errors/backup-error.js';

/** What identifies one version of a file: a replaced or rewritten file differs in one of these. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** A stored artifact as a local file whose SHA-256 the engine has verified (see `SourceRestoreContext.localFile`). */
export interface VerifiedLocalFile {
  /** Absolute path of the file. */
  path: string;
  /**
   * A read-only descriptor opened on the verified file at offset 0: give it to a child as its
   * stdin (`spawn(..., { stdio: [file.fd, ...] })`) so the tool reads exactly the verified file.
   */
  fd: number;
  size: number;
  /** Closes `fd`. The caller must call it when done. */
  close(): Promise<void>;
}

// Two reads in flight of this size: large enough that the syscalls vanish next to the hashing.
const READ_BYTES = 2 * 1024 * 1024;

function identityOf(s: BigIntStats): FileIdentity {
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function changedError(artifact: ArtifactRecord, when: string): BackupError {
  return new ChecksumError(`${artifact.path}: the stored file changed ${when}`, {
    hint: 'Something is writing to the backup storage during the restore; stop it and run the restore again.',
    details: { path: artifact.path },
  });
}

/**
 * Checks size and SHA-256 of a local file against the manifest by reading it directly (no
 * stream stages), and returns the identity of the version it read. Fails if the file changed
 * while it was read.
 */
export async function verifyLocalFile(
  path: string,
  artifact: ArtifactRecord,
  options: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {},
): Promise<FileIdentity> {
  const handle = await open(path, 'r');
  try {
    const before = identityOf(await handle.stat({ bigint: true }));
    const hash = createHash('sha256');
    const buffers = [Buffer.allocUnsafe(READ_BYTES), Buffer.allocUnsafe(READ_BYTES)];
    let position = 0;
    let turn = 0;
    // Positional reads, so the next one runs on the thread pool while this one is hashed.
    let pending = handle.read(buffers[0]!, 0, READ_BYTES, 0);
    for (;;) {
      const { bytesRead, buffer } = await pending;
      if (bytesRead === 0) break;
      options.signal?.throwIfAborted();
      position += bytesRead;
      turn ^= 1;
      pending = handle.read(buffers[turn]!, 0, READ_BYTES, position);
      hash.update(buffer.subarray(0, bytesRead));
      options.onBytes?.(position);
    }
    const after = identityOf(await handle.stat({ bigint: true }));
    if (!sameIdentity(before, after)) throw changedError(artifact, 'while it was being verified');
    const actual = hash.digest('hex');
    if (position !== artifact.size || actual !== artifact.sha256) {
      throw new ChecksumError(
        `${artifact.path}: checksum mismatch (expected ${artifact.size} bytes sha256 ${artifact.sha256}, read ${position} bytes sha256 ${actual})`,
        { hint: 'The stored artifact is damaged or was changed. Restore from another set or another storage.', details: { path: artifact.path } },
      );
    }
    return after;
  } finally {
    await handle.close();
  }
}

/** Opens a verified file again, refusing it unless it is still the version that was verified. */
export async function openVerifiedFile(path: string, identity: FileIdentity, artifact: ArtifactRecord): Promise<VerifiedLocalFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw changedError(artifact, `after it was verified (${(error as NodeJS.ErrnoException).code ?? 'cannot open'})`);
  }
  try {
    if (!sameIdentity(identity, identityOf(await handle.stat({ bigint: true })))) throw changedError(artifact, 'after it was verified');
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
  return { path, fd: handle.fd, size: Number(identity.size), close: () => handle.close() };
}
