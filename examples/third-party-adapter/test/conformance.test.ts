import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { makeTempDir, sourceConformance, storageConformance, type TempDir } from '@scholaria/backup-testkit';
import { createFilesSource, createFlatStorage } from '../src/index.js';

let work: TempDir;
beforeAll(async () => {
  work = await makeTempDir('third-party-adapter-');
});
afterAll(async () => {
  await work?.remove();
});

let n = 0;
storageConformance({
  name: 'flat folder (examples/third-party-adapter)',
  create: async () => {
    const dir = join(work.path, `flat-${++n}`);
    return { storage: createFlatStorage({ dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
  // The example implements none of the optional methods: a visible decision, as the suite asks.
  skip: { exclusive: true, capacity: true, stat: true, deleteMany: true },
  largeObjectBytes: 16 * 1024 * 1024,
});

async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
    }
  };
  await walk(dir);
  return out;
}

sourceConformance({
  name: 'folder of files (examples/third-party-adapter)',
  setup: async () => {
    const dir = join(work.path, 'files');
    await mkdir(join(dir, 'nested', 'deeper'), { recursive: true });
    await writeFile(join(dir, 'a.txt'), 'alpha\n');
    await writeFile(join(dir, 'nested', 'b.bin'), randomBytes(300_000));
    await writeFile(join(dir, 'nested', 'deeper', 'c d é.txt'), 'spaces and non-ASCII');
    await writeFile(join(dir, 'empty'), '');
    return {
      source: createFilesSource({ dir }),
      fingerprint: () => fingerprint(dir),
      async damage() {
        await rm(join(dir, 'nested'), { recursive: true });
        await writeFile(join(dir, 'a.txt'), 'changed');
        await writeFile(join(dir, 'stray.txt'), 'not in the backup');
      },
      teardown: () => rm(dir, { recursive: true, force: true }),
    };
  },
});
