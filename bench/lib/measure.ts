import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { readFile, rm, stat } from 'node:fs/promises';
import { GNU_TIME, parseTimeOutput, runPipeline, rusageFile, type Step } from './proc.js';
import { summarize, type Summary, fmtMB, fmtSeconds } from './stats.js';
import type { ChildReport, ChildTask } from './tasks.js';

export interface Run {
  ms: number;
  /** Size of the artifact written (stored bytes). */
  bytes?: number;
  /** Peak RSS: the library's Node process, or the largest process of a raw pipeline. */
  maxRssBytes?: number;
  keys?: number;
  /** Child process wall time including Node start-up (library runs only). */
  wallMs?: number;
  /** 1-minute load average when the run ended: other work on the machine skews a run. */
  load1?: number;
  /**
   * CPU (user + system) of everything the run used: the tools or the library's Node process
   * with its children, plus the server's share (backends, Redis fork, s3rver). Less skewed by
   * other load than wall time, and it shows what the library costs on a busy machine.
   */
  cpuMs?: number;
  /** The server's part of cpuMs. */
  serverCpuMs?: number;
}

export interface Measurement {
  id: string;
  group: string;
  kind: 'library' | 'raw' | 'peer';
  label: string;
  /** The command line or configuration, for the docs. */
  command: string;
  runs: Run[];
  errors: string[];
  time?: Summary;
  size?: Summary;
  rss?: Summary;
  cpu?: Summary;
  keysPerSecond?: Summary;
}

/** A Node binary the library children also run under (`--node`): id suffix `@node22` etc. */
export interface NodeVariant {
  /** e.g. 'node22'. */
  name: string;
  version: string;
  path: string;
}

/** The Node binary runChild starts; the Recorder switches it per variant. */
let childNode = process.execPath;

export class Recorder {
  readonly measurements = new Map<string, Measurement>();
  /** CPU used so far by the server of the group being measured (ms), when known. */
  serverCpu: (() => Promise<number | undefined>) | undefined;
  /** Extra Node versions: every library run is repeated under each, recorded as `<id>@<name>`. */
  nodes: NodeVariant[] = [];

  /**
   * Runs one measurement, adds the server's CPU over it, records it (or its failure); a library
   * measurement then runs again under each extra Node version, right after (paired runs).
   */
  async run(id: string, fn: () => Promise<Run>): Promise<Run | undefined> {
    const base = await this.runOnce(id, fn);
    const m = this.measurements.get(id);
    if (m?.kind === 'library' && m.group !== 'scale') {
      for (const node of this.nodes) {
        const vid = `${id}@${node.name}`;
        this.define({ ...m, id: vid, label: `${m.label} (Node ${node.version})` });
        childNode = node.path;
        try {
          await this.runOnce(vid, fn);
        } finally {
          childNode = process.execPath;
        }
      }
    }
    return base;
  }

  private async runOnce(id: string, fn: () => Promise<Run>): Promise<Run | undefined> {
    const before = await this.serverCpu?.();
    try {
      const run = await fn();
      const after = await this.serverCpu?.();
      if (run.cpuMs !== undefined && before !== undefined && after !== undefined) {
        run.serverCpuMs = after - before;
        run.cpuMs += run.serverCpuMs;
      }
      this.add(id, run);
      return run;
    } catch (error) {
      this.fail(id, error);
      return undefined;
    }
  }

  define(m: Omit<Measurement, 'runs' | 'errors'>): Measurement {
    const existing = this.measurements.get(m.id);
    if (existing) return existing;
    const created: Measurement = { ...m, runs: [], errors: [] };
    this.measurements.set(m.id, created);
    return created;
  }

  get(id: string): Measurement | undefined {
    return this.measurements.get(id);
  }

