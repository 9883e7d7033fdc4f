import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError, isoWithOffset, startFileDecoder, type RunningFileDecoder, type SourceRestoreContext, type SourceRestoreResult } from '@scholaria/backup-core';
import type pg from 'pg';
import { parseBackupMetadata, type DatabaseMetadata, type PostgresBackupMetadata } from './backup-metadata.js';
import { childEnv, quoteIdent, type DbSession } from './connection.js';
import { compareCounts, createDatabaseSql, databasePropertiesSql } from './database-info.js';
import { unpackDumpDirectory } from './dump-tar.js';
import { classifyGlobalsStatement, globalsStatements } from './globals-script.js';
import { buildPgRestoreArgs } from './pg-dump-args.js';
import { describeExit, findTool, majorFromVersionNum, spawnTool, toolVersion, type PgVersion } from './pg-tools.js';
import { parseRestoreOverrides, type RestoreMode } from './postgres-options.js';
import type { Runtime } from './runtime.js';
import { redactText } from './redact.js';

/** The restore settings in force: factory defaults overridden by the engine's component options. */
export interface EffectiveRestoreOptions {
  mode: RestoreMode;
  jobs: number;
  targetDatabase: string | undefined;
  keepPrevious: boolean;
  globals: boolean;
  verifyRowCounts: boolean;
  noOwner: boolean;
  noAcl: boolean;
}

export function effectiveRestoreOptions(rt: Runtime, ctxOptions: Record<string, unknown> | undefined): EffectiveRestoreOptions {
  const base = rt.options.restore;
  const ov = parseRestoreOverrides(ctxOptions, rt.name);
  const pick = <T>(v: T | undefined, d: T) => (v === undefined ? d : v);
  return {
    mode: pick(ov.mode, base.mode),
    jobs: pick(ov.jobs, base.jobs),
    targetDatabase: pick(ov.targetDatabase, base.targetDatabase),
    keepPrevious: pick(ov.keepPrevious, base.keepPrevious),
    globals: pick(ov.globals, base.globals),
    verifyRowCounts: pick(ov.verifyRowCounts, base.verifyRowCounts),
    noOwner: pick(ov.noOwner, base.noOwner),
    noAcl: pick(ov.noAcl, base.noAcl),
  };
}

const MAX_IDENT_BYTES = 63;

/** base + suffix within PostgreSQL's 63-byte name limit, shortening the base on a character boundary. */
export function fitName(base: string, suffix: string): string {
  let b = base;
  while (Buffer.byteLength(b + suffix) > MAX_IDENT_BYTES && b.length > 0) b = Array.from(b).slice(0, -1).join('');
  return b + suffix;
}

/** `YYYYMMDD_HHMMSS` in the engine's zone (like set ids), UTC without one. */
function stampOf(date: Date, timeZone = 'UTC'): string {
  const local = isoWithOffset(date, timeZone);
  return `${local.slice(0, 10).replace(/-/g, '')}_${local.slice(11, 19).replace(/:/g, '')}`;
}

function setStamp(setId: string): string {
  return /(\d{8}_\d{6})(?:-\d+)?$/.exec(setId)?.[1] ?? stampOf(new Date());
}

interface DbPlan {
  meta: DatabaseMetadata;
  target: string;
  targetExists: boolean;
  /** swap: the database restored into before the rename. */
  staging?: string;
  /** swap: the name the replaced database keeps. */
  previous?: string;
}

interface Tools {
  pgRestore: { path: string; version: PgVersion };
}

function restoreFailed(rt: Runtime, message: string, hint: string, details?: Record<string, unknown>, cause?: unknown): BackupError {
  return new BackupError('RESTORE_FAILED', `${rt.name}: ${message}`, { component: rt.name, hint, details, cause });
}

async function connectMaintenance(rt: Runtime): Promise<DbSession> {
  try {
    return await rt.connector.connect(rt.options.maintenanceDatabase);
  } catch (error) {
    // A server without the 'postgres' database still has template1.
    if (BackupError.isInstance(error) && error.code === 'NOT_FOUND' && rt.options.maintenanceDatabase !== 'template1') {
      return await rt.connector.connect('template1');
    }
    throw error;
  }
}

