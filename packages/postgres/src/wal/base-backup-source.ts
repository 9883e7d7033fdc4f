import { pipeline } from 'node:stream/promises';
import { BackupError, type BackupSource, type SourceBackupContext, type SourceBackupResult, type SourceCheckResult } from '@scholaria/backup-core';
import { childEnv, readPassword, resolveConnection } from '../connection.js';
import { parsePostgresOptions, type PostgresSourceOptions } from '../postgres-options.js';
import { describeExit, exitGate, runTool, spawnTool } from '../pg-tools.js';
import { redactText } from '../redact.js';
import { backupLabelTap } from './backup-label-tap.js';
import { buildPgBasebackupArgs, parseBasebackupPoints } from './pg-basebackup.js';
import { findPgProgram } from './pg-programs.js';
import { runPitrRestore } from './pitr-restore.js';
import { lastPositionBefore, lsnPosition, parseLsn, segmentName } from './wal-names.js';

export const BASE_BACKUP_ARTIFACT = 'base.tar';
export const BASE_BACKUP_CONTENT_TYPE = 'application/x-tar';
export const PITR_COMPONENT = 'postgres-pitr';

export interface BaseBackupSourceOptions {
  /** Connection of a role with REPLICATION (the password is read at call time, never put in argv). */
  url: string;
  /** Folder with pg_basebackup and pg_ctl; default the newest /usr/lib/postgresql/<v>/bin, then PATH. */
  binDir?: string;
  /** Component name, default 'postgres-pitr'. */
  name?: string;
  checkpoint?: 'fast' | 'spread';
}

/**
 * The base backup half of point-in-time recovery: `pg_basebackup -Ft -D -` streamed through
 * the engine's pipeline (codecs, SHA-256, every storage) as one tar artifact; the manifest
 * records the timeline, start and stop LSN and the WAL range the backup needs. Restore
 * (engine.restore with componentOptions) builds a new data directory and replays the archive.
 */
export function createPostgresBaseBackupSource(options: BaseBackupSourceOptions): BackupSource {
  const name = options.name ?? PITR_COMPONENT;
  const resolved = parsePostgresOptions({ url: options.url, name });
  const params = resolveConnection(resolved);

  async function env(): Promise<{ env: NodeJS.ProcessEnv; secrets: string[] }> {
    const password = await readPassword(params);
    return { env: childEnv(params, password), secrets: password ? [password] : [] };
  }

  return {
    specVersion: 'v1',
    name,
    async backup(ctx: SourceBackupContext): Promise<SourceBackupResult> {
      const tool = findPgProgram('pg_basebackup', options.binDir, name);
      const { env: childEnvironment, secrets } = await env();
      const args = buildPgBasebackupArgs({ host: params.host, port: params.port, user: params.user, checkpoint: options.checkpoint ?? 'fast', label: `scholaria-backup ${ctx.setId}` });
      const startTime = new Date();
      const sink = ctx.artifact(BASE_BACKUP_ARTIFACT, {
        contentType: BASE_BACKUP_CONTENT_TYPE,
        restoreHint: 'tar -x -C NEW_DATA_DIR (then restore_command and recovery.signal: see docs/point-in-time-recovery.md)',
      });
      ctx.logger.info('pg_basebackup started', { args });
      const label = backupLabelTap();
      const child = spawnTool(tool, args, { env: childEnvironment, signal: ctx.signal });
      const gate = exitGate(child, (r) =>
        new BackupError('SOURCE_FAILED', `${name}: pg_basebackup ${describeExit(r)}: ${child.stderr.text(secrets)}`, {
          component: name,
          hint: 'the role needs REPLICATION and pg_hba.conf a "replication" line for this host; the server needs wal_level = replica and a free max_wal_senders slot',
        }),
      );
      try {
        await pipeline(child.child.stdout!, label.tap, gate, sink, { signal: ctx.signal });
      } catch (error) {
        child.child.kill('SIGTERM');
        throw BackupError.isInstance(error)
          ? error
          : new BackupError('SOURCE_FAILED', `${name}: base backup failed: ${redactText((error as Error).message, secrets)}`, { component: name, cause: error });
      }
      const facts = await label.facts();
      const points =
        facts.startLsn && facts.stopLsn && facts.timeline !== undefined
          ? { startLsn: facts.startLsn, stopLsn: facts.stopLsn, timeline: facts.timeline }
          : parseBasebackupPoints(child.stderr.text(secrets));
      const startLsn = parseLsn(points.startLsn)!;
      const stopLsn = parseLsn(points.stopLsn)!;
      const version = await runTool(tool, ['--version'], { env: process.env });
      return {
        metadata: {
          kind: 'pg_basebackup',
          toolVersion: version.stdout.trim(),
          timeline: points.timeline,
          startLsn: points.startLsn,
          stopLsn: points.stopLsn,
          startTime: startTime.toISOString(),
          stopTime: new Date().toISOString(),
          walRange: {
            first: segmentName(points.timeline, lsnPosition(startLsn)),
            last: segmentName(points.timeline, lastPositionBefore(stopLsn)),
          },
        },
      };
    },
    async restore(ctx) {
      return await runPitrRestore(ctx, { binDir: options.binDir, component: name, connection: params, env });
    },
    async check(): Promise<SourceCheckResult> {
      try {
        const tool = findPgProgram('pg_basebackup', options.binDir, name);
        const v = await runTool(tool, ['--version'], { env: process.env });
        return v.code === 0 ? { ok: true, details: { pgBasebackup: v.stdout.trim() } } : { ok: false, problems: [`pg_basebackup --version failed: ${v.stderr}`] };
      } catch (error) {
        return { ok: false, problems: [(error as Error).message] };
      }
    },
  };
}

export type { PostgresSourceOptions };
