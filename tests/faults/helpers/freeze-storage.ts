import { statSync, writeSync } from 'node:fs';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { LocalFileWriter, Storage, StorageCapabilities } from '@scholaria/backup-core';

/**
 * Where a fixture process stops dead so the test can SIGKILL it at an exact point.
 * - `put`: inside `storage.put(key)` once `afterBytes` bytes of a matching key went to the
 *   storage (`afterBytes: 'end'` = every byte written, before the put could commit);
 * - `put-done`: right after a matching put committed;
 * - `get`: while the first `get(key)` is being read, once `afterBytes` were read;
 * - `progress`: in the engine's progress callback once a component produced `afterBytes`.
 */
export type FreezePoint =
  | { at: 'put'; key: string; afterBytes: number | 'end' }
  | { at: 'get'; key: string; afterBytes: number }
  | { at: 'put-done'; key: string }
  | { at: 'progress'; component: string; afterBytes: number };

const frozen = new Int32Array(new SharedArrayBuffer(4));

/**
 * Announces the point on stdout (synchronously: stdout is a pipe) and blocks the whole process,
 * event loop included, until it is killed. Nothing can run after this line: no cleanup, no
 * finally, exactly like a power cut of this process.
 */
export function freezeHere(description: string): never {
  writeSync(1, `HOLD ${description}\n`);
  for (;;) Atomics.wait(frozen, 0, 0);
}

/**
 * For put points: a file the engine has a program write directly (`localFiles.createFile`)
 * freezes too, once the file holds `afterBytes` (checked every few ms while it grows), before its
 * commit (`'end'`), or right after its commit (`put-done`).
 */
function withFreezingCreateFile(caps: StorageCapabilities | undefined, point: FreezePoint, claim: () => boolean): StorageCapabilities | undefined {
  const createFile = caps?.localFiles?.createFile;
  if (!caps?.localFiles || !createFile || (point.at !== 'put' && point.at !== 'put-done')) return caps;
  const wrapped = async (key: string, options?: { signal?: AbortSignal }): Promise<LocalFileWriter> => {
    const writer = await createFile(key, options);
    if (!keyMatches(point.key, key) || !claim()) return writer;
    if (point.at === 'put-done') {
      return { ...writer, path: writer.path, fd: writer.fd, async commit() {
        const result = await writer.commit();
        freezeHere(`after put ${key}`);
        return result;
      } };
    }
    const limit = point.afterBytes;
    if (limit !== 'end') {
      const timer = setInterval(() => {
        let size = 0;
        try {
          size = statSync(writer.path).size;
        } catch {
          return;
        }
        if (size >= limit) freezeHere(`in put ${key} (file written by a program) after ${size} bytes`);
      }, 2);
      timer.unref();
    }
    return {
      ...writer,
      path: writer.path,
      fd: writer.fd,
      async commit() {
        freezeHere(`in put ${key} (file written by a program) after all ${statSync(writer.path).size} bytes, before commit`);
      },
    };
  };
  return { ...caps, localFiles: { ...caps.localFiles, createFile: wrapped } };
}

function keyMatches(pattern: string, key: string): boolean {
  return pattern.startsWith('/') ? key.startsWith(pattern.slice(1)) : key.endsWith(pattern) || key.includes(pattern);
}

/**
 * Wraps a storage so a put stops at the freeze point. The bytes before the point are handed on
 * and given a moment to reach the disk before the freeze, so the kill leaves a real partial write.
 */
export function freezingStorage(inner: Storage, point: FreezePoint | undefined): Storage {
  if (!point || point.at === 'progress') return inner;
  let armed = true;
  // A `get` freeze point needs the reads to go through get(): without this, the engine reads a
  // plain local file directly (capabilities.localFiles: verify, and restore of un-coded or zstd
  // files) and the process would never reach the point.
  const capabilities =
    point.at === 'get' && inner.capabilities ? (({ localFiles: _direct, ...rest }) => rest)(inner.capabilities) : withFreezingCreateFile(inner.capabilities, point, () => {
      const was = armed;
      armed = false;
      return was;
    });
  return {
    ...inner,
    ...(capabilities ? { capabilities } : {}),
    specVersion: 'v1',
    name: inner.name,
    async get(key, options) {
      const stream = await inner.get(key, options);
      if (!armed || point.at !== 'get' || !keyMatches(point.key, key)) return stream;
      armed = false;
      let seen = 0;
      const limit = point.afterBytes;
      const gate = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          if (seen + chunk.length <= limit) {
            seen += chunk.length;
            cb(null, chunk);
            return;
          }
          freezeHere(`in get ${key} after ${seen} bytes were read`);
        },
      });
      stream.on('error', (e) => gate.destroy(e));
      return stream.pipe(gate);
    },
    async put(key, body, options) {
      if (point.at === 'get') return await inner.put(key, body, options);
      if (!armed || !keyMatches(point.key, key)) return await inner.put(key, body, options);
      if (point.at === 'put-done') {
        const result = await inner.put(key, body, options);
        armed = false;
        freezeHere(`after put ${key}`);
        return result;
      }
      armed = false;
      let seen = 0;
      const limit = point.afterBytes;
      const gate = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          if (limit === 'end' || seen + chunk.length <= limit) {
            seen += chunk.length;
            cb(null, chunk);
            return;
          }
          const head = chunk.subarray(0, Math.max(0, limit - seen));
          seen += head.length;
          if (head.length > 0) this.push(head);
          setTimeout(() => freezeHere(`in put ${key} after ${seen} bytes`), 250);
        },
        flush(cb) {
          if (limit === 'end') setTimeout(() => freezeHere(`in put ${key} after all ${seen} bytes, before commit`), 250);
          else cb();
        },
      });
      (body as Readable).pipe(gate);
      body.on('error', (e) => gate.destroy(e));
      return await inner.put(key, gate, options);
    },
  };
}