async function exists(client: pg.ClientBase, db: string): Promise<boolean> {
  const r = await client.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [db]);
  return (r.rowCount ?? 0) > 0;
}

function targetName(rt: Runtime, meta: PostgresBackupMetadata, db: DatabaseMetadata, ro: EffectiveRestoreOptions, setId: string): string {
  if (ro.targetDatabase) return ro.targetDatabase;
  // The configured database is "the one restored" when there is exactly one on both sides.
  const configured = !rt.options.databases && rt.params.database;
  const base = meta.databases.length === 1 && configured ? configured : db.name;
  return ro.mode === 'new-database' ? fitName(base, `_${setStamp(setId)}`) : base;
}

/**
 * The error a stream feeding pg_restore failed with, when it is the cause of whatever pg_restore
 * says about a cut-off archive (a checksum mismatch, a storage error); undefined when there was
 * none or it only means pg_restore stopped reading (EPIPE, premature close).
 */
function upstreamFailure(feedError: unknown): Error | undefined {
  const code = (feedError as NodeJS.ErrnoException | undefined)?.code;
  return feedError && code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE' ? (feedError as Error) : undefined;
}

/** The artifact's own stream failed while pg_restore --list read it; `message` is the stream's. */
class ArtifactReadError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

/**
 * Reads only the head of an archive with `pg_restore --list`: proves this pg_restore can read it.
 * `direct` is true when the archive is a verified local file that pg_restore reads itself.
 */
