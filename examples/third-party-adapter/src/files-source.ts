import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import { ConfigError, type BackupSource } from '@scholaria/backup-core';

export interface FilesSourceOptions {
  /** The folder whose files are backed up (recursively) and restored. */
  dir: string;
  /** Component name. Default 'files'. */
  name?: string;
}

const ARTIFACT = 'files.tar';

async function walk(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(root, path)));
    else if (entry.isFile()) out.push(relative(root, path).split(sep).join('/'));
  }
  return out;
}

/**
 * A folder of files as a source: one tar artifact, streamed file by file (constant memory).
 * Restore extracts into a sibling folder and swaps it in, so the folder is never half-restored.
 */
export function createFilesSource(options: FilesSourceOptions): BackupSource {
  if (!options || typeof options.dir !== 'string' || options.dir === '') {
    throw new ConfigError('createFilesSource: invalid options', ['dir: expected the path of a folder'], { hint: 'Pass { dir: "/srv/files" }.' });
  }
  const dir = resolve(options.dir);
  const name = options.name ?? 'files';
  return {
    specVersion: 'v1',
    name,
    async check() {
      try {
        const s = await stat(dir);
        if (!s.isDirectory()) return { ok: false, problems: [`${dir} is not a folder; point FILES_DIR at a folder`] };
        return { ok: true, details: { dir } };
      } catch {
        return { ok: false, problems: [`${dir} does not exist; create it or fix FILES_DIR`] };
      }
    },
    async backup(ctx) {
      const files = await walk(dir);
      const pack = tar.pack();
      let bytes = 0;
      const produce = (async () => {
        for (const file of files) {
          ctx.signal.throwIfAborted();
          const s = await stat(join(dir, file));
          const entry = pack.entry({ name: file, size: s.size, mode: s.mode & 0o777, mtime: s.mtime });
          await pipeline(createReadStream(join(dir, file)), entry);
          bytes += s.size;
        }
        pack.finalize();
      })();
      produce.catch((error: unknown) => pack.destroy(error as Error));
      await Promise.all([pipeline(pack, ctx.artifact(ARTIFACT, { contentType: 'application/x-tar', restoreHint: `tar -xf ${ARTIFACT} -C <folder>` }), { signal: ctx.signal }), produce]);
      return { metadata: { files: files.length, bytes } };
    },
    async restore(ctx) {
      const plan = [`replace the contents of ${dir} with the ${String(ctx.component.metadata?.files ?? '?')} files of ${ARTIFACT}`];
      if (ctx.dryRun) return { plan };
      const staging = `${dir}.restore-${randomBytes(4).toString('hex')}`;
      await mkdir(staging, { recursive: true });
      try {
        const extract = tar.extract();
        const done = (async () => {
          for await (const entry of extract) {
            const target = resolve(staging, entry.header.name);
            if (!target.startsWith(staging + sep)) throw new Error(`unsafe path in archive: ${entry.header.name}`);
            await mkdir(dirname(target), { recursive: true });
            // Entries come one at a time; each is streamed to its file as it arrives.
            await pipeline(entry, createWriteStream(target, { mode: entry.header.mode ?? 0o644 }));
          }
        })();
        await Promise.all([pipeline(await ctx.open(ARTIFACT), extract, { signal: ctx.signal }), done]);
        const old = `${dir}.old-${randomBytes(4).toString('hex')}`;
        await rename(dir, old).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
        await rename(staging, dir);
        await rm(old, { recursive: true, force: true });
      } catch (error) {
        await rm(staging, { recursive: true, force: true });
        throw error;
      }
      return { plan };
    },
    async verify(ctx) {
      const files = await walk(dir);
      const expected = ctx.component.metadata?.files;
      const ok = expected === files.length;
      return { ok, mismatches: ok ? [] : [`${dir} holds ${files.length} files, the set ${String(expected)}`] };
    },
  };
}
