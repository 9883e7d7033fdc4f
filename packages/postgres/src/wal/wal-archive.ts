import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PassThrough, Readable, Transform, Writable, pipeline as pipelineCb, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { BackupError, HashStream, openArtifact, type Codec, type CodecRecord, type Storage, type StorageEntry } from '@scholaria/backup-core';
import { z } from 'zod';
import { walFileKind } from './wal-names.js';

/** Storage folder of the WAL archive, beside the sets (not a set: list and prune ignore it). */
export const WAL_PREFIX = 'wal';

/**
 * Written after the WAL file itself, as the commit marker: a file without its `.json` is a
 * push that did not finish and does not exist for fetch, plan, verify or retention.
 */
export const walRecordSchema = z.object({
  formatVersion: z.literal(1),
  /** The name PostgreSQL gave the file (%f). */
  name: z.string(),
  /** Key of the stored bytes, relative to the storage root. */
  key: z.string(),
  /** Stored bytes (after codecs) and their SHA-256. */
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The file as PostgreSQL wrote it. */
  rawSize: z.number().int().nonnegative(),
  rawSha256: z.string().regex(/^[0-9a-f]{64}$/),
  codecs: z.array(z.object({ name: z.string(), params: z.record(z.string(), z.unknown()).optional() })),
  archivedAt: z.string(),
  /** `zstd -d < wal/X.zst > X` and the like. */
  manualRestore: z.string(),
});
export type WalRecord = z.infer<typeof walRecordSchema>;

export interface WalArchiveOptions {
  /** Every storage the engine writes to; pushes go to all, fetches read the first that has the file. */
  storages: Storage[];
  /** Encoders in order (compression, then encryption), as for artifacts. */
  codecs: Codec[];
  /** Extra codecs able to decode (age identities for restores). */
  decoders?: Codec[];
  prefix?: string;
  clock?: () => Date;
  signal?: AbortSignal;
}

export interface PushResult {
  name: string;
  /** 'stored' when written now, 'already-archived' when the same bytes were there. */
  outcome: 'stored' | 'already-archived';
  size: number;
  rawSize: number;
}

export interface ArchivedWalFile {
  name: string;
  /** When the commit marker was written (storage modification time). */
  archivedAt: Date;
  storage: string;
}

const recordKey = (prefix: string, name: string) => `${prefix}/${name}.json`;

async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function walError(code: 'USAGE' | 'VERIFY_FAILED' | 'STORAGE_FAILED' | 'NOT_FOUND' | 'CHECKSUM_MISMATCH', message: string, hint: string, cause?: unknown) {
  return new BackupError(code, message, { component: 'wal', hint, ...(cause !== undefined ? { cause } : {}) });
}

function manualDecode(key: string, codecs: Codec[], name: string): string {
  const steps = [...codecs].reverse().map((c) => c.manualDecode);
  if (steps.length === 0) return `cp ${key} ${name}`;
  return `${steps[0]} < ${key}${steps.slice(1).map((s) => ` | ${s}`).join('')} > ${name}`;
}

/** Checks the decoded bytes against the record before they are allowed to become %p. */
class RawVerify extends Transform {
  private readonly hash = createHash('sha256');
  private size = 0;
  constructor(private readonly record: WalRecord) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const sha = this.hash.digest('hex');
    if (sha !== this.record.rawSha256 || this.size !== this.record.rawSize) {
      cb(
        walError(
          'CHECKSUM_MISMATCH',
          `WAL file ${this.record.name}: decoded bytes do not match the archive record (expected ${this.record.rawSize} bytes sha256 ${this.record.rawSha256}, got ${this.size} bytes sha256 ${sha})`,
          'The archived file is damaged; recovery cannot use it. Restore from another storage or choose a target before this file.',
        ),
      );
      return;
    }
    cb();
  }
}

/**
 * The WAL archive on the backup storages: archive_command's push, restore_command's fetch,
 * listing for plans, verification and retention.
 */
export class WalArchive {
  readonly prefix: string;
  constructor(private readonly o: WalArchiveOptions) {
    this.prefix = o.prefix ?? WAL_PREFIX;
    if (o.storages.length === 0) throw walError('USAGE', 'the WAL archive needs at least one storage', 'configure BACKUP_DIR or a storage in the config file');
  }

  private now(): Date {
    return this.o.clock?.() ?? new Date();
  }