async function listArchive(
  rt: Runtime,
  ctx: SourceRestoreContext,
  tools: Tools,
  db: DatabaseMetadata,
  env: NodeJS.ProcessEnv,
): Promise<{ direct: boolean; decoded?: string }> {
  /** Runs `pg_restore --list` on `source` (a file descriptor, a stream to feed, a decoder's output or a directory); only its exit matters. */
  const list = async (source: { fd: number } | { stream: Readable } | { dir: string } | { decoder: RunningFileDecoder }): Promise<void> => {
    const args = 'dir' in source ? ['--list', source.dir] : ['--list'];
    const stdin = 'fd' in source ? source.fd : 'stream' in source ? 'pipe' : 'decoder' in source ? source.decoder.output : 'ignore';
    let tool: ReturnType<typeof spawnTool>;
    try {
      tool = spawnTool(tools.pgRestore.path, args, { env, stdin, stdout: 'ignore', signal: ctx.signal });
    } finally {
      if ('decoder' in source) source.decoder.release();
    }
    // pg_restore --list stops reading after the table of contents; the rest of the stream is dropped.
    let feedError: unknown;
    const feeding =
      'stream' in source
        ? pipeline(source.stream, tool.child.stdin!).catch((error: unknown) => {
            feedError = error;
          })
        : undefined;
    const r = await tool.exited;
    if ('stream' in source) source.stream.destroy();
    await feeding;
    if (r.code !== 0) {
      // A stream that failed can cut pg_restore's input short, even to nothing.
      const cause = upstreamFailure(feedError);
      if (cause) throw new ArtifactReadError(cause);
      throw new Error(`pg_restore --list ${describeExit(r)}: ${tool.stderr.text(rt.secrets())}`);
    }
  };
  if (db.format === 'custom') {
    const local = await ctx.localFile?.(db.artifact);
    if (local) {
      try {
        await list({ fd: local.fd });
        return { direct: true };
      } finally {
        await local.close();
      }
    }
    const encoded = await ctx.localDecodedFile?.(db.artifact);
    if (encoded) {
      // pg_restore --list reads only the head; the decoder then loses its reader (expected).
      const decoder = startFileDecoder(encoded, { signal: ctx.signal, name: db.artifact });
      try {
        await list({ decoder });
      } finally {
        decoder.kill();
        await decoder.done.catch(() => undefined);
        await encoded.file.close();
      }
      return { direct: false, decoded: [encoded.decoder.command, ...encoded.decoder.args].join(' ') };
    }
    await list({ stream: await ctx.open(db.artifact) });
    return { direct: false };
  }
  const work = await mkdtemp(join(rt.options.tempDir ?? tmpdir(), 'scholaria-pgtoc-'));
  try {
    await unpackDumpDirectory(await ctx.open(db.artifact), work, { onlyToc: true });
    await list({ dir: work });
    return { direct: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface RestoreRun {
  rt: Runtime;
  ctx: SourceRestoreContext;
  ro: EffectiveRestoreOptions;
  meta: PostgresBackupMetadata;
  tools: Tools;
  env: NodeJS.ProcessEnv;
  maint: DbSession;
  serverMajor: number;
  warnings: string[];
  plan: string[];
}

export async function runRestore(rt: Runtime, ctx: SourceRestoreContext): Promise<SourceRestoreResult> {
  const ro = effectiveRestoreOptions(rt, ctx.options);
  const meta = parseBackupMetadata(ctx.component.metadata, rt.name);
  const plan: string[] = [];
  const warnings: string[] = [];
  const problems: string[] = [];
  const artifactNames = new Set(ctx.component.artifacts.map((a) => a.name));

  if (ro.targetDatabase && meta.databases.length > 1) {
    problems.push(`targetDatabase "${ro.targetDatabase}" given but the backup holds ${meta.databases.length} databases; restore them one at a time with databases: [...] or drop targetDatabase`);
  }
  for (const db of meta.databases) {
    if (!artifactNames.has(db.artifact)) problems.push(`artifact ${db.artifact} (database "${db.name}") is missing from the manifest`);
  }
  // The manifest is untrusted input: it may not pick databases the configuration does not name
  // (a planted manifest listing "billing" would otherwise have it replaced).
  const listed = Array.isArray(rt.options.databases) ? rt.options.databases : undefined;
  const single = !rt.options.databases && rt.params.database;
  const where = `set ${ctx.setId}, component ${rt.name}, metadata.databases`;
  if (listed) {
    for (const db of meta.databases) {
      if (!listed.includes(db.name)) problems.push(`${where} names database "${db.name}", which the configuration does not list (databases: ${listed.join(', ')}); add it to databases to restore it`);
    }
  } else if (single && !ro.targetDatabase && meta.databases.length > 1) {
    problems.push(`${where} names ${meta.databases.length} databases (${meta.databases.map((d) => `"${d.name}"`).join(', ')}) but the configuration names one ("${single}"); configure databases: [...] (or 'all') to restore several`);
  }

  // Checks before any change. Each problem is collected, so a dry run reports all of them.
  let tools: Tools | undefined;
  try {
    const path = findTool('pg_restore', rt.tools, rt.name);
    const version = await toolVersion(path, rt.name);
    tools = { pgRestore: { path, version } };
    if (version.major < meta.pgDumpMajor) {
      problems.push(
        `pg_restore ${version.text} (${path}) cannot read archives written by pg_dump ${meta.pgDumpVersion}: install the PostgreSQL ${meta.pgDumpMajor} client tools or newer and set binDir`,
      );
      tools = undefined;
    } else plan.push(`use ${path} (${version.text}) to read archives from pg_dump ${meta.pgDumpVersion}`);
  } catch (error) {
    problems.push(BackupError.isInstance(error) ? `${error.message} (${error.hint ?? ''})` : String(error));
  }

  let maint: DbSession;
  try {
    maint = await connectMaintenance(rt);
  } catch (error) {
    const e = BackupError.isInstance(error) ? error : restoreFailed(rt, String(error), 'check the connection settings');
    if (problems.length === 0) throw e;
    problems.unshift(`target server not reachable: ${e.message}`);
    throw restoreFailed(rt, `restore cannot start:\n  - ${problems.join('\n  - ')}`, 'fix the problems listed, then run the restore (or a dry run) again', { plan, problems });
  }

  const password = await rt.password();
  const env = childEnv(rt.params, password);
  const run: RestoreRun = { rt, ctx, ro, meta, tools: tools as Tools, env, maint, serverMajor: 0, warnings, plan };
  try {
    const server = await maint.client.query<{ num: string; text: string; createdb: boolean; superuser: boolean }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text,
              r.rolcreatedb AS createdb, r.rolsuper AS superuser
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
    );
    const facts = server.rows[0] as { num: string; text: string; createdb: boolean; superuser: boolean };
    run.serverMajor = majorFromVersionNum(Number(facts.num));
    plan.push(`target server PostgreSQL ${facts.text.split(' ')[0]} at ${rt.params.host}:${rt.params.port} (backup taken from ${meta.serverVersion})`);
    if (run.serverMajor < majorFromVersionNum(meta.serverVersionNum)) {
      warnings.push(`the target server (${facts.text}) is older than the backed-up one (${meta.serverVersion}); objects using newer features may fail to restore`);
    }
    const creates = ro.mode !== 'in-place';
    if (creates && !facts.createdb && !facts.superuser) {
      problems.push(`the restore user may not create databases, which ${ro.mode} mode needs: grant CREATEDB or use mode "in-place"`);
    }

    const available = new Set(
      (await maint.client.query<{ name: string }>('SELECT name FROM pg_catalog.pg_available_extensions')).rows.map((r) => r.name),
    );
    const dbPlans: DbPlan[] = [];
    for (const db of meta.databases) {
      const target = targetName(rt, meta, db, ro, ctx.setId);
      if (Buffer.byteLength(target) > MAX_IDENT_BYTES) problems.push(`target database name "${target}" is longer than 63 bytes`);
      const targetExists = await exists(maint.client, target);
      const p: DbPlan = { meta: db, target, targetExists };
      const missingExt = db.extensions.filter((e) => !available.has(e.name)).map((e) => `${e.name} ${e.version}`);
      if (missingExt.length) {
        problems.push(`database "${db.name}" needs extensions not installed on the target server: ${missingExt.join(', ')} (install their packages, e.g. postgresql-contrib or postgresql-${run.serverMajor}-<extension>)`);
      }
      if (ro.mode === 'swap') {
        if (meta.partial) {
          problems.push(`the backup of "${db.name}" holds only some schemas/tables (filters ${JSON.stringify(meta.filters)}); swap mode would replace the whole database with it: use mode "in-place" or "new-database"`);
        }
        p.staging = fitName(target, `_restoring_${setStamp(ctx.setId)}`);
        if (await exists(maint.client, p.staging)) {
          problems.push(`database "${p.staging}" already exists (left by an interrupted restore?): drop it or inspect it first`);
        }
        if (targetExists) {
          p.previous = fitName(target, `_before_${stampOf(new Date(), ctx.timeZone)}`);
          plan.push(
            `swap: restore "${db.name}" into new database "${p.staging}", compare row counts, then rename "${target}" to "${p.previous}"${ro.keepPrevious ? ' (kept)' : ' (then dropped)'} and "${p.staging}" to "${target}" in one transaction`,
          );
        } else {
          plan.push(`swap: "${target}" does not exist; restore "${db.name}" into new database "${p.staging}", compare row counts, then rename it to "${target}"`);
        }
      } else if (ro.mode === 'new-database') {
        if (targetExists) problems.push(`database "${target}" already exists; new-database mode restores only into a new name (set targetDatabase)`);
        plan.push(`new-database: create "${target}" and restore "${db.name}" into it`);
      } else if (targetExists) {
        plan.push(`in-place: pg_restore --clean --if-exists --single-transaction into existing "${target}" (objects not in the backup are kept)`);
      } else {
        plan.push(`in-place: "${target}" does not exist; create it and restore "${db.name}" into it`);
      }
      const exact = db.tables.filter((t) => t.exact);
      if (ro.verifyRowCounts && exact.length) plan.push(`verify ${exact.length} table row counts of "${target}" against the manifest`);
      else if (ro.verifyRowCounts) warnings.push(`the manifest has no exact row counts for "${db.name}"; the restore is not compared`);
      if (tools && artifactNames.has(db.artifact)) {
        try {
          const listed = await listArchive(rt, ctx, tools, db, env);
          plan.push(`archive ${db.artifact} is readable by pg_restore ${tools.pgRestore.version.text}`);
          if (db.format === 'custom') {
            plan.push(
              listed.direct
                ? `pg_restore reads ${db.artifact} directly from the verified local file (no copy through Node)`
                : listed.decoded && ((ro.mode === 'in-place' && targetExists) || ro.jobs <= 1)
                  ? `pg_restore reads ${db.artifact} from the verified local file through \`${listed.decoded}\` (an OS pipe, no copy through Node)`
                  : `pg_restore reads ${db.artifact} as a stream, checked against its sha256 again as it flows`,
            );
          }
        } catch (error) {
          problems.push(
            error instanceof ArtifactReadError
              ? `reading ${db.artifact} failed: ${error.message}`
              : `archive ${db.artifact} cannot be read: ${(error as Error).message}`,
          );
        }
      }
      dbPlans.push(p);
    }

    const globalsArtifact = meta.globals && artifactNames.has(meta.globals.artifact) ? meta.globals.artifact : undefined;
    if (ro.globals && globalsArtifact) {
      const missing = await rolesToCreate(run, globalsArtifact);
      plan.unshift(
        missing.length
          ? `create roles missing on the target from ${globalsArtifact}: ${missing.join(', ')}${meta.globals?.rolePasswords ? '' : ' (saved without passwords: set them afterwards)'}`
          : `every role in ${globalsArtifact} exists on the target; globals left as they are`,
      );
    } else if (!globalsArtifact && !ro.noOwner) {
      const roles = (await maint.client.query<{ rolname: string }>('SELECT rolname FROM pg_catalog.pg_roles')).rows.map((r) => r.rolname);
      for (const db of meta.databases) {
        if (!roles.includes(db.owner)) {
          warnings.push(`role "${db.owner}" (owner of "${db.name}") does not exist on the target and the backup has no roles: create it first or restore with noOwner`);
        }
      }
    }

    if (problems.length) {
      throw restoreFailed(
        rt,
        `restore ${ctx.dryRun ? 'dry run found problems' : 'cannot start'}:\n  - ${problems.join('\n  - ')}`,
        'fix the problems listed; nothing was changed',
        { plan, problems },
      );
    }
    if (ctx.dryRun) {
      return { plan, warnings, metadata: { dryRun: true, mode: ro.mode, databases: dbPlans.map((p) => ({ source: p.meta.name, target: p.target })) } };
    }

    const createdRoles = ro.globals && globalsArtifact ? await restoreGlobals(run, globalsArtifact) : [];
    const results: Record<string, unknown>[] = [];
    for (const p of dbPlans) {
      ctx.signal.throwIfAborted();
      results.push(await restoreDatabase(run, p));
    }
    return { plan, warnings, metadata: { mode: ro.mode, createdRoles, databases: results } };
  } finally {
    await maint.release();
  }
}

function roleGrant(sql: string): [string, string] | undefined {
  const m = /^GRANT\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+TO\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)/i.exec(sql);
  if (!m || /\sON\s/i.test(sql.split(' TO ')[0] as string)) return undefined;
  const unq = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s.toLowerCase());
  return [unq(m[1] as string), unq(m[2] as string)];
}