  add(id: string, run: Run): void {
    const m = this.measurements.get(id)!;
    m.runs.push({ ...run, load1: +loadavg()[0]!.toFixed(2) });
    const rss = run.maxRssBytes !== undefined ? `, peak RSS ${fmtMB(run.maxRssBytes)} MB` : '';
    const size = run.bytes !== undefined ? `, ${fmtMB(run.bytes)} MB` : '';
    const keys = run.keys !== undefined ? `, ${Math.round(run.keys / (run.ms / 1000)).toLocaleString('en-US')} keys/s` : '';
    const cpu = run.cpuMs !== undefined ? `, CPU ${fmtSeconds(run.cpuMs)} s` : '';
    log(`  ${m.id.padEnd(28)} ${fmtSeconds(run.ms).padStart(7)} s${size}${rss}${keys}${cpu}  (load ${loadavg()[0]!.toFixed(1)})`);
  }

  fail(id: string, error: unknown): void {
    const m = this.measurements.get(id)!;
    const message = error instanceof Error ? error.message : String(error);
    m.errors.push(message.slice(0, 2000));
    log(`  ${m.id.padEnd(28)} FAILED: ${message.split('\n')[0]}`);
  }

  finish(): Measurement[] {
    for (const m of this.measurements.values()) {
      const t = summarize(m.runs.map((r) => r.ms));
      const s = summarize(m.runs.map((r) => r.bytes ?? NaN));
      const r = summarize(m.runs.map((x) => x.maxRssBytes ?? NaN));
      const k = summarize(m.runs.map((x) => (x.keys !== undefined ? x.keys / (x.ms / 1000) : NaN)));
      const c = summarize(m.runs.map((x) => x.cpuMs ?? NaN));
      if (c) m.cpu = c;
      if (t) m.time = t;
      if (s) m.size = s;
      if (r) m.rss = r;
      if (k) m.keysPerSecond = k;
    }
    return [...this.measurements.values()];
  }
}

export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A raw tool pipeline: its wall time, output size and the largest peak RSS among its processes. */
export async function measurePipeline(steps: Step[], io: { stdoutFile?: string; stdinFile?: string }, sizeOf?: string): Promise<Run> {
  const r = await runPipeline(steps, io);
  const file = sizeOf ?? io.stdoutFile;
  const bytes = file ? (await stat(file)).size : undefined;
  return {
    ms: r.ms,
    ...(bytes !== undefined ? { bytes } : {}),
    ...(r.maxRssBytes !== undefined ? { maxRssBytes: r.maxRssBytes } : {}),
    ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}),
  };
}

/**
 * Runs one library operation in a fresh Node process (plain JavaScript, no loader) so its peak
 * RSS is its own. The task travels in an environment variable: it holds the server password.
 */
export async function runChild(childJs: string, task: ChildTask): Promise<ChildReport & { wallMs: number; cpuMs?: number }> {
  const started = performance.now();
  const usageFile = rusageFile();
  // e.g. SCHOLARIA_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the library side.
  const nodeArgs = (process.env.SCHOLARIA_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // Under GNU time for the CPU of Node and the tools it ran (pg_dump, zstd...): a process's
  // rusage includes the children it waited for.
  const [cmd, args] = GNU_TIME
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', usageFile, childNode, ...nodeArgs, childJs]]
    : [childNode, [...nodeArgs, childJs]];
  const report = await new Promise<ChildReport & { wallMs: number }>((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SCHOLARIA_BENCH_TASK: JSON.stringify(task) },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-6000)));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const wallMs = performance.now() - started;
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) {
        resolve({ ...(JSON.parse(line) as ChildReport), wallMs });
      } else {
        reject(new Error(`${task.kind} child exited ${code ?? signal}: ${err.trim() || out.trim()}`));
      }
    });
  }).finally(() => undefined);
  const usage = GNU_TIME ? parseTimeOutput(await readFile(usageFile, 'utf8').catch(() => '')) : {};
  await rm(usageFile, { force: true });
  return { ...report, ...(usage.cpuMs !== undefined ? { cpuMs: usage.cpuMs - (report.startupCpuMs ?? 0) } : {}) };
}
