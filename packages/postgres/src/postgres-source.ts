import {
  BackupError,
  ConfigError,
  type BackupSource,
  type SourceBackupContext,
  type SourceBackupResult,
  type SourceCheckResult,
  type SourceRestoreContext,
  type SourceRestoreResult,
  type SourceVerifyContext,
  type SourceVerifyResult,
} from '@scholaria/backup-core';
import { parseBackupMetadata } from './backup-metadata.js';
import { compareCounts } from './database-info.js';
import { findTool, toolVersion } from './pg-tools.js';
import { parsePostgresOptions, type PostgresSourceOptions } from './postgres-options.js';
import { runBackup } from './postgres-backup.js';
import { runRestore } from './postgres-restore.js';
import { serverFacts, tooOld } from './preflight.js';
import { redactText } from './redact.js';
import { createRuntime, type Runtime } from './runtime.js';
import { dropKeptDatabase, listKeptDatabases, type KeptDatabase } from './kept-databases.js';

/** The PostgreSQL source, with the databases that swap restores kept (`<db>_before_<time>`). */
export interface PostgresSource extends BackupSource {
  keptDatabases(): Promise<KeptDatabase[]>;
  dropKeptDatabase(name: string): Promise<void>;
}

/** Makes sure no message leaving the source carries the password, whatever produced it. */
function scrub(rt: Runtime, error: unknown): unknown {
  const secrets = rt.secrets();
  if (!secrets.length || !(error instanceof Error)) return error;
  const clean = redactText(error.message, secrets);
  if (clean !== error.message) error.message = clean;
  return error;
}

/**
 * The PostgreSQL source: pg_dump (custom format, streamed) on backup, pg_restore in swap,
 * in-place or new-database mode on restore, row counts taken inside the dump's snapshot.
 */
export function createPostgresSource(options: PostgresSourceOptions): PostgresSource {
  const resolved = parsePostgresOptions(options);
  const rt = createRuntime(resolved);
  if (!resolved.databases && !rt.params.database) {
    throw new ConfigError('createPostgresSource: invalid options', ['database: no database given: put it in the url path (postgresql://host/db), or set database or databases'], {
      hint: 'name the database to back up',
      component: resolved.name,
    });
  }
  const name = resolved.name;

  async function guard<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (signal?.aborted && !(BackupError.isInstance(error) && error.code === 'ABORTED')) {
        throw new BackupError('ABORTED', `${name}: aborted`, { component: name, cause: error });
      }
      throw scrub(rt, error);
    }
  }

  return {
    specVersion: 'v1',
    name,

    backup: (ctx: SourceBackupContext): Promise<SourceBackupResult> => guard(() => runBackup(rt, ctx), ctx.signal),

    keptDatabases: () => guard(() => listKeptDatabases(rt)),
    dropKeptDatabase: (db: string) => guard(() => dropKeptDatabase(rt, db)),

    restore: (ctx: SourceRestoreContext): Promise<SourceRestoreResult> => guard(() => runRestore(rt, ctx), ctx.signal),

    async check(): Promise<SourceCheckResult> {
      const details: Record<string, unknown> = {};
      const problems: string[] = [];
      const warnings: string[] = [];
      const notes: string[] = [];
      const describe = (error: unknown) =>
        BackupError.isInstance(error) ? `${error.message}${error.hint ? ` (${error.hint})` : ''}` : String(error);
      let serverMajor: number | undefined;
      try {
        const dbs = await rt.databases();
        details.databases = dbs;
        const facts = await serverFacts(rt, dbs[0] ?? resolved.maintenanceDatabase);
        serverMajor = facts.serverMajor;
        details.serverVersion = facts.serverVersion;
        details.canReadRolePasswords = facts.canReadAuthid;
        if (!facts.canReadAuthid && resolved.globals !== 'off') {
          // Normal for an application user: a fact for the operator, not a warning on every check.
          notes.push('this user cannot read role passwords, so roles are saved without them (connect as a superuser to keep them)');
        }
        try {
          const kept = await listKeptDatabases(rt);
          if (kept.length > 0) {
            details.keptDatabases = kept;
            const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
            notes.push(`${kept.length} database(s) kept by swap restores: ${kept.map((k) => `${k.name} (${mib(k.bytes)})`).join(', ')}; remove them with \`scholaria-backup restore cleanup\` once you no longer need them`);
          }
        } catch {
          // listing needs only CONNECT on the maintenance database; not being able to is no problem of the backup
        }
        for (const db of dbs.slice(1)) {
          const s = await rt.connector.connect(db);
          await s.release();
        }
      } catch (error) {
        problems.push(redactText(describe(error), rt.secrets()));
      }
      for (const tool of ['pg_dump', 'pg_restore', 'pg_dumpall'] as const) {
        if (tool === 'pg_dumpall' && resolved.globals === 'off') continue;
        try {
          const path = findTool(tool, rt.tools, name);
          const version = await toolVersion(path, name);
          details[tool] = { path, version: version.text };
          if (serverMajor !== undefined && version.major < serverMajor && tool !== 'pg_restore') {
            const e = tooOld(rt, tool, version, path, String(details.serverVersion), serverMajor);
            (tool === 'pg_dumpall' && resolved.globals === 'auto' ? warnings : problems).push(describe(e));
          }
        } catch (error) {
          (tool === 'pg_dumpall' && resolved.globals === 'auto' ? warnings : problems).push(describe(error));
        }
      }
      return { ok: problems.length === 0, details, problems, warnings, ...(notes.length > 0 ? { notes } : {}) };
    },

    verify: (ctx: SourceVerifyContext): Promise<SourceVerifyResult> =>
      guard(async () => {
        const meta = parseBackupMetadata(ctx.component.metadata, name);
        const mismatches: string[] = [];
        const configured = !resolved.databases && rt.params.database;
        for (const db of meta.databases) {
          const target = meta.databases.length === 1 && configured ? configured : db.name;
          let session;
          try {
            session = await rt.connector.connect(target);
          } catch (error) {
            mismatches.push(`database "${target}": ${BackupError.isInstance(error) ? error.message : String(error)}`);
            continue;
          }
          try {
            const found = await compareCounts(
              session.client,
              db.tables.filter((t) => t.exact),
              db.largeObjects,
            );
            mismatches.push(...found.map((m) => `database "${target}": ${m}`));
          } finally {
            await session.release();
          }
        }
        return { ok: mismatches.length === 0, mismatches };
      }),
  };
}