async function rolesToCreate(run: RestoreRun, artifact: string): Promise<string[]> {
  const existing = new Set((await run.maint.client.query<{ rolname: string }>('SELECT rolname FROM pg_catalog.pg_roles')).rows.map((r) => r.rolname));
  const out: string[] = [];
  for await (const sql of globalsStatements(await run.ctx.open(artifact))) {
    const s = classifyGlobalsStatement(sql);
    if (s.kind === 'create-role' && !existing.has(s.role)) out.push(s.role);
  }
  return out;
}

/**
 * Runs the globals script through `pg`, creating only what the target lacks: statements about
 * roles and tablespaces that already exist are skipped, so a restore never changes the
 * password or attributes of an existing role (including the one it connects as).
 */
async function restoreGlobals(run: RestoreRun, artifact: string): Promise<string[]> {
  const c = run.maint.client;
  const roles = new Set((await c.query<{ rolname: string }>('SELECT rolname FROM pg_catalog.pg_roles')).rows.map((r) => r.rolname));
  const spaces = new Set((await c.query<{ spcname: string }>('SELECT spcname FROM pg_catalog.pg_tablespace')).rows.map((r) => r.spcname));
  const createdRoles = new Set<string>();
  const createdSpaces = new Set<string>();
  const tryRun = async (sql: string, what: string) => {
    try {
      await c.query(sql);
      return true;
    } catch (error) {
      run.warnings.push(`${what}: ${(error as Error).message}`);
      return false;
    }
  };
  for await (const sql of globalsStatements(await run.ctx.open(artifact))) {
    const s = classifyGlobalsStatement(sql);
    switch (s.kind) {
      case 'create-role':
        if (!roles.has(s.role) && (await tryRun(sql, `creating role "${s.role}"`))) createdRoles.add(s.role);
        break;
      case 'role':
        if (createdRoles.has(s.role)) await tryRun(sql, `setting up role "${s.role}"`);
        break;
      case 'create-tablespace':
        if (!spaces.has(s.tablespace) && (await tryRun(sql, `creating tablespace "${s.tablespace}"`))) createdSpaces.add(s.tablespace);
        break;
      case 'tablespace':
        if (createdSpaces.has(s.tablespace)) await tryRun(sql, `setting up tablespace "${s.tablespace}"`);
        break;
      default: {
        const grant = roleGrant(sql);
        if (grant) {
          if (createdRoles.has(grant[0]) || createdRoles.has(grant[1])) await tryRun(sql, 'granting role membership');
        } else if (/^SET\s/i.test(sql)) {
          await tryRun(sql, 'session setting');
        } else {
          run.warnings.push(`skipped an unrecognised statement in ${artifact}: ${sql.slice(0, 80)}`);
        }
      }
    }
  }
  // The script's SET commands must not leak into the statements that follow on this session.
  await c.query('RESET ALL').catch(() => undefined);
  return [...createdRoles];
}

