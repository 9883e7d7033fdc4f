import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupError, sleep, type Logger } from '@scholaria/backup-core';
import { childEnv, readPassword, resolveConnection } from '../connection.js';
import { parsePostgresOptions } from '../postgres-options.js';
import { runTool, spawnTool } from '../pg-tools.js';
import { findPgProgram } from './pg-programs.js';
import type { WalArchive } from './wal-archive.js';
import { walFileKind } from './wal-names.js';

export interface ReceiveWalOptions {
  /** A role with REPLICATION. */
  url: string;
  archive: WalArchive;
  /** Local spool folder pg_receivewal writes into; completed files are pushed and removed. */
  spoolDir: string;
  /** Replication slot (created if missing) so the server keeps WAL the receiver has not got. */
  slot: string;
  binDir?: string;
  signal: AbortSignal;
  logger?: Logger;
  /** How often the spool folder is scanned, default 1 s. */
  pollMs?: number;
  /** Called after each pushed file. */
  onPushed?: (name: string) => void;
}

export function buildPgReceivewalArgs(o: { dir: string; slot: string; host?: string | undefined; port?: number | undefined; user?: string | undefined }): string[] {
  const args = ['-D', o.dir, '-S', o.slot, '-w', '--synchronous'];
  if (o.host) args.push('-h', o.host);
  if (o.port !== undefined) args.push('-p', String(o.port));
  if (o.user) args.push('-U', o.user);
  return args;
}

/**
 * The archive without archive_command: pg_receivewal streams WAL over a replication slot into
 * a spool folder (writing `X.partial` until a segment is complete, then renaming it to `X`),
 * and every completed file is pushed exactly as archive_command would push it, then removed
 * locally. Runs until `signal` aborts; the slot makes the server keep WAL across restarts.
 */
export async function receiveWal(o: ReceiveWalOptions): Promise<void> {
  const params = resolveConnection(parsePostgresOptions({ url: o.url, name: 'postgres-pitr' }));
  const password = await readPassword(params);
  const env = childEnv(params, password);
  const tool = findPgProgram('pg_receivewal', o.binDir, 'postgres-pitr');
  const conn = { host: params.host, port: params.port, user: params.user };
  const create = await runTool(tool, ['--create-slot', '--if-not-exists', '-S', o.slot, '-w', ...buildPgReceivewalArgs({ dir: o.spoolDir, slot: o.slot, ...conn }).slice(6)], { env });
  if (create.code !== 0) {
    throw new BackupError('SOURCE_FAILED', `postgres-pitr: cannot create replication slot ${o.slot}: ${create.stderr}`, {
      component: 'postgres-pitr',
      hint: 'the role needs REPLICATION, pg_hba.conf a "replication" line, and the server max_replication_slots > 0',
    });
  }
  const child = spawnTool(tool, buildPgReceivewalArgs({ dir: o.spoolDir, slot: o.slot, ...conn }), { env, signal: o.signal });
  let exited = false;
  void child.exited.then(() => (exited = true), () => (exited = true));
  const pushReady = async () => {
    const names = (await readdir(o.spoolDir)).filter((n) => walFileKind(n) === 'segment' || walFileKind(n) === 'history').sort();
    for (const name of names) {
      await o.archive.push(join(o.spoolDir, name));
      await rm(join(o.spoolDir, name), { force: true });
      o.logger?.info('wal received and archived', { name });
      o.onPushed?.(name);
    }
  };
  try {
    while (!o.signal.aborted && !exited) {
      await pushReady();
      await sleep(o.pollMs ?? 1000, o.signal).catch(() => undefined);
    }
    if (exited && !o.signal.aborted) {
      throw new BackupError('SOURCE_FAILED', `postgres-pitr: pg_receivewal stopped: ${child.stderr.text(password ? [password] : [])}`, {
        component: 'postgres-pitr',
        hint: 'check the connection and the slot; it resumes from the slot when started again',
      });
    }
  } finally {
    child.child.kill('SIGTERM');
    await child.exited.catch(() => undefined);
    // What was completed before the stop is pushed; a .partial stays for the next run.
    await pushReady();
  }
}
