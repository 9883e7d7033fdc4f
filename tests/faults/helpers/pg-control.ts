import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { PostgresServer } from '@scholaria/backup-testkit';

const isRoot = process.getuid?.() === 0;

function pgCtl(server: PostgresServer, args: string[]): void {
  const cmd = join(server.binDir, 'pg_ctl');
  const [c, a] = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(c, a, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  if (r.status !== 0) throw new Error(`pg_ctl ${args[0]} failed (${r.status}): ${r.stdout}${r.stderr}`);
}

/**
 * Stops the server the way an outage does (fast: sessions are terminated) but keeps its data
 * directory, so the test can start it again and check that nothing changed.
 */
export function stopPostgresKeepingData(server: PostgresServer, mode: 'fast' | 'immediate' = 'fast'): void {
  pgCtl(server, ['stop', '-D', server.dataDir, '-m', mode, '-w']);
}

export function startPostgresAgain(server: PostgresServer): void {
  pgCtl(server, ['start', '-D', server.dataDir, '-l', join(dirname(server.dataDir), 'restart.log'), '-w', '-t', '60']);
}