async function dropDatabase(run: RestoreRun, name: string): Promise<void> {
  const force = run.serverMajor >= 13 ? ' WITH (FORCE)' : '';
  await run.maint.client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${force}`);
}

async function createTargetDatabase(run: RestoreRun, name: string, db: DatabaseMetadata): Promise<string> {
  const c = run.maint.client;
  const ownerExists = ((await c.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [db.owner])).rowCount ?? 0) > 0;
  const owner = ownerExists && !run.ro.noOwner ? db.owner : undefined;
  if (!ownerExists && !run.ro.noOwner) run.warnings.push(`role "${db.owner}" does not exist: "${name}" is owned by the restoring user`);
  try {
    await c.query(createDatabaseSql(name, db, owner));
  } catch (error) {
    // Locale names differ between systems (en_US.utf8 vs C.UTF-8): fall back to the server's default.
    if (!/locale|collation|LC_/i.test((error as Error).message)) throw error;
    run.warnings.push(`"${name}" created with the server's default locale: ${(error as Error).message}`);
    await c.query(`CREATE DATABASE ${quoteIdent(name)} WITH TEMPLATE = template0 ENCODING = '${db.encoding.replace(/'/g, "''")}'${owner ? ` OWNER = ${quoteIdent(owner)}` : ''}`);
  }
  const current = (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u as string;
  if (!run.ro.noAcl) {
    for (const sql of databasePropertiesSql(name, { acl: db.acl, comment: db.comment }, owner ?? current)) {
      try {
        await c.query(sql);
      } catch (error) {
        run.warnings.push(`database "${name}": ${sql}: ${(error as Error).message}`);
      }
    }
  }
  return owner ?? current;
}

