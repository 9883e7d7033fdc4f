import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
// The testkit's public contract (its servers and simulators are private to this repository).
import { sourceConformance, storageConformance } from '@scholaria/backup-testkit/conformance';
import { createFilesSource, createFlatStorage } from '../src/index.js';

const work = { path: '' };
beforeAll(async () => {
  work.path = await mkdtemp(join(tmpdir(), 'third-party-adapter-'));
});
afterAll(async () => {
  if (work.path) await rm(work.path, { recursive: true, force: true });
});

let n = 0;
storageConformance({
  name: 'flat folder (examples/third-party-adapter)',
  create: async () => {
    const dir = join(work.path, `flat-${++n}`);
    return { storage: createFlatStorage({ dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
  // The example declares no capability: a visible decision, as the suite asks.
  skip: { capacity: true, deleteMany: true, localFiles: true },
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
