import { spawn, type ChildProcess, type IOType } from 'node:child_process';
import type { Stream } from 'node:stream';
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** GNU time reports a child's peak RSS; without it raw tools get no memory figure. */
export const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

export interface Step {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface StepResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Peak RSS in bytes (from GNU time), when available. */
  maxRssBytes?: number;
  /** User + system CPU of the process and the children it waited for (from GNU time). */
  cpuMs?: number;
  stderr: string;
}

export interface PipelineResult {
  ms: number;
  steps: StepResult[];
  /** The largest peak RSS among the steps. */
  maxRssBytes?: number;
  /** CPU of all the steps together. */
  cpuMs?: number;
}

let counter = 0;

/** Parses GNU time's `-f '%M %U %S'` output: peak RSS (KiB), user and system seconds. */
export function parseTimeOutput(text: string): { maxRssBytes?: number; cpuMs?: number } {
  const last = text.trim().split('\n').pop() ?? '';
  const [kb, user, sys] = last.split(' ').map(Number);
  const out: { maxRssBytes?: number; cpuMs?: number } = {};
  if (kb !== undefined && Number.isFinite(kb) && kb > 0) out.maxRssBytes = kb * 1024;
  if (user !== undefined && sys !== undefined && Number.isFinite(user) && Number.isFinite(sys)) out.cpuMs = (user + sys) * 1000;
  return out;
}

export function rusageFile(): string {
  return join(tmpdir(), `scholaria-bench-rusage-${process.pid}-${++counter}`);
}

/**
 * Runs `a | b | c > outFile` with the processes connected by OS pipes (no bytes pass through
 * Node), timing from the first spawn to the last exit. Each step runs under GNU time for its
 * peak RSS. Fails if any step exits non-zero.
 */
export async function runPipeline(steps: Step[], io: { stdinFile?: string; stdoutFile?: string; stdin?: Iterable<Buffer> | AsyncIterable<Buffer> } = {}): Promise<PipelineResult> {
  const rssFiles = steps.map(() => rusageFile());
  const outFd = io.stdoutFile ? openSync(io.stdoutFile, 'w', 0o600) : undefined;
  const inFd = io.stdinFile ? openSync(io.stdinFile, 'r') : undefined;
  const started = performance.now();
  const children: ChildProcess[] = [];
  const stderr: string[] = steps.map(() => '');
  try {
    let prev: ChildProcess | undefined;
    steps.forEach((step, i) => {
      const last = i === steps.length - 1;
      type Io = IOType | Stream | number;
      const stdin: Io = prev ? (prev.stdout as Stream) : inFd !== undefined ? inFd : io.stdin ? 'pipe' : 'ignore';
      const stdout: Io = last ? (outFd ?? 'ignore') : 'pipe';
      const [cmd, args]: [string, string[]] = GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFiles[i]!, step.cmd, ...step.args]] : [step.cmd, step.args];
      const child: ChildProcess = spawn(cmd, args, { stdio: [stdin, stdout, 'pipe'], env: step.env ?? process.env });
      child.stderr!.on('data', (d: Buffer) => {
        stderr[i] = (stderr[i]! + d.toString()).slice(-4000);
      });
      children.push(child);
      prev = child;
    });
    // The parent's copies of the pipe ends would keep a reader from seeing EOF.
    for (const c of children.slice(0, -1)) (c.stdout as Readable | null)?.destroy();
    const feeding = io.stdin && children[0]?.stdin ? pipeline(Readable.from(io.stdin), children[0].stdin) : Promise.resolve();
    const exits = children.map(
      (c) =>
        new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
          c.once('error', reject);
          c.once('close', (code, signal) => resolve({ code, signal }));
        }),
    );
    const [results] = await Promise.all([Promise.all(exits), feeding]);
    const ms = performance.now() - started;
    const out: StepResult[] = [];
    for (let i = 0; i < steps.length; i++) {
      const usage = GNU_TIME ? parseTimeOutput(await readFile(rssFiles[i]!, 'utf8').catch(() => '')) : {};
      out.push({ ...results[i]!, stderr: stderr[i]!, ...usage });
    }
    const failed = out.findIndex((r) => r.code !== 0);
    if (failed >= 0) {
      const s = steps[failed]!;
      throw new Error(`${s.cmd} ${s.args.join(' ')} exited ${out[failed]!.code ?? out[failed]!.signal}: ${out[failed]!.stderr.trim()}`);
    }
    const rss = out.map((r) => r.maxRssBytes).filter((x): x is number => x !== undefined);
    const cpu = out.map((r) => r.cpuMs);
    const cpuMs = cpu.every((x): x is number => x !== undefined) ? cpu.reduce((a, b) => a + b, 0) : undefined;
    return { ms, steps: out, ...(rss.length ? { maxRssBytes: Math.max(...rss) } : {}), ...(cpuMs !== undefined ? { cpuMs } : {}) };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (outFd !== undefined) closeSync(outFd);
    if (inFd !== undefined) closeSync(inFd);
    await Promise.all(rssFiles.map((f) => rm(f, { force: true })));
  }
}

/**
 * CPU time (user + system, ms) a server process has used, its reaped children included: the
 * PostgreSQL backends that served a run (reaped by the postmaster) or Redis's fork for an RDB.
 */
export function serverCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based).
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return (ticks / CLOCK_TICKS) * 1000;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = 100;

/** The pid of the process whose command line contains `needle`, from /proc. */
export function findPid(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Child pids of a process (Linux /proc/<pid>/task/<pid>/children), or undefined where unreadable. */
export function childPids(pid: number): number[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return undefined;
  }
}

/**
 * Waits (up to 10 s) until a server has no busy child left (`busy` tells from the child's
 * command line), so the CPU of a backend or an RDB fork that just finished has been reaped
 * into the server's figures before they are read.
 */
export async function settle(pid: number, busy: (cmdline: string) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const kids = childPids(pid) ?? [];
    const active = kids.filter((k) => {
      try {
        // An exited child not yet reaped (a zombie, empty cmdline) has not been added to the
        // server's figures either; on a loaded machine the postmaster can take a while to reap.
        const stat = readFileSync(`/proc/${k}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return true;
        return busy(readFileSync(`/proc/${k}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {
        return false;
      }
    });
    if (active.length === 0 || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
