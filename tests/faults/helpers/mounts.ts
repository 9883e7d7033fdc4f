import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { registerCleanup } from '@scholaria/backup-testkit';

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()} (these tests need root to mount)`);
}

export interface Mount {
  path: string;
  /** The whole mount read-only (fails with EBUSY while a file on it is open for writing). */
  readOnly(): void;
  readWrite(): void;
  /**
   * A read-only bind mount stacked on top of `path`: files already open for writing stay on the
   * writable mount below, every new create, rename or delete meets EROFS. Returns the undo.
   */
  readOnlyOnTop(): () => void;
  unmount(): void;
}

function track(path: string, bind: boolean): Mount {
  let mounted = true;
  const unregister = registerCleanup(() => {
    if (mounted) spawnSync('umount', ['-l', path]);
  });
  return {
    path,
    // A bind mount keeps the files already open for writing on the writable mount below, so
    // writes in flight continue and the next create or rename meets EROFS.
    readOnly: () => run('mount', ['-o', bind ? 'remount,bind,ro' : 'remount,ro', path]),
    readWrite: () => run('mount', ['-o', bind ? 'remount,bind,rw' : 'remount,rw', path]),
    readOnlyOnTop() {
      run('mount', ['--bind', path, path]);
      try {
        run('mount', ['-o', 'remount,bind,ro', path]);
      } catch (error) {
        spawnSync('umount', ['-l', path]);
        throw error;
      }
      let on = true;
      const off = registerCleanup(() => {
        if (on) spawnSync('umount', ['-l', path]);
      });
      return () => {
        if (!on) return;
        on = false;
        off();
        run('umount', ['-l', path]);
      };
    },
    unmount() {
      if (!mounted) return;
      run('umount', ['-l', path]);
      mounted = false;
      unregister();
    },
  };
}

/** A tmpfs of `size` (e.g. '8m') at `path`: a small disk that fills up. */
export function mountTmpfs(path: string, size: string): Mount {
  mkdirSync(path, { recursive: true });
  run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', path]);
  return track(path, false);
}

/** `path` bind-mounted onto itself, so it can be switched read-only while files are open. */
export function bindMount(path: string): Mount {
  mkdirSync(path, { recursive: true });
  run('mount', ['--bind', path, path]);
  return track(path, true);
}