/** ALTER DATABASE ... SET, applied after the data so a setting like default_transaction_read_only cannot block the restore. */
async function applyDatabaseSettings(run: RestoreRun, name: string, db: DatabaseMetadata): Promise<void> {
  const c = run.maint.client;
  for (const setting of db.settings) {
    const eq = setting.indexOf('=');
    const key = setting.slice(0, eq);
    const value = setting.slice(eq + 1);
    try {
      // set_config parses the value like the server does (lists such as search_path included).
      await c.query('SELECT pg_catalog.set_config($1, $2, false)', [key, value]);
      await c.query(`ALTER DATABASE ${quoteIdent(name)} SET ${quoteIdent(key)} FROM CURRENT`);
    } catch (error) {
      run.warnings.push(`database "${name}": setting ${key}: ${(error as Error).message}`);
    } finally {
      await c.query(`RESET ${quoteIdent(key)}`).catch(() => undefined);
    }
  }
}

interface PgRestoreRun {
  clean: boolean;
  singleTransaction: boolean;
  jobs: number;
}

/** Feeds one archive to pg_restore: streamed on stdin, or through a temp file/folder when -j needs one. */
async function pgRestoreInto(run: RestoreRun, db: DatabaseMetadata, target: string, how: PgRestoreRun): Promise<void> {
  const { rt, ctx, ro, tools, env } = run;
  const common = {
    ...rt.connArgs(),
    database: target,
    clean: how.clean,
    ifExists: how.clean,
    singleTransaction: how.singleTransaction,
    exitOnError: true,
    noOwner: ro.noOwner,
    noAcl: ro.noAcl,
  };
  const jobs = how.singleTransaction ? 1 : how.jobs;
  const needsFile = db.format === 'directory-tar' || jobs > 1;
  // A verified local file (fs storage, no codec) is read by pg_restore itself: no temp copy, no pipe.
  const local = db.format === 'custom' ? await ctx.localFile?.(db.artifact) : undefined;
  // A verified local file with a decoding program (fs storage, zstd): `zstd -d -c < file |
  // pg_restore`, joined by an OS pipe, so the decoded archive never passes through Node.
  const encoded = !local && !needsFile && db.format === 'custom' ? await ctx.localDecodedFile?.(db.artifact) : undefined;
  let decoder: RunningFileDecoder | undefined;
  let work: string | undefined;
  try {
    let args: string[];
    let input: Readable | number | undefined;
    if (encoded) {
      args = buildPgRestoreArgs(common);
      decoder = startFileDecoder(encoded, { signal: ctx.signal, redact: (text) => redactText(text, rt.secrets()), name: db.artifact });
    } else if (local && !needsFile) {
      args = buildPgRestoreArgs(common);
      input = local.fd;
    } else if (local) {
      // pg_restore -j opens the file by name in every worker; it is checked again after the run.
      args = buildPgRestoreArgs({ ...common, file: local.path, jobs });
    } else if (!needsFile) {
      args = buildPgRestoreArgs(common);
      input = await ctx.open(db.artifact);
    } else {
      work = await mkdtemp(join(rt.options.tempDir ?? tmpdir(), 'scholaria-pgrestore-'));
      if (db.format === 'directory-tar') {
        const dir = join(work, 'dump');
        await unpackDumpDirectory(await ctx.open(db.artifact), dir);
        args = buildPgRestoreArgs({ ...common, format: 'directory', file: dir, jobs });
      } else {
        // pg_restore -j seeks in the archive, so the stream is spooled to a private file first.
        const file = join(work, 'archive.dump');
        await pipeline(await ctx.open(db.artifact), createWriteStream(file, { mode: 0o600 }), { signal: ctx.signal });
        args = buildPgRestoreArgs({ ...common, file, jobs });
      }
    }
    ctx.logger.info('pg_restore started', { database: target, args });
    let tool: ReturnType<typeof spawnTool>;
    try {
      tool = spawnTool(tools.pgRestore.path, args, {
        env,
        stdin: decoder ? decoder.output : typeof input === 'number' ? input : input ? 'pipe' : 'ignore',
        signal: ctx.signal,
      });
    } finally {
      // pg_restore holds its own copy of the pipe now; ours would keep zstd writing into a
      // pipe nobody reads if pg_restore quit early.
      decoder?.release();
    }
    let feedError: unknown;
    const feeding =
      input && typeof input !== 'number'
        ? pipeline(input, tool.child.stdin!).catch((error: unknown) => {
            feedError = error;
          })
        : Promise.resolve();
    let decodeError: unknown;
    const decoded = decoder
      ? decoder.done.catch((error: unknown) => {
          decodeError = error;
        })
      : Promise.resolve();
    const [r] = await Promise.all([tool.exited, feeding, decoded]);
    const cause = upstreamFailure(feedError);
    if (cause) {
      throw BackupError.isInstance(cause)
        ? cause
        : restoreFailed(rt, `reading ${db.artifact} failed: ${cause.message}`, 'check the artifact with verify', undefined, cause);
    }
    // A decoder that lost its reader (SIGPIPE, broken pipe: pg_restore quit, or left trailing
    // bytes unread) says nothing of its own; any other decoder failure is the cause of whatever
    // pg_restore says about a cut-off archive.
    if (decodeError && !/SIGPIPE|Broken pipe/i.test((decodeError as Error).message)) throw decodeError;
    if (r.code !== 0) {
      throw restoreFailed(
        rt,
        `pg_restore into "${target}" ${describeExit(r)}: ${tool.stderr.text(rt.secrets())}`,
        'see the pg_restore message above; missing roles can be created first (globals) or skipped with noOwner/noAcl',
        { database: target, exitCode: r.code },
      );
    }
    // Proves the file pg_restore -j opened by name was still the verified one (throws if not).
    if (local && needsFile) await (await ctx.localFile!(db.artifact))?.close();
  } finally {
    decoder?.kill();
    await local?.close();
    await encoded?.file.close();
    if (work) await rm(work, { recursive: true, force: true });
  }
}

