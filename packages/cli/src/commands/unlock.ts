import { BackupError, LOCK_PREFIX, listLocks, lockIsStale, processIdentity, type LockInfo } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { formatTime } from '../format.js';
import { ask } from './restore.js';

/**
 * Removes the run locks on the storages after showing their owners and a confirmation: for a
 * lock left by a killed run on another host, which otherwise blocks until its heartbeat
 * expires. A lock whose owner provably runs (same host, boot and PID namespace, PID alive,
 * heartbeat fresh) is never removed.
 */
export async function unlockCommand(ctx: CommandContext, options: { yes: boolean }): Promise<number> {
  return await withRuntime(ctx, 'unlock', async ({ rt, fileLog }) => {
    const { out } = ctx;
    const found: { storage: (typeof rt.storages)[number]; lock: LockInfo; stale: boolean; why?: string }[] = [];
    for (const storage of rt.storages) {
      for (const lock of await listLocks(storage)) {
        const { stale, why } = lockIsStale(lock, new Date());
        found.push({ storage, lock, stale, ...(why ? { why } : {}) });
      }
    }
    const describe = (f: (typeof found)[number]) =>
      `${f.lock.action} on ${f.storage.name} by ${f.lock.actor} (pid ${f.lock.pid} on ${f.lock.host}) since ${formatTime(f.lock.createdAt, rt.timeZone)}, last heartbeat ${formatTime(f.lock.heartbeatAt, rt.timeZone)}${f.stale ? ` — stale: ${f.why}` : ''}`;
    if (found.length === 0) {
      if (ctx.json) out.document({ removed: [], kept: [] });
      else out.line('no locks: nothing to unlock');
      return EXIT.OK;
    }
    // Provably running here: the PID is alive in this boot and namespace and its heartbeat is fresh.
    const self = processIdentity();
    const running = found.filter((f) => !f.stale && f.lock.host === self.host && f.lock.bootId === self.bootId && f.lock.pidNamespace === self.pidNamespace && self.bootId !== undefined && pidAlive(f.lock.pid));
    const removable = found.filter((f) => !running.includes(f));
    if (!ctx.json) {
      for (const f of running) out.line(`kept (its process runs on this machine): ${describe(f)}`);
      for (const f of removable) out.line(`lock: ${describe(f)}`);
    }
    if (removable.length === 0) {
      if (ctx.json) out.document({ removed: [], kept: running.map((f) => f.lock.id) });
      out.note('hint: wait for that run to finish, or stop it (SIGTERM) first.');
      return EXIT.FAILURE;
    }
    if (!options.yes) {
      if (!ctx.io.isTTY) {
        throw new BackupError('USAGE', `refusing to remove ${removable.length} lock(s) without confirmation: this is not an interactive terminal`, {
          hint: 'Check that the run shown is really gone (on its host), then pass --yes.',
        });
      }
      out.note('Removing a lock of a run that is still alive lets two runs write at once. Check the host above first.');
      const answer = (await ask(ctx.io, `Remove ${removable.length} lock(s)? Type "yes" to continue: `, ctx.signal)).trim().toLowerCase();
      if (answer !== 'yes') {
        out.note('unlock cancelled: nothing was removed');
        return EXIT.FAILURE;
      }
    }
    for (const f of removable) {
      await f.storage.delete(`${LOCK_PREFIX}${f.lock.id}.json`);
      fileLog.warn(`removed the lock ${describe(f)}`, { lock: f.lock, storage: f.storage.name });
    }
    if (ctx.json) out.document({ removed: removable.map((f) => ({ storage: f.storage.name, ...f.lock })), kept: running.map((f) => f.lock.id) });
    else out.line(`removed ${removable.length} lock(s)`);
    return EXIT.OK;
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
