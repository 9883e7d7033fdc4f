import childProcess from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { basename } from 'node:path';

export interface SeenProcess {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string[];
  /** Only for processes whose environment was asked for. */
  env?: string[];
}

/**
 * Records every `child_process.spawn` of this process while watching (the real spawn runs): the
 * program, its arguments and the environment it was given, whether it lives 1 ms or a minute.
 * A program started through `setpriv --pdeathsig TERM --` is recorded as the program itself,
 * as /proc shows it after the exec.
 */
function recordSpawns(onSpawn: (seen: SeenProcess) => void): () => void {
  const real = childProcess.spawn;
  const wrapped = function (this: unknown, file: string, ...rest: unknown[]) {
    const args = Array.isArray(rest[0]) ? (rest[0] as string[]) : [];
    const opts = (Array.isArray(rest[0]) ? rest[1] : rest[0]) as { env?: NodeJS.ProcessEnv; shell?: unknown } | undefined;
    const child = (real as (...a: unknown[]) => childProcess.ChildProcess).call(this, file, ...rest);
    let cmdline = [file, ...args];
    if (basename(file) === 'setpriv' && cmdline.includes('--')) cmdline = cmdline.slice(cmdline.indexOf('--') + 1);
    const env = Object.entries(opts?.env ?? process.env).map(([k, v]) => `${k}=${v}`);
    // With `shell`, what runs is a shell first.
    const comm = opts?.shell ? 'sh' : basename(cmdline[0] ?? '').slice(0, 15);
    onSpawn({ pid: child.pid ?? 0, ppid: process.pid, comm, cmdline, env });
    return child;
  } as typeof childProcess.spawn;
  childProcess.spawn = wrapped;
  syncBuiltinESMExports();
  return () => {
    if (childProcess.spawn === wrapped) {
      childProcess.spawn = real;
      syncBuiltinESMExports();
    }
  };
}

/**
 * Keeps the command line of every process it sees while a run goes on: all of them on the
 * machine (to look for secrets in any argv, by polling /proc) and, separately, the descendants
 * of this process (to see which tools ran and that no shell did). The children this process
 * spawns itself are recorded at the spawn, so none is missed however short it lives or however
 * busy the machine is; their own children (a shell a tool might start) only by polling.
 */
export function watchProcesses(options: { everyMs?: number; envOf?: RegExp } = {}) {
  const all = new Map<string, string[]>();
  const mine = new Map<number, SeenProcess>();
  const spawned: SeenProcess[] = [];
  const unrecord = recordSpawns((seen) => {
    spawned.push(seen);
    all.set(`${seen.pid} ${seen.cmdline.join(' ')}`, seen.cmdline);
  });
  const tick = () => {
    const parent = new Map<number, number>();
    const info = new Map<number, { comm: string; cmdline: string[] }>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        const comm = stat.slice(stat.indexOf('(') + 1, close);
        parent.set(Number(name), Number(stat.slice(close + 2).split(' ')[1]));
        const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
        info.set(Number(name), { comm, cmdline });
        all.set(`${name} ${cmdline.join(' ')}`, cmdline);
      } catch {
        // gone while reading
      }
    }
    for (const [pid, { comm, cmdline }] of info) {
      if (pid === process.pid || mine.has(pid)) continue;
      let p = parent.get(pid) ?? 0;
      for (let hops = 0; p > 1 && hops < 32; hops++) {
        if (p === process.pid) {
          const seen: SeenProcess = { pid, ppid: parent.get(pid) ?? 0, comm, cmdline };
          if (options.envOf?.test(comm)) {
            try {
              seen.env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
            } catch {
              // gone
            }
          }
          mine.set(pid, seen);
          break;
        }
        p = parent.get(p) ?? 0;
      }
    }
  };
  const timer = setInterval(tick, options.everyMs ?? 4);
  tick();
  return {
    /** Every command line seen on the machine while watching. */
    allCommandLines: () => [...all.values()],
    /** Processes started (directly or not) by this test process: as spawned, and as seen in /proc. */
    children: () => [...spawned, ...mine.values()],
    stop: () => {
      clearInterval(timer);
      unrecord();
    },
  };
}
