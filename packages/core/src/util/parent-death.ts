import { execFile } from 'node:child_process';

let check: Promise<boolean> | undefined;

/**
 * Whether util-linux `setpriv --pdeathsig` works here (Linux). A program that writes a backup
 * file by itself, with no pipe back to this process, would otherwise outlive a killed backup
 * and run to the end of its input; started through setpriv it gets SIGTERM when this process
 * dies, so pg_dump then stops too (broken pipe). Checked once per process.
 */
export function parentDeathSignalAvailable(): Promise<boolean> {
  check ??= new Promise((resolve) => {
    if (process.platform !== 'linux') return resolve(false);
    execFile('setpriv', ['--pdeathsig', 'TERM', '--', 'true'], { timeout: 10_000, windowsHide: true }, (error) => resolve(!error));
  });
  return check;
}

/** `command args` run so that it gets SIGTERM when this process dies, where that is possible. */
export async function withParentDeathSignal(command: string, args: string[]): Promise<{ command: string; args: string[] }> {
  if (!(await parentDeathSignalAvailable())) return { command, args };
  return { command: 'setpriv', args: ['--pdeathsig', 'TERM', '--', command, ...args] };
}
