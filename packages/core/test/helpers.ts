import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const coreDir = fileURLToPath(new URL('..', import.meta.url));

/** Runs a TypeScript fixture in a child node (tsx resolves workspace packages via tsconfig paths). */
export function spawnFixture(file: string, args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url)), ...args], {
    cwd: coreDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function walk(dir: string): Promise<{ path: string; mode: number; isDir: boolean }[]> {
  const out: { path: string; mode: number; isDir: boolean }[] = [];
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const s = await stat(p);
    out.push({ path: p, mode: s.mode & 0o777, isDir: s.isDirectory() });
    if (s.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}