async function verifyCounts(run: RestoreRun, db: DatabaseMetadata, target: string): Promise<{ tables: number; mismatches: string[] }> {
  const exact = db.tables.filter((t) => t.exact);
  if (!run.ro.verifyRowCounts || (exact.length === 0 && db.largeObjects === undefined)) return { tables: 0, mismatches: [] };
  const session = await run.rt.connector.connect(target);
  try {
    return { tables: exact.length, mismatches: await compareCounts(session.client, exact, db.largeObjects) };
  } finally {
    await session.release();
  }
}

async function swapNames(run: RestoreRun, p: DbPlan): Promise<void> {
  const c = run.maint.client;
  const staging = p.staging as string;
  for (let attempt = 1; ; attempt++) {
    await c.query('BEGIN');
    try {
      if (p.previous && (await exists(c, p.target))) {
        // Sessions on the live database would block the rename; the server waits up to 5 s for them to go.
        await c.query('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()', [p.target]);
        await c.query(`ALTER DATABASE ${quoteIdent(p.target)} RENAME TO ${quoteIdent(p.previous)}`);
      }
      await c.query(`ALTER DATABASE ${quoteIdent(staging)} RENAME TO ${quoteIdent(p.target)}`);
      await c.query('COMMIT');
      return;
    } catch (error) {
      await c.query('ROLLBACK').catch(() => undefined);
      if ((error as { code?: string }).code === '55006' && attempt < 5) continue;
      throw error;
    }
  }
}

