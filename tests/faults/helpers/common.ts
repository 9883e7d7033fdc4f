import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackupEngine, Logger } from '@scholaria/backup-core';

/** tests/faults: the cwd of child fixtures, whose tsconfig.json maps @scholaria/backup-* to sources. */
export const faultsDir = fileURLToPath(new URL('..', import.meta.url));

/** The seed every randomised scenario derives from; FAULT_SEED=<n> reproduces a run. */
export const FAULT_SEED = Number(process.env.FAULT_SEED ?? 20261126);

/** mulberry32: small, fast, and the same sequence on every machine for one seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface CapturedLogger extends Logger {
  lines: string[];
}

/** A logger that keeps every line with its fields as JSON, so tests can scan them for secrets. */
export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push(`${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FixtureChild {
  pid: number;
  /** Every stdout line so far. */
  lines: string[];
  stderr(): string;
  /** Resolves with the first stdout line matching `pattern`; rejects if the child exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL the fixture process only (its own children see a broken pipe). */
  kill(): Promise<void>;
  /** SIGKILL everything left in the fixture's process group (pg_dump, zstd ...). */
  killGroup(): void;
}

/**
 * Runs tests/faults/fixtures/<file> in a child node with tsx, from tests/faults so tsx maps the
 * workspace packages to their sources. The child leads its own process group so that whatever it
 * spawned can be cleaned up after it is killed.
 */
export function spawnFixture(file: string, args: string[], env: NodeJS.ProcessEnv = {}): FixtureChild {
  const child = spawn(process.execPath, ['--import', 'tsx', join(faultsDir, 'fixtures', file), ...args], {
    cwd: faultsDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  let err = '';
  let partial = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const l of [...listeners]) l();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const l of [...listeners]) l();
      resolve({ code, signal });
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  const pid = child.pid!;
  return {
    pid,
    lines,
    stderr: () => err,
    exited,
    waitForLine(pattern, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit !== undefined) {
            cleanup();
            resolve(hit);
          } else if (done || child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`fixture ${file} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}: stdout=${lines.join(' | ')} stderr=${err.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`fixture ${file} did not print ${pattern} within ${timeoutMs} ms: stdout=${lines.join(' | ')} stderr=${err.slice(-3000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async kill() {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    },
    killGroup() {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // group already empty
      }
    },
  };
}

/** Process ids whose parent chain leads to `root`, read from /proc. */
export function descendants(root: number): { pid: number; comm: string; cmdline: string[] }[] {
  const parent = new Map<number, number>();
  const info = new Map<number, { comm: string; cmdline: string[] }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const statText = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = statText.lastIndexOf(')');
      const comm = statText.slice(statText.indexOf('(') + 1, close);
      const ppid = Number(statText.slice(close + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
      info.set(Number(name), { comm, cmdline });
    } catch {
      // exited while reading
    }
  }
  const out: { pid: number; comm: string; cmdline: string[] }[] = [];
  for (const [pid, ppid] of parent) {
    let p = ppid;
    for (let hops = 0; p > 1 && hops < 64; hops++) {
      if (p === root) {
        out.push({ pid, ...info.get(pid)! });
        break;
      }
      p = parent.get(p) ?? 0;
    }
  }
  return out;
}

/** Every file and directory under `dir` with its permission bits. */
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

/** `sha256sum -c SHA256SUMS` inside a set folder: the by-hand check the docs promise. */
export function sha256sumCheck(setDir: string): { ok: boolean; output: string } {
  const r = spawnSync('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: setDir, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/**
 * The invariant every fault scenario ends with: each set `list()` shows as complete (or partial)
 * has a manifest, verifies, and no incomplete set is offered as `latest`.
 */
export async function assertCatalogSound(engine: BackupEngine): Promise<{ complete: string[]; incomplete: string[] }> {
  const shown = await engine.list();
  const all = await engine.list({ includeIncomplete: true });
  for (const s of shown) {
    if (s.status === 'incomplete') throw new Error(`list() shows incomplete set ${s.id}`);
    if (!s.manifest) throw new Error(`list() shows ${s.id} without a manifest`);
  }
  const complete = shown.filter((s) => s.status === 'complete').map((s) => s.id);
  const incomplete = all.filter((s) => s.status === 'incomplete').map((s) => s.id);
  for (const id of incomplete) if (complete.includes(id)) throw new Error(`${id} is both complete and incomplete`);
  return { complete, incomplete };
}

export function errorText(error: unknown): string {
  if (!error || typeof error !== 'object') return String(error);
  const e = error as { message?: string; hint?: string; code?: string };
  return `${e.code ?? ''} ${e.message ?? ''} ${e.hint ?? ''}`;
}
