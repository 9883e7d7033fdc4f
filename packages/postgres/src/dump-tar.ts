import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

/**
 * Streams a pg_dump directory-format folder as a tar, toc.dat first so a reader can list the
 * archive from the head of the stream. Files are read one at a time with backpressure.
 */
export function packDumpDirectory(dir: string): Readable {
  const pack = tar.pack();
  void (async () => {
    const names = (await readdir(dir)).sort((a, b) => (a === 'toc.dat' ? -1 : b === 'toc.dat' ? 1 : a.localeCompare(b)));
    for (const name of names) {
      const path = join(dir, name);
      const s = await stat(path);
      if (!s.isFile()) continue;
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ name, size: s.size, mode: 0o600, mtime: s.mtime, type: 'file' }, (err) => (err ? reject(err) : resolve()));
        void (async () => {
          try {
            for await (const chunk of createReadStream(path)) {
              if (!entry.write(chunk)) await once(entry, 'drain');
            }
            entry.end(() => undefined);
          } catch (error) {
            entry.destroy(error as Error);
            reject(error as Error);
          }
        })();
      });
    }
    pack.finalize();
  })().catch((error: unknown) => pack.destroy(error as Error));
  return pack as unknown as Readable;
}

/** pg_dump directory archives hold only flat files named toc.dat, <n>.dat[.gz|.lz4|.zst] and blobs.toc. */
const SAFE_ENTRY = /^[A-Za-z0-9_.-]+$/;

/**
 * Unpacks a tar written by `packDumpDirectory` into `dir`. Anything that is not a flat regular
 * file with a plain name is refused, so an altered archive cannot write outside the folder.
 * With `onlyToc`, stops after toc.dat (enough to list or check the archive).
 */
export async function unpackDumpDirectory(input: Readable, dir: string, options: { onlyToc?: boolean } = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const extract = tar.extract();
  const written: string[] = [];
  input.on('error', (error) => extract.destroy(error));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      if (entry.header.type !== 'file' || !SAFE_ENTRY.test(name) || name === '.' || name === '..') {
        throw new Error(`unexpected entry in dump archive: ${JSON.stringify(name)} (${entry.header.type})`);
      }
      const out = createWriteStream(join(dir, name), { mode: 0o600 });
      for await (const chunk of entry) {
        if (!out.write(chunk)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'close');
      written.push(name);
      if (options.onlyToc && name === 'toc.dat') break;
    }
  } finally {
    input.unpipe(extract);
    if (options.onlyToc) input.destroy();
  }
  return written;
}
