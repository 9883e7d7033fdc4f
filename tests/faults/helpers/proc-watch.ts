import { readFileSync, readdirSync } from 'node:fs';

export interface SeenProcess {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string[];
  /** Only for processes whose environment was asked for. */
  env?: string[];
}

/**
 * Polls /proc while a run goes on and keeps the command line of every process it sees: all of
 * them (to look for secrets in any argv) and, separately, the descendants of this process (to
 * see which tools ran and that no shell did).
 */
export function watchProcesses(options: { everyMs?: number; envOf?: RegExp } = {}) {
  const all = new Map<string, string[]>();
  const mine = new Map<number, SeenProcess>();
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
    /** Processes started (directly or not) by this test process. */
    children: () => [...mine.values()],
    stop: () => clearInterval(timer),
  };
}
