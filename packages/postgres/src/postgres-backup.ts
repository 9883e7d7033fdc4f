import { pipeline } from 'node:stream/promises';
import { BackupError, prepareProducerArtifact, type SourceBackupContext, type SourceBackupResult } from '@scholaria/backup-core';
import type { PostgresBackupMetadata, DatabaseMetadata } from './backup-metadata.js';
import { compressionPlan, type CompressionPlan } from './compression-plan.js';
import { childEnv } from './connection.js';
import { dumpDatabase } from './database-dump.js';
import { aborted, wrapFailure } from './dump-failure.js';
import { buildPgDumpallArgs } from './pg-dump-args.js';
import { describeExit, exitGate, spawnTool } from './pg-tools.js';
import type { Runtime } from './runtime.js';
import { preflight, type Preflight } from './preflight.js';

export { compressionPlan, type CompressionPlan } from './compression-plan.js';
export { CUSTOM_DUMP_CONTENT_TYPE, DIRECTORY_DUMP_CONTENT_TYPE } from './dump-plan.js';
export const GLOBALS_CONTENT_TYPE = 'application/sql';
export const GLOBALS_ARTIFACT = 'globals.sql';

export async function runBackup(rt: Runtime, ctx: SourceBackupContext): Promise<SourceBackupResult> {
  const plan = compressionPlan(rt.options.compression, rt.options.compressionLevel);
  // The checks opening the dump's artifact waits for (is the zstd program there) run meanwhile.
  prepareProducerArtifact(ctx, plan.codec || undefined);
  const pre = await preflight(rt, ctx.signal, { pgDumpall: rt.options.globals !== 'off' });
  try {
    return await backupDatabases(rt, ctx, pre, plan);
  } finally {
    await pre.session.release();
  }
}

async function backupDatabases(rt: Runtime, ctx: SourceBackupContext, pre: Preflight, plan: CompressionPlan): Promise<SourceBackupResult> {
  const warnings: string[] = [...pre.warnings];
  const password = await rt.password();
  const env = childEnv(rt.params, password);
  const databases = await rt.databases();

  // Roles and tablespaces are dumped beside the first database (pg_dumpall is small and quick):
  // its artifact is opened first, so the manifest lists it first as before.
  let globalsRun: Promise<PostgresBackupMetadata['globals']> = Promise.resolve(null);
  if (rt.options.globals !== 'off') {
    const first = databases[0];
    if (first === undefined) throw new BackupError('SOURCE_FAILED', `${rt.name}: no database to back up`, { component: rt.name });
    const pgDumpall = await findPgDumpall(rt, pre, warnings);
    if (pgDumpall) globalsRun = dumpGlobals(rt, ctx, pre, env, pgDumpall, first, plan, warnings);
  }
  // Reported after the databases; a failure of the databases wins.
  globalsRun.catch(() => undefined);

  const dbMeta: DatabaseMetadata[] = [];
  for (const db of databases) {
    if (ctx.signal.aborted) throw aborted(rt);
    const outcome = await dumpDatabase(rt, ctx, pre, env, db, plan, pre.session.take(db));
    dbMeta.push(outcome.meta);
    warnings.push(...outcome.warnings);
  }
  const globals = await globalsRun;

  const o = rt.options;
  const filters = Object.fromEntries(
    (
      [
        ['schemas', o.schemas],
        ['excludeSchemas', o.excludeSchemas],
        ['tables', o.tables],
        ['excludeTables', o.excludeTables],
        ['excludeTableData', o.excludeTableData],
      ] as const
    ).filter(([, v]) => v.length > 0),
  );
  const metadata: PostgresBackupMetadata = {
    serverVersion: pre.serverVersion,
    serverVersionNum: pre.serverVersionNum,
    pgDumpVersion: pre.pgDump.version.text,
    pgDumpMajor: pre.pgDump.version.major,
    compression: plan.record,
    partial: o.schemas.length > 0 || o.tables.length > 0,
    filters,
    noOwner: o.noOwner,
    noAcl: o.noAcl,
    globals,
    databases: dbMeta,
  };
  return { metadata, warnings };
}

/**
 * The pg_dumpall to run for roles and tablespaces, checked against the server; null (with a
 * warning) when it is missing or too old and globals are not required.
 */
async function findPgDumpall(rt: Runtime, pre: Preflight, warnings: string[]): Promise<string | null> {
  try {
    if (!pre.pgDumpall) throw new BackupError('INTERNAL', `${rt.name}: pg_dumpall was not looked up`, { component: rt.name });
    const { path, version: v } = await pre.pgDumpall;
    if (v.major < pre.serverMajor) {
      throw new BackupError('TOOL_TOO_OLD', `${rt.name}: pg_dumpall ${v.text} is older than the server (${pre.serverVersion})`, {
        component: rt.name,
        hint: `install the PostgreSQL ${pre.serverMajor} client tools or newer, or set binDir/pgDumpallPath`,
      });
    }
    return path;
  } catch (error) {
    if (rt.options.globals === 'required') throw error;
    const msg = BackupError.isInstance(error) ? error.message : String(error);
    warnings.push(`roles and tablespaces were not saved (${msg}); a restore into a new server must create them first`);
    return null;
  }
}

/** Dumps roles and tablespaces; opens its artifact (and pushes its warnings) before it first waits. */
async function dumpGlobals(
  rt: Runtime,
  ctx: SourceBackupContext,
  pre: Preflight,
  env: NodeJS.ProcessEnv,
  path: string,
  database: string,
  plan: CompressionPlan,
  warnings: string[],
): Promise<PostgresBackupMetadata['globals']> {
  const required = rt.options.globals === 'required';
  // Role passwords live in pg_authid, which only superusers read; without it, save the roles
  // without passwords rather than nothing.
  const rolePasswords = pre.canReadAuthid;
  if (!rolePasswords) {
    warnings.push(
      'the connecting user cannot read role passwords (pg_authid); roles were saved with --no-role-passwords, so after a restore into a new server set their passwords again',
    );
  }
  const args = buildPgDumpallArgs({ ...rt.connArgs(), database, noRolePasswords: !rolePasswords });
  ctx.logger.debug('pg_dumpall started', { args });
  const tool = spawnTool(path, args, { env, signal: ctx.signal });
  const sink = ctx.artifact(GLOBALS_ARTIFACT, {
    contentType: GLOBALS_CONTENT_TYPE,
    compression: plan.codec,
    restoreHint: 'psql --dbname=postgres',
    metadata: { kind: 'globals', rolePasswords },
  });
  const gate = exitGate(
    tool,
    (r) =>
      new BackupError('SOURCE_FAILED', `${rt.name}: pg_dumpall --globals-only ${describeExit(r)}: ${tool.stderr.text(rt.secrets())}`, {
        component: rt.name,
        hint: required
          ? 'give the backup user the right to read roles (or set globals: "auto" to continue without them)'
          : 'see the pg_dumpall error above; set globals: "off" to skip roles and tablespaces',
      }),
  );
  try {
    await pipeline(tool.child.stdout!, gate, sink, { signal: ctx.signal });
  } catch (error) {
    throw wrapFailure(rt, error, ctx.signal);
  }
  return { artifact: GLOBALS_ARTIFACT, rolePasswords };
}