  /** Reads the commit record of `name` from the first storage that has it; undefined if none. */
  async record(name: string): Promise<{ record: WalRecord; storage: Storage } | undefined> {
    for (const storage of this.o.storages) {
      let stream: Readable;
      try {
        stream = await storage.get(recordKey(this.prefix, name), this.o.signal ? { signal: this.o.signal } : {});
      } catch (error) {
        if (BackupError.isInstance(error) && error.code === 'NOT_FOUND') continue;
        throw error;
      }
      const text = (await readAll(stream)).toString('utf8');
      const parsed = walRecordSchema.safeParse(JSON.parse(text));
      if (!parsed.success || parsed.data.name !== name) {
        throw walError('VERIFY_FAILED', `WAL archive record ${recordKey(this.prefix, name)} on ${storage.name} is not valid`, 'Remove the record and push the file again from pg_wal, or restore from another storage.');
      }
      return { record: parsed.data, storage };
    }
    return undefined;
  }

  /**
   * Archives one file from pg_wal (archive_command's %p). Same name and same bytes already
   * archived: success without writing; same name with other bytes: an error (a second cluster
   * archiving into the same place, or a damaged file), as pgBackRest does.
   */
  async push(path: string, options: { name?: string } = {}): Promise<PushResult> {
    const name = options.name ?? basename(path);
    if (!walFileKind(name)) {
      throw walError('USAGE', `wal-push: "${name}" is not a WAL segment, timeline history or backup label file name`, 'Use archive_command = \'scholaria-backup wal-push %p\' so PostgreSQL passes the file it wants archived.');
    }
    const existing = await this.record(name);
    if (existing) {
      const local = await hashFile(path);
      if (local.sha256 === existing.record.rawSha256 && local.size === existing.record.rawSize) {
        // Every storage must hold it: one may have been added since, or failed the first time.
        await this.pushMissing(path, name, existing.storage);
        return { name, outcome: 'already-archived', size: existing.record.size, rawSize: local.size };
      }
      throw walError(
        'VERIFY_FAILED',
        `wal-push: ${name} is already archived with different contents (archived sha256 ${existing.record.rawSha256}, ${existing.record.rawSize} bytes; this file sha256 ${local.sha256}, ${local.size} bytes)`,
        'Two clusters may be archiving into the same storage, or a restored server still archives on an old timeline. Give each cluster its own storage (or S3 prefix); never delete the archived file to make this pass.',
      );
    }
    const written = await this.writeTo(this.o.storages, path, name);
    return { name, outcome: 'stored', size: written.size, rawSize: written.rawSize };
  }

  private async pushMissing(path: string, name: string, has: Storage): Promise<void> {
    const missing: Storage[] = [];
    for (const storage of this.o.storages) {
      if (storage === has) continue;
      const key = recordKey(this.prefix, name);
      const found = (await storage.list(key)).some((e) => e.key === key);
      if (!found) missing.push(storage);
    }
    if (missing.length > 0) await this.writeTo(missing, path, name);
  }

  private async writeTo(storages: Storage[], path: string, name: string): Promise<WalRecord> {
    const key = `${this.prefix}/${name}${this.o.codecs.map((c) => c.extension).join('')}`;
    const raw = new HashStream();
    const stored = new HashStream();
    const encoders = this.o.codecs.map((c) => c.encode());
    // One read of the file, encoded once; pipe() to each storage's stream waits for the slowest.
    const branches = storages.map(() => new PassThrough({ highWaterMark: 1 << 20 }));
    const puts = storages.map((storage, i) => storage.put(key, branches[i]!, this.o.signal ? { signal: this.o.signal } : {}));
    for (const b of branches) stored.pipe(b);
    try {
      await Promise.all([
        pipeline([createReadStream(path, { highWaterMark: 1 << 20 }), raw, ...encoders, stored] as unknown as [Readable, Transform], this.o.signal ? { signal: this.o.signal } : {}).catch((error: unknown) => {
          for (const b of branches) b.destroy(error as Error);
          throw error;
        }),
        ...puts,
      ]);
    } catch (error) {
      for (const b of branches) b.destroy();
      await Promise.allSettled(puts);
      if (BackupError.isInstance(error)) throw error;
      throw walError('STORAGE_FAILED', `wal-push: archiving ${name} failed: ${(error as Error).message}`, 'PostgreSQL keeps the file in pg_wal and calls archive_command again; fix the storage (space, permissions, network).', error);
    }
    const record: WalRecord = {
      formatVersion: 1,
      name,
      key,
      size: stored.size,
      sha256: stored.sha256,
      rawSize: raw.size,
      rawSha256: raw.sha256,
      codecs: this.o.codecs.map((c) => c.describe()),
      archivedAt: this.now().toISOString(),
      manualRestore: manualDecode(key, this.o.codecs, name),
    };
    const body = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
    for (const storage of storages) await storage.put(recordKey(this.prefix, name), Readable.from([body]), { contentType: 'application/json', size: body.length });
    return record;
  }

