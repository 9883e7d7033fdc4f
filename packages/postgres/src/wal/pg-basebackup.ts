import { BackupError } from '@scholaria/backup-core';

/**
 * pg_basebackup arguments for a tar stream on stdout: `-D - -Ft` writes the main tablespace
 * as one tar, `-X none` leaves the WAL to the archive (the manifest says which segments the
 * backup needs), `-v` prints the start and end points this backup records. No password here:
 * it travels in PGPASSWORD.
 */
export function buildPgBasebackupArgs(o: { host?: string | undefined; port?: number | undefined; user?: string | undefined; checkpoint?: 'fast' | 'spread'; label?: string }): string[] {
  const args = ['-D', '-', '-F', 't', '-X', 'none', '-v', '-w', `--checkpoint=${o.checkpoint ?? 'fast'}`];
  if (o.label) args.push('-l', o.label);
  if (o.host) args.push('-h', o.host);
  if (o.port !== undefined) args.push('-p', String(o.port));
  if (o.user) args.push('-U', o.user);
  return args;
}

export interface BasebackupPoints {
  startLsn: string;
  timeline: number;
  stopLsn: string;
}

/** Reads `write-ahead log start point: 0/2000028 on timeline 1` and `... end point: 0/2000100` from pg_basebackup -v. */
export function parseBasebackupPoints(stderr: string): BasebackupPoints {
  const start = /write-ahead log start point:\s*([0-9A-F]+\/[0-9A-F]+)\s+on timeline\s+(\d+)/i.exec(stderr);
  const stop = /write-ahead log end point:\s*([0-9A-F]+\/[0-9A-F]+)/i.exec(stderr);
  if (!start || !stop) {
    throw new BackupError('SOURCE_FAILED', `postgres-pitr: pg_basebackup did not report its start and end points (output: ${stderr.slice(-400)})`, {
      component: 'postgres-pitr',
      hint: 'use pg_basebackup 10 or newer; the backup cannot be used for point-in-time recovery without them',
    });
  }
  return { startLsn: start[1]!.toUpperCase(), timeline: Number(start[2]), stopLsn: stop[1]!.toUpperCase() };
}
