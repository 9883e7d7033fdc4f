import { createHash, randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { Readable } from 'node:stream';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupError, isAbortError, type Storage } from '@scholaria/backup-core';

export interface StorageConformanceOptions {
  /** Shown in the suite title, e.g. 'fs' or 's3 (s3rver)'. */
  name: string;
  /**
   * Called before every test: returns a storage over an empty location (fresh directory,
   * bucket or prefix) and how to remove it afterwards.
   */
  create: () => Promise<{ storage: Storage; cleanup?: () => Promise<void> }>;
  /**
   * Groups to leave out. Every capability (`capabilities.deleteMany`, `capabilities.capacity`,
   * `capabilities.localFiles`) is tested unless skipped here, and a storage that does not declare
   * one fails its group, so a missing capability is always a visible decision; a storage that
   * declares one it skips here fails too, so what it declares is always tested.
   */
  skip?: {
    largeObject?: boolean;
    capacity?: boolean;
    deleteMany?: boolean;
    localFiles?: boolean;
    abort?: boolean;
  };
  /** Size of the large streamed object. Default 64 MiB. */
  largeObjectBytes?: number;
  /**
   * Upper bound for the growth of the process RSS while the large object is put. Default
   * 64 MiB + largeObjectBytes / 8: well above what streaming needs, well below what holding
   * the object (often twice, once as chunks and once concatenated) costs.
   */
  largeObjectRssBound?: number;
}

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function getBytes(storage: Storage, key: string): Promise<Buffer> {
  return readAll(await storage.get(key));
}

