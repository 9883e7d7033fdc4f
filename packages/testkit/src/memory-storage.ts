import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { BackupError, NotFoundError, safeRelativePath, type Storage, type StorageEntry } from '@scholaria/backup-core';

/**
 * A Storage kept in process memory, for source conformance runs where the storage is not what
 * is under test. Same contract as the real storages: atomic put, NOT_FOUND, key validation.
 */
export function createMemoryStorage(name = 'memory'): Storage & { objects: Map<string, { body: Buffer; modifiedAt: Date }> } {
  const objects = new Map<string, { body: Buffer; modifiedAt: Date }>();
  const check = (key: string) => {
    if (!safeRelativePath.safeParse(key).success) throw new BackupError('INVALID_KEY', `invalid key "${key}"`);
  };
  return {
    specVersion: 'v1',
    name: `memory:${name}`,
    objects,
    async put(key, body, options) {
      check(key);
      const data = await buffer(body);
      if (options?.signal?.aborted) throw new BackupError('ABORTED', `put ${key} aborted`);
      objects.set(key, { body: data, modifiedAt: new Date() });
      return { size: data.length };
    },
    async get(key) {
      check(key);
      const o = objects.get(key);
      if (!o) throw new NotFoundError(`memory storage has no object ${key}`);
      return Readable.from([o.body]);
    },
    async list(prefix) {
      const out: StorageEntry[] = [];
      for (const [key, o] of objects) if (key.startsWith(prefix)) out.push({ key, size: o.body.length, modifiedAt: o.modifiedAt });
      return out;
    },
    async delete(key) {
      check(key);
      objects.delete(key);
    },
  };
}
