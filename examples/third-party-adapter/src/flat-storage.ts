import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConfigError, NotFoundError, splitStorageKey, splitStoragePrefix, type Storage, type StorageEntry } from '@scholaria/backup-core';

export interface FlatStorageOptions {
  /** The folder that holds one file per object. */
  dir: string;
}

// encodeURIComponent writes '%' only before two hex digits, so '%%' never starts an object's file.
const TEMP = '%%tmp-';
const fileOf = (key: string) => encodeURIComponent(key);

/**
 * A storage that keeps every object as one file in a single folder, its key percent-encoded
 * into the file name. A put streams into a temp file and renames it into place, so it is all or
 * nothing. Deliberately minimal: none of the optional methods.
 */
export function createFlatStorage(options: FlatStorageOptions): Storage {
  if (!options || typeof options.dir !== 'string' || options.dir === '') {
    throw new ConfigError('createFlatStorage: invalid options', ['dir: expected the path of a folder'], { hint: 'Pass { dir: "/srv/objects" }.' });
  }
  const dir = resolve(options.dir);
  const notFound = (key: string) => new NotFoundError(`no object ${JSON.stringify(key)} in flat:${dir}`);
  return {
    specVersion: 'v1',
    name: `flat:${dir}`,
    async put(key, body: Readable, putOptions = {}) {
      splitStorageKey(key);
      putOptions.signal?.throwIfAborted();
      await mkdir(dir, { recursive: true });
      const temp = join(dir, `${TEMP}${randomBytes(6).toString('hex')}`);
      try {
        await pipeline(body, createWriteStream(temp, { flags: 'wx' }), ...(putOptions.signal ? [{ signal: putOptions.signal }] : []));
        const { size } = await stat(temp);
        await rename(temp, join(dir, fileOf(key)));
        return { size };
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
    },
    async get(key) {
      splitStorageKey(key);
      const path = join(dir, fileOf(key));
      try {
        if (!(await stat(path)).isFile()) throw notFound(key);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(key);
        throw error;
      }
      return createReadStream(path);
    },
    async list(prefix) {
      splitStoragePrefix(prefix);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      const out: StorageEntry[] = [];
      for (const name of names) {
        if (name.startsWith(TEMP)) continue;
        const key = decodeURIComponent(name);
        if (!key.startsWith(prefix)) continue;
        try {
          const s = await stat(join(dir, name));
          out.push({ key, size: s.size, modifiedAt: s.mtime });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // deleted meanwhile
        }
      }
      return out;
    },
    async delete(key) {
      splitStorageKey(key);
      await rm(join(dir, fileOf(key)), { force: true });
    },
  };
}