async function restoreDatabase(run: RestoreRun, p: DbPlan): Promise<Record<string, unknown>> {
  const { rt, ro } = run;
  const db = p.meta;
  const result: Record<string, unknown> = { source: db.name, target: p.target };
  if (ro.mode === 'in-place' && p.targetExists) {
    await pgRestoreInto(run, db, p.target, { clean: true, singleTransaction: true, jobs: 1 });
    const v = await verifyCounts(run, db, p.target);
    if (v.mismatches.length) {
      throw restoreFailed(
        rt,
        `in-place restore of "${p.target}" finished but row counts differ from the manifest: ${v.mismatches.join('; ')}`,
        'the restored data does not match the backup; restore again in swap mode (which keeps the live database until the copy is verified) and inspect',
        { database: p.target, mismatches: v.mismatches },
      );
    }
    return { ...result, tablesVerified: v.tables };
  }

  // swap, new-database, or in-place into a missing database: build a fresh database first.
  const building = ro.mode === 'swap' ? (p.staging as string) : p.target;
  await createTargetDatabase(run, building, db);
  try {
    await pgRestoreInto(run, db, building, { clean: false, singleTransaction: false, jobs: ro.jobs });
    const v = await verifyCounts(run, db, building);
    if (v.mismatches.length) {
      throw restoreFailed(
        rt,
        `restored copy of "${db.name}" does not match the manifest: ${v.mismatches.join('; ')}`,
        ro.mode === 'swap' ? `the live database "${p.target}" was left untouched; check the backup with verify` : 'the new database was removed; check the backup with verify',
        { database: building, mismatches: v.mismatches },
      );
    }
    await applyDatabaseSettings(run, building, db);
    result.tablesVerified = v.tables;
    if (ro.mode === 'swap') {
      await swapNames(run, p);
      if (p.previous) {
        if (ro.keepPrevious) result.previous = p.previous;
        else await dropDatabase(run, p.previous);
      }
    }
    return result;
  } catch (error) {
    await dropDatabase(run, building).catch(() => undefined);
    throw error;
  }
}
