import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built binary, as users run it. CI builds before testing; the tests build nothing. */
export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

export const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} does not exist: build first (pnpm build, or cd packages/cli && pnpm run build)`);
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a run sees: PATH and HOME from the test process, plus `env`; nothing else leaks in. */
export function baseEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export function runBin(args: string[], options: { env: Record<string, string | undefined>; cwd?: string; input?: string }): Promise<RunResult> {
  return runCommand(process.execPath, [BIN, ...args], options);
}

/** Runs any command with the environment of `baseEnv(env)`, `input` on its stdin, and collects its output. */
export function runCommand(command: string, args: string[], options: { env: Record<string, string | undefined>; cwd?: string; input?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? process.cwd(),
      env: baseEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

export interface LongRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout or stderr matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function startBin(args: string[], options: { env: Record<string, string | undefined>; cwd?: string }): LongRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: baseEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of waiters) w();
  };
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    poke();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    poke();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
    poke();
    resolve(code);
  }));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor(pattern, timeoutMs = 45_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout) || pattern.test(stderr)) {
            cleanup();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${stdout}\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export function parseJson<T = unknown>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`not JSON:\n${text}`);
  }
}