/** A body in non-object mode, like the pipelines in core produce. */
function bodyOf(...chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

/**
 * A body the test feeds by hand: `feed(chunk)` resolves once the consumer has drained it and
 * asks for more, so the test knows the put is in progress and has taken those bytes.
 */
function controlledBody() {
  let waiters: (() => void)[] = [];
  const stream = new Readable({
    read() {
      const ready = waiters;
      waiters = [];
      for (const resolve of ready) resolve();
    },
  });
  return {
    stream,
    feed(chunk: Buffer): Promise<void> {
      const drained = new Promise<void>((resolve) => waiters.push(resolve));
      stream.push(chunk);
      return drained;
    },
    end(chunk?: Buffer) {
      if (chunk) stream.push(chunk);
      stream.push(null);
    },
    fail(error: Error) {
      stream.destroy(error);
    },
  };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<BackupError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a rejection with code ${code}`).toBeDefined();
  expect(BackupError.isInstance(caught), `expected a BackupError, got ${String(caught)}`).toBe(true);
  expect((caught as BackupError).code).toBe(code);
  return caught as BackupError;
}

async function keysOf(storage: Storage, prefix: string): Promise<string[]> {
  return (await storage.list(prefix)).map((e) => e.key).sort();
}

/**
 * Registers the storage conformance suite (vitest `describe`/`it`). Every adapter runs it in
 * three lines, then adds its own tests. Nothing in it assumes a file system.
 */
export function storageConformance(options: StorageConformanceOptions): void {
  const skip = options.skip ?? {};
  const largeBytes = options.largeObjectBytes ?? 64 * MiB;
  const rssBound = options.largeObjectRssBound ?? 64 * MiB + Math.floor(largeBytes / 8);

  describe(`storage conformance: ${options.name}`, () => {
    let current: { storage: Storage; cleanup?: () => Promise<void> } | undefined;
    const storage = (): Storage => {
      if (!current) throw new Error('storage not created');
      return current.storage;
    };

    beforeEach(async () => {
      current = await options.create();
    });
    afterEach(async () => {
      const done = current;
      current = undefined;
      try {
        await done?.storage.close?.();
      } finally {
        await done?.cleanup?.();
      }
    });

    it('has specVersion v1 and a name', () => {
      expect(storage().specVersion).toBe('v1');
      expect(typeof storage().name).toBe('string');
      expect(storage().name.length).toBeGreaterThan(0);
    });

    describe('put/get round trip', () => {
      it('returns every byte value unchanged and reports the size', async () => {
        const all = Buffer.alloc(256 * 4);
        for (let i = 0; i < all.length; i++) all[i] = i % 256;
        const random = randomBytes(MiB + 17);
        const body = Buffer.concat([all, random]);
        const result = await storage().put('rt/binary.bin', bodyOf(all, random.subarray(0, 1000), random.subarray(1000)));
        expect(result.size).toBe(body.length);
        expect((await getBytes(storage(), 'rt/binary.bin')).equals(body)).toBe(true);
      });

      it('stores an empty object', async () => {
        const result = await storage().put('rt/empty', bodyOf());
        expect(result.size).toBe(0);
        expect((await getBytes(storage(), 'rt/empty')).length).toBe(0);
        expect(await storage().list('rt/')).toEqual([expect.objectContaining({ key: 'rt/empty', size: 0 })]);
      });

      it('stores nested keys, and keys with spaces and non-ASCII characters', async () => {
        const keys = ['a/b/c/d/e.bin', 'scholaria_backup_20261126_020000/postgres/scholaria db ü.dump.zst', 'top'];
        for (const [i, key] of keys.entries()) await storage().put(key, bodyOf(Buffer.from(`object ${i}`)));
        for (const [i, key] of keys.entries()) {
          expect((await getBytes(storage(), key)).toString()).toBe(`object ${i}`);
        }
        expect(await keysOf(storage(), '')).toEqual([...keys].sort());
      });

      it('can be read twice, and by two readers at once', async () => {
        const body = randomBytes(300_000);
        await storage().put('rt/twice', bodyOf(body));
        const [a, b] = await Promise.all([storage().get('rt/twice'), storage().get('rt/twice')]);
        const [bytesA, bytesB] = await Promise.all([readAll(a), readAll(b)]);
        expect(bytesA.equals(body) && bytesB.equals(body)).toBe(true);
      });
    });

    describe('overwrite', () => {
      it('replaces the object, and its size in list', async () => {
        await storage().put('ow/key', bodyOf(Buffer.from('first version, longer')));
        await storage().put('ow/key', bodyOf(Buffer.from('second')));
        expect((await getBytes(storage(), 'ow/key')).toString()).toBe('second');
        expect(await storage().list('ow/')).toEqual([expect.objectContaining({ key: 'ow/key', size: 6 })]);
      });

      it('keeps serving the old object in full until the new one is complete', async () => {
        const oldBody = randomBytes(200_000);
        const newBody = randomBytes(500_000);
        await storage().put('ow/atomic', bodyOf(oldBody));
        const body = controlledBody();
        const putting = storage().put('ow/atomic', body.stream);
        await body.feed(newBody.subarray(0, 250_000));
        await nextMacrotask();
        expect((await getBytes(storage(), 'ow/atomic')).equals(oldBody)).toBe(true);
        expect(await storage().list('ow/')).toEqual([expect.objectContaining({ key: 'ow/atomic', size: oldBody.length })]);
        body.end(newBody.subarray(250_000));
        await expect(putting).resolves.toMatchObject({ size: newBody.length });
        expect((await getBytes(storage(), 'ow/atomic')).equals(newBody)).toBe(true);
      });
    });

    describe('missing keys', () => {
      it('get of a missing key rejects with NOT_FOUND naming the key', async () => {
        const error = await expectCode(storage().get('missing/nothing-here.bin'), 'NOT_FOUND');
        expect(error.message).toContain('missing/nothing-here.bin');
      });

      it('a prefix of existing keys is not an object', async () => {
        await storage().put('dir/inner/file', bodyOf(Buffer.from('x')));
        await expectCode(storage().get('dir/inner'), 'NOT_FOUND');
      });
    });

    describe('list', () => {
      const fixture: Record<string, number> = {
        'set1/a.bin': 3,
        'set1/sub/b.bin': 5,
        'set1/sub/deeper/c.bin': 0,
        'set10/x.bin': 7,
        'set1x.bin': 2,
        'other/y.bin': 1,
      };
      const putFixture = async () => {
        for (const [key, size] of Object.entries(fixture)) await storage().put(key, bodyOf(randomBytes(size)));
      };

      it('lists recursively under a prefix with sizes and modification times', async () => {
        const before = Date.now();
        await putFixture();
        const after = Date.now();
        const entries = (await storage().list('set1/')).sort((x, y) => x.key.localeCompare(y.key));
        expect(entries.map((e) => [e.key, e.size])).toEqual([
          ['set1/a.bin', 3],
          ['set1/sub/b.bin', 5],
          ['set1/sub/deeper/c.bin', 0],
        ]);
        for (const entry of entries) {
          expect(entry.modifiedAt).toBeInstanceOf(Date);
          // Loose window: servers round to seconds and clocks may differ a little.
          expect(entry.modifiedAt.getTime()).toBeGreaterThan(before - 10 * 60_000);
          expect(entry.modifiedAt.getTime()).toBeLessThan(after + 10 * 60_000);
        }
      });

      it('respects the prefix boundary: "set1/" excludes "set10/" and "set1x"', async () => {
        await putFixture();
        expect(await keysOf(storage(), 'set1/sub/')).toEqual(['set1/sub/b.bin', 'set1/sub/deeper/c.bin']);
        expect(await keysOf(storage(), 'set1/')).not.toContain('set10/x.bin');
        expect(await keysOf(storage(), 'set1')).toEqual([
          'set1/a.bin',
          'set1/sub/b.bin',
          'set1/sub/deeper/c.bin',
          'set10/x.bin',
          'set1x.bin',
        ]);
        expect(await keysOf(storage(), 'set1/a')).toEqual(['set1/a.bin']);
      });

      it('lists everything with an empty prefix and nothing for an unknown prefix', async () => {
        await putFixture();
        expect(await keysOf(storage(), '')).toEqual(Object.keys(fixture).sort());
        expect(await storage().list('nothing-here/')).toEqual([]);
        expect(await storage().list('set1/sub/deeper/c.bin/')).toEqual([]);
      });

      it('does not show an object whose put is still in progress', async () => {
        await storage().put('inflight/done.bin', bodyOf(Buffer.from('done')));
        const body = controlledBody();
        const putting = storage().put('inflight/pending.bin', body.stream);
        await body.feed(randomBytes(200_000));
        await nextMacrotask();
        expect(await keysOf(storage(), '')).toEqual(['inflight/done.bin']);
        await expectCode(storage().get('inflight/pending.bin'), 'NOT_FOUND');
        body.end();
        await putting;
        expect(await keysOf(storage(), '')).toEqual(['inflight/done.bin', 'inflight/pending.bin']);
      });
    });

    describe('delete', () => {
      it('deletes an object and leaves its siblings', async () => {
        await storage().put('del/a', bodyOf(Buffer.from('a')));
        await storage().put('del/b', bodyOf(Buffer.from('b')));
        await storage().delete('del/a');
        await expectCode(storage().get('del/a'), 'NOT_FOUND');
        expect(await keysOf(storage(), '')).toEqual(['del/b']);
      });

      it('deleting a missing key resolves', async () => {
        await expect(storage().delete('del/never-existed')).resolves.toBeUndefined();
        await expect(storage().delete('no/such/prefix/at/all')).resolves.toBeUndefined();
      });

      it('a prefix emptied by deletes can be written again', async () => {
        await storage().put('del/deep/er/x', bodyOf(Buffer.from('x')));
        await storage().delete('del/deep/er/x');
        expect(await storage().list('del/')).toEqual([]);
        await storage().put('del/deep/er/y', bodyOf(Buffer.from('y')));
        expect(await keysOf(storage(), 'del/')).toEqual(['del/deep/er/y']);
      });
    });

    if (!skip.deleteMany) {
      describe('capabilities.deleteMany', () => {
        it('deletes the given keys, tolerates missing ones and keeps the rest', async () => {
          const deleteMany = storage().capabilities?.deleteMany;
          expect(deleteMany, 'storage declares no capabilities.deleteMany; pass skip: { deleteMany: true }').toBeTypeOf('function');
          for (const key of ['dm/a', 'dm/b', 'dm/c', 'dm/sub/d']) await storage().put(key, bodyOf(Buffer.from(key)));
          const result = await deleteMany!(['dm/a', 'dm/sub/d', 'dm/missing']);
          expect(result.deleted).toEqual(expect.arrayContaining(['dm/a', 'dm/sub/d']));
          expect(result.failed.map((f) => f.key)).not.toContain('dm/a');
          expect(result.failed.map((f) => f.key)).not.toContain('dm/sub/d');
          expect(await keysOf(storage(), '')).toEqual(['dm/b', 'dm/c']);
        });

        it('accepts an empty list', async () => {
          const deleteMany = storage().capabilities?.deleteMany;
          expect(deleteMany, 'storage declares no capabilities.deleteMany; pass skip: { deleteMany: true }').toBeTypeOf('function');
          await expect(deleteMany!([])).resolves.toEqual({ deleted: [], failed: [] });
        });
      });
    }

    it('declares only capabilities this suite tests, and tests each one it declares', () => {
      const declared = Object.keys(storage().capabilities ?? {}).sort();
      expect(declared.filter((c) => !['capacity', 'deleteMany', 'localFiles'].includes(c)), 'unknown capabilities').toEqual([]);
      for (const c of declared) expect(skip[c as keyof typeof skip], `declares ${c} but skips its tests`).not.toBe(true);
    });

    describe('failed put (source stream errors half-way)', () => {
      it('rejects and leaves no object under a new key', async () => {
        const body = controlledBody();
        const putting = storage().put('fail/new.bin', body.stream);
        await body.feed(randomBytes(MiB));
        body.fail(new Error('source broke half-way'));
        await expect(putting).rejects.toThrow();
        await expectCode(storage().get('fail/new.bin'), 'NOT_FOUND');
        expect(await storage().list('')).toEqual([]);
      });

      it('does not clobber the previous object under the same key', async () => {
        const previous = randomBytes(100_000);
        await storage().put('fail/existing.bin', bodyOf(previous));
        const body = controlledBody();
        const putting = storage().put('fail/existing.bin', body.stream);
        await body.feed(randomBytes(MiB));
        body.fail(new Error('source broke half-way'));
        await expect(putting).rejects.toThrow();
        expect((await getBytes(storage(), 'fail/existing.bin')).equals(previous)).toBe(true);
        expect(await storage().list('')).toEqual([
          expect.objectContaining({ key: 'fail/existing.bin', size: previous.length }),
        ]);
      });
    });

    if (!skip.abort) {
      describe('aborted put (AbortSignal)', () => {
        it('rejects with an abort error and leaves no object', async () => {
          const controller = new AbortController();
          const body = controlledBody();
          const putting = storage().put('abort/new.bin', body.stream, { signal: controller.signal });
          await body.feed(randomBytes(MiB));
          controller.abort(new Error('operator pressed ctrl-c'));
          const error = await putting.then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, 'put should reject when aborted').toBeDefined();
          expect(isAbortError(error), `expected an abort error, got ${String(error)}`).toBe(true);
          await expectCode(storage().get('abort/new.bin'), 'NOT_FOUND');
          expect(await storage().list('')).toEqual([]);
        });

        it('does not clobber the previous object under the same key', async () => {
          const previous = randomBytes(50_000);
          await storage().put('abort/existing.bin', bodyOf(previous));
          const controller = new AbortController();
          const body = controlledBody();
          const putting = storage().put('abort/existing.bin', body.stream, { signal: controller.signal });
          await body.feed(randomBytes(MiB));
          controller.abort();
          await expect(putting).rejects.toSatisfy(isAbortError);
          expect((await getBytes(storage(), 'abort/existing.bin')).equals(previous)).toBe(true);
        });

        it('rejects at once with an already aborted signal and writes nothing', async () => {
          const controller = new AbortController();
          controller.abort();
          await expect(
            storage().put('abort/pre.bin', bodyOf(Buffer.from('x')), { signal: controller.signal }),
          ).rejects.toSatisfy(isAbortError);
          expect(await storage().list('')).toEqual([]);
        });
      });
    }

    describe('key validation', () => {
      const badKeys = ['../x', '/abs', 'a/../b', 'a\0b', 'a\\b', ''];
      for (const key of badKeys) {
        it(`rejects ${JSON.stringify(key)} with INVALID_KEY in put, get, delete and stat`, async () => {
          const error = await expectCode(storage().put(key, bodyOf(Buffer.from('x'))), 'INVALID_KEY');
          expect(error.hint, 'INVALID_KEY should say what a valid key looks like').toBeTruthy();
          await expectCode(storage().get(key), 'INVALID_KEY');
          await expectCode(storage().delete(key), 'INVALID_KEY');
          const localFiles = storage().capabilities?.localFiles;
          if (localFiles) await expectCode(localFiles.localPath(key), 'INVALID_KEY');
          expect(await storage().list('')).toEqual([]);
        });
      }
    });

    if (!skip.largeObject) {
      describe('large streamed object', () => {
        it(
          `streams ${Math.round(largeBytes / MiB)} MiB generated on the fly with bounded memory`,
          async () => {
            const chunkSize = 64 * 1024;
            const base = randomBytes(chunkSize);
            const sent = createHash('sha256');
            let produced = 0;
            let chunkIndex = 0;
            const rssBefore = process.memoryUsage().rss;
            let rssPeak = rssBefore;
            const source = new Readable({
              read() {
                if (produced >= largeBytes) {
                  this.push(null);
                  return;
                }
                const size = Math.min(chunkSize, largeBytes - produced);
                const chunk = Buffer.allocUnsafe(size);
                base.copy(chunk, 0, 0, size);
                // Distinct content per chunk, so a storage that repeats or drops chunks fails.
                if (size >= 8) chunk.writeDoubleLE(chunkIndex, 0);
                chunkIndex++;
                produced += size;
                sent.update(chunk);
                if (chunkIndex % 16 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
                this.push(chunk);
              },
            });
            const result = await storage().put('large/object.bin', source);
            rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
            expect(result.size).toBe(largeBytes);
            expect(
              rssPeak - rssBefore,
              `RSS grew by ${Math.round((rssPeak - rssBefore) / MiB)} MiB during the put (bound ${Math.round(rssBound / MiB)} MiB): the storage seems to buffer the object`,
            ).toBeLessThan(rssBound);

            const received = createHash('sha256');
            let receivedBytes = 0;
            for await (const chunk of await storage().get('large/object.bin')) {
              received.update(chunk as Buffer);
              receivedBytes += (chunk as Buffer).length;
            }
            expect(receivedBytes).toBe(largeBytes);
            expect(received.digest('hex')).toBe(sent.digest('hex'));
            expect(await storage().list('large/')).toEqual([
              expect.objectContaining({ key: 'large/object.bin', size: largeBytes }),
            ]);
          },
          Math.max(120_000, (largeBytes / MiB) * 2_000),
        );
      });
    }

    if (!skip.localFiles) {
      describe('capabilities.localFiles', () => {
        const localFiles = () => {
          const c = storage().capabilities?.localFiles;
          expect(c, 'storage declares no capabilities.localFiles; pass skip: { localFiles: true }').toBeDefined();
          return c!;
        };

        it('localPath gives the absolute path of the file holding an object, undefined for a missing key', async () => {
          const bytes = randomBytes(4096);
          await storage().put('lf/set/obj.bin', bodyOf(bytes));
          const path = await localFiles().localPath('lf/set/obj.bin');
          expect(path && isAbsolute(path), `not an absolute path: ${String(path)}`).toBe(true);
          expect((await readFile(path!)).equals(bytes)).toBe(true);
          await expect(localFiles().localPath('lf/set/missing.bin')).resolves.toBeUndefined();
        });

        it('deletePrefix removes everything under a folder prefix and keeps its siblings', async () => {
          for (const key of ['lf/a/1', 'lf/a/sub/2', 'lf/ab/3', 'lf/b/4']) await storage().put(key, bodyOf(Buffer.from(key)));
          await localFiles().deletePrefix('lf/a/');
          expect(await keysOf(storage(), '')).toEqual(['lf/ab/3', 'lf/b/4']);
          await storage().put('lf/a/again', bodyOf(Buffer.from('x')));
          expect(await keysOf(storage(), 'lf/a/')).toEqual(['lf/a/again']);
        });

        it('removeStaleTempFiles finds the temp file of a put in progress only when old enough, and leaves objects alone', async () => {
          await storage().put('lf/keep', bodyOf(Buffer.from('kept')));
          const body = controlledBody();
          const putting = storage().put('lf/inflight.bin', body.stream);
          await body.feed(randomBytes(64 * 1024));
          await expect(localFiles().removeStaleTempFiles({ olderThanMs: 3_600_000, dryRun: true })).resolves.toEqual([]);
          const found = await localFiles().removeStaleTempFiles({ olderThanMs: 0, dryRun: true });
          expect(found.length, 'the in-progress put should have a temp file').toBeGreaterThan(0);
          body.end(randomBytes(1024));
          await putting;
          await expect(localFiles().removeStaleTempFiles({ olderThanMs: 0 })).resolves.toEqual([]);
          expect(await keysOf(storage(), 'lf/')).toEqual(['lf/inflight.bin', 'lf/keep']);
        });

        it('createFile (when declared): written through its descriptor, invisible until commit, then the object; abort leaves nothing', async () => {
          const createFile = localFiles().createFile;
          if (!createFile) return;
          const bytes = randomBytes(300 * 1024);
          const writer = await createFile('lf/file/dump.bin');
          expect(isAbsolute(writer.path), `not an absolute path: ${writer.path}`).toBe(true);
          writeSync(writer.fd, bytes);
          await writer.flush();
          expect(await keysOf(storage(), 'lf/file/')).toEqual([]);
          await expectCode(storage().get('lf/file/dump.bin'), 'NOT_FOUND');
          expect((await readFile(writer.path)).equals(bytes)).toBe(true);
          await expect(writer.commit()).resolves.toEqual({ size: bytes.length });
          expect(await keysOf(storage(), 'lf/file/')).toEqual(['lf/file/dump.bin']);
          expect((await readAll(await storage().get('lf/file/dump.bin'))).equals(bytes)).toBe(true);
          await expect(writer.commit()).rejects.toThrow();

          const dropped = await createFile('lf/file/dropped.bin');
          writeSync(dropped.fd, bytes);
          await dropped.abort();
          await dropped.abort();
          expect(await keysOf(storage(), 'lf/file/')).toEqual(['lf/file/dump.bin']);
          await expect(localFiles().removeStaleTempFiles({ olderThanMs: 0, dryRun: true })).resolves.toEqual([]);
          await expectCode(createFile('../escape.bin'), 'INVALID_KEY');
        });
      });
    }

    if (!skip.capacity) {
      describe('capabilities.capacity', () => {
        it('reports free and total bytes', async () => {
          const capacity = storage().capabilities?.capacity;
          expect(capacity, 'storage declares no capabilities.capacity; pass skip: { capacity: true }').toBeTypeOf('function');
          const { free, total } = await capacity!();
          expect(Number.isFinite(free) && Number.isFinite(total)).toBe(true);
          expect(total).toBeGreaterThan(0);
          expect(free).toBeGreaterThanOrEqual(0);
          expect(free).toBeLessThanOrEqual(total);
        });
      });
    }
  });
}