  private decodersFor(codecs: CodecRecord[]): Codec[] {
    const pool = [...this.o.codecs, ...(this.o.decoders ?? [])];
    return codecs.map((record) => {
      // An age codec that can decrypt (has identities) is preferred over an encrypt-only one.
      const found = pool.filter((c) => c.name === record.name);
      const codec = found.at(-1);
      if (!codec) {
        throw walError('USAGE', `WAL files were archived with the "${record.name}" codec, which is not configured here`, `Configure ${record.name} (for age: BACKUP_ENCRYPTION_IDENTITY_FILE) for wal-fetch and restore.`);
      }
      return codec;
    });
  }

  /** Opens an archived file with its checksums verified and codecs undone. */
  async open(name: string): Promise<{ stream: Readable; record: WalRecord } | undefined> {
    const found = await this.record(name);
    if (!found) return undefined;
    const { record, storage } = found;
    const decoders = this.decodersFor(record.codecs);
    const slash = record.key.indexOf('/');
    const stream = await openArtifact({
      storage,
      setId: record.key.slice(0, slash),
      artifact: { name, path: record.key.slice(slash + 1), size: record.size, sha256: record.sha256, rawSize: record.rawSize, codecs: record.codecs },
      decoders,
      ...(this.o.signal ? { signal: this.o.signal } : {}),
    });
    // pipe() would not pass a checksum error on, and restore_command would wait for ever.
    const verify = new RawVerify(record);
    pipelineCb(stream, verify, (error) => {
      if (error && !verify.destroyed) verify.destroy(error);
    });
    return { stream: verify, record };
  }

  /**
   * restore_command's fetch: writes the verified, decoded file to `dest` atomically (temp file
   * in the same folder, fsync, rename). Returns false when the archive does not have it, which
   * PostgreSQL expects for the file after the last one and for history files that do not exist.
   */
  async fetch(name: string, dest: string): Promise<boolean> {
    const opened = await this.open(name);
    if (!opened) return false;
    const temp = join(dirname(dest), `.${basename(dest)}.${randomBytes(4).toString('hex')}.scholaria-tmp`);
    try {
      await pipeline(opened.stream, createWriteStream(temp, { mode: 0o600 }));
      // Durable before it takes the name recovery reads.
      const handle = await open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await rename(temp, dest);
    return true;
  }

  /** Every committed file (those with a record) on the first storage, oldest name first. */
  async list(storage: Storage = this.o.storages[0]!): Promise<ArchivedWalFile[]> {
    const entries: StorageEntry[] = await storage.list(`${this.prefix}/`, this.o.signal ? { signal: this.o.signal } : {});
    const out: ArchivedWalFile[] = [];
    for (const entry of entries) {
      const rel = entry.key.slice(this.prefix.length + 1);
      if (!rel.endsWith('.json') || rel.includes('/')) continue;
      const name = rel.slice(0, -'.json'.length);
      if (!walFileKind(name)) continue;
      out.push({ name, archivedAt: entry.modifiedAt, storage: storage.name });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Deletes archived files (record first, so a half-deleted file is not taken for present). */
  async remove(names: string[]): Promise<{ deleted: string[]; failed: { name: string; error: string }[] }> {
    const deleted: string[] = [];
    const failed: { name: string; error: string }[] = [];
    for (const name of names) {
      try {
        for (const storage of this.o.storages) {
          const found = await this.recordOn(storage, name);
          await storage.delete(recordKey(this.prefix, name));
          if (found) await storage.delete(found.key);
        }
        deleted.push(name);
      } catch (error) {
        failed.push({ name, error: (error as Error).message });
      }
    }
    return { deleted, failed };
  }

  private async recordOn(storage: Storage, name: string): Promise<WalRecord | undefined> {
    try {
      const text = (await readAll(await storage.get(recordKey(this.prefix, name)))).toString('utf8');
      const parsed = walRecordSchema.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : undefined;
    } catch (error) {
      if (BackupError.isInstance(error) && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** Reads a small archived file (timeline history) as text; undefined if not archived. */
  async readText(name: string): Promise<string | undefined> {
    const opened = await this.open(name);
    if (!opened) return undefined;
    return (await readAll(opened.stream)).toString('utf8');
  }

  /** Reads and decodes a file fully, checking both checksums, and discards the bytes. */
  async check(name: string): Promise<void> {
    const opened = await this.open(name);
    if (!opened) throw walError('NOT_FOUND', `WAL file ${name} is not in the archive`, 'The WAL has a gap here.');
    await pipeline(
      opened.stream,
      new Writable({
        highWaterMark: 1 << 20,
        write(_c, _e, cb) {
          cb();
        },
      }),
    );
  }
}
