import { spawn, type ChildProcess, type IOType } from 'node:child_process';
import type { Stream } from 'node:stream';
import { existsSync, openSync, closeSync } from 'node:fs';
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
  stderr: string;
}

export interface PipelineResult {
  ms: number;
  steps: StepResult[];
  /** The largest peak RSS among the steps. */
  maxRssBytes?: number;
}

let counter = 0;

/**
 * Runs `a | b | c > outFile` with the processes connected by OS pipes (no bytes pass through
 * Node), timing from the first spawn to the last exit. Each step runs under GNU time for its
 * peak RSS. Fails if any step exits non-zero.
 */
export async function runPipeline(steps: Step[], io: { stdinFile?: string; stdoutFile?: string; stdin?: Iterable<Buffer> | AsyncIterable<Buffer> } = {}): Promise<PipelineResult> {
  const rssFiles = steps.map(() => join(tmpdir(), `scholaria-bench-rss-${process.pid}-${++counter}`));
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
      const [cmd, args]: [string, string[]] = GNU_TIME ? [GNU_TIME, ['-f', '%M', '-o', rssFiles[i]!, step.cmd, ...step.args]] : [step.cmd, step.args];
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
      let maxRssBytes: number | undefined;
      if (GNU_TIME) {
        const text = await readFile(rssFiles[i]!, 'utf8').catch(() => '');
        const kb = Number(text.trim().split('\n').pop());
        if (Number.isFinite(kb) && kb > 0) maxRssBytes = kb * 1024;
      }
      out.push({ ...results[i]!, stderr: stderr[i]!, ...(maxRssBytes !== undefined ? { maxRssBytes } : {}) });
    }
    const failed = out.findIndex((r) => r.code !== 0);
    if (failed >= 0) {
      const s = steps[failed]!;
      throw new Error(`${s.cmd} ${s.args.join(' ')} exited ${out[failed]!.code ?? out[failed]!.signal}: ${out[failed]!.stderr.trim()}`);
    }
    const rss = out.map((r) => r.maxRssBytes).filter((x): x is number => x !== undefined);
    return { ms, steps: out, ...(rss.length ? { maxRssBytes: Math.max(...rss) } : {}) };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (outFd !== undefined) closeSync(outFd);
    if (inFd !== undefined) closeSync(inFd);
    await Promise.all(rssFiles.map((f) => rm(f, { force: true })));
  }
}
