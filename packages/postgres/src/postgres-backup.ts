import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Duplex, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BackupError,
  createGzipCodec,
  createZstdCodec,
  openProducerArtifact,
  type ArtifactOptions,
  type ProducerArtifact,
  type Codec,
  type SourceBackupContext,
  type SourceBackupResult,
} from '@scholaria/backup-core';
import type pg from 'pg';
import { artifactBaseName, shellQuote, type DatabaseMetadata, type PostgresBackupMetadata } from './backup-metadata.js';
import { childEnv } from './connection.js';
import { packDumpDirectory } from './dump-tar.js';
import {
  archiveVersion,
  countTablesByOid,
  largeObjectCount,
  readDatabaseInfo,
  tableDataOids,
  type TableCount,
} from './database-info.js';
import { buildPgDumpallArgs, buildPgDumpArgs } from './pg-dump-args.js';
import { describeExit, exitGate, findTool, runTool, spawnTool, toolVersion, type SpawnedTool } from './pg-tools.js';
import type { Runtime } from './runtime.js';
import { preflight, type Preflight } from './preflight.js';
import { redactText } from './redact.js';

export const CUSTOM_DUMP_CONTENT_TYPE = 'application/x-postgresql-custom-dump';
export const DIRECTORY_DUMP_CONTENT_TYPE = 'application/x-tar';
export const GLOBALS_CONTENT_TYPE = 'application/sql';
export const GLOBALS_ARTIFACT = 'globals.sql';

export interface CompressionPlan {
  /** Level passed to pg_dump --compress (0 = none inside pg_dump). */
  pgLevel: number | undefined;
  /** Codec for ArtifactOptions.compression. */
  codec: Codec | false;
  record: { mode: 'zstd' | 'gzip' | 'pg' | 'none'; level?: number };
}

/**
 * zstd outside pg_dump is the default: measured on a 1 GB database it gives the size of
 * pg_dump's built-in compression in about a quarter of the time, because pg_dump compresses on
 * one core and the codec runs on another.
 */
export function compressionPlan(mode: 'zstd' | 'gzip' | 'pg' | 'none', level: number | undefined): CompressionPlan {
  switch (mode) {
    case 'zstd': {
      const l = level ?? 3;
      return { pgLevel: 0, codec: createZstdCodec({ level: l }), record: { mode, level: l } };
    }
    case 'gzip': {
      const l = level ?? 1;
      return { pgLevel: 0, codec: createGzipCodec({ level: l }), record: { mode, level: l } };
    }
    case 'pg': {
      return { pgLevel: level, codec: false, record: level === undefined ? { mode } : { mode, level } };
    }
    case 'none':
      return { pgLevel: 0, codec: false, record: { mode } };
  }
}

/**
 * Feeds the head of the dump to `pg_restore --list`, which reads the table of contents and
 * exits. The listing names the tables whose data is in this very dump (whatever the filters
 * matched), so the row counts cover exactly those. When the stream is already compressed (pg_dump
 * piped straight into the zstd program), `decoder` undoes that first; it runs only until the
 * lister has what it needs.
 */
function tocTap(lister: SpawnedTool, decoder?: Duplex): Transform {
  const stdin = lister.child.stdin;
  if (!stdin) throw new Error('pg_restore --list was started without a stdin pipe');
  // EPIPE once the lister has read the table of contents and quit: expected.
  stdin.on('error', () => undefined);
  let input: Writable = stdin;
  if (decoder) {
    decoder.on('error', () => undefined);
    decoder.pipe(stdin);
    // A decoder that fails must not leave the lister waiting for more input.
    decoder.once('close', () => {
      if (!stdin.writableEnded) stdin.end();
    });
    input = decoder;
  }
  let open = true;
  const closed = lister.exited.then(
    () => undefined,
    () => undefined,
  );
  void closed.then(() => {
    open = false;
    decoder?.destroy();
  });
  input.on('error', () => (open = false));
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!open) return cb(null, chunk);
      if (input.write(chunk)) return cb(null, chunk);
      void Promise.race([once(input, 'drain').catch(() => undefined), closed]).then(() => cb(null, chunk));
    },
    flush(cb: TransformCallback) {
      if (open) input.end();
      cb();
    },
    destroy(error, cb) {
      // pipeline() destroys its streams once done too; the decoder may still be feeding the
      // lister the end of a small dump then, and stops by itself when the lister exits.
      if (error) decoder?.destroy();
      cb(error);
    },
  });
}

interface DumpOutcome {
  meta: DatabaseMetadata;
  warnings: string[];
}

export async function runBackup(rt: Runtime, ctx: SourceBackupContext): Promise<SourceBackupResult> {
  const warnings: string[] = [];
  const pre = await preflight(rt, ctx.signal);
  warnings.push(...pre.warnings);
  const plan = compressionPlan(rt.options.compression, rt.options.compressionLevel);
  const password = await rt.password();
  const env = childEnv(rt.params, password);
  const databases = await rt.databases();

  let globals: PostgresBackupMetadata['globals'] = null;
  if (rt.options.globals !== 'off') {
    const first = databases[0];
    if (first === undefined) throw new BackupError('SOURCE_FAILED', `${rt.name}: no database to back up`, { component: rt.name });
    globals = await dumpGlobals(rt, ctx, pre, env, first, plan, warnings);
  }

  const dbMeta: DatabaseMetadata[] = [];
  for (const db of databases) {
    if (ctx.signal.aborted) throw aborted(rt);
    const outcome = await dumpDatabase(rt, ctx, pre, env, db, plan);
    dbMeta.push(outcome.meta);
    warnings.push(...outcome.warnings);
  }

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

function aborted(rt: Runtime): BackupError {
  return new BackupError('ABORTED', `${rt.name}: backup aborted`, { component: rt.name });
}

function restoreHintFor(db: string, format: 'custom' | 'directory-tar', jobs: number): string {
  const dbArg = shellQuote(`--dbname=${db}`);
  if (format === 'custom') return `pg_restore ${dbArg}`;
  return `sh -c 'mkdir -p dump && tar -x -C dump' && pg_restore --jobs=${jobs} ${dbArg} dump`;
}

async function dumpGlobals(
  rt: Runtime,
  ctx: SourceBackupContext,
  pre: Preflight,
  env: NodeJS.ProcessEnv,
  database: string,
  plan: CompressionPlan,
  warnings: string[],
): Promise<PostgresBackupMetadata['globals']> {
  const required = rt.options.globals === 'required';
  let path: string;
  try {
    path = findTool('pg_dumpall', rt.tools, rt.name);
    const v = await toolVersion(path, rt.name);
    if (v.major < pre.serverMajor) {
      throw new BackupError('TOOL_TOO_OLD', `${rt.name}: pg_dumpall ${v.text} is older than the server (${pre.serverVersion})`, {
        component: rt.name,
        hint: `install the PostgreSQL ${pre.serverMajor} client tools or newer, or set binDir/pgDumpallPath`,
      });
    }
  } catch (error) {
    if (required) throw error;
    const msg = BackupError.isInstance(error) ? error.message : String(error);
    warnings.push(`roles and tablespaces were not saved (${msg}); a restore into a new server must create them first`);
    return null;
  }
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

function wrapFailure(rt: Runtime, error: unknown, signal: AbortSignal): BackupError {
  if (signal.aborted) return aborted(rt);
  if (BackupError.isInstance(error)) return error;
  const message =
    error instanceof Error
      ? error.message
      : typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string'
        ? error.message
        : String(error);
  return new BackupError('SOURCE_FAILED', `${rt.name}: ${message}`, { component: rt.name, cause: error });
}

/** Opens the transaction whose snapshot pg_dump shares, so counts and dump see the same data. */
async function openSnapshot(client: pg.ClientBase): Promise<string | undefined> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const r = await client.query<{ s: string }>('SELECT pg_catalog.pg_export_snapshot() AS s');
    return r.rows[0]?.s;
  } catch {
    // Exporting is not possible everywhere (e.g. some poolers, old standbys): count without it.
    await client.query('ROLLBACK');
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return undefined;
  }
}

/** Ordinary tables outside system schemas and extensions: the fallback when the TOC cannot be read. */
async function userTableOids(client: pg.ClientBase): Promise<number[]> {
  const r = await client.query<{ oid: number }>(
    `SELECT c.oid::int8 AS oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`,
  );
  return r.rows.map((x) => Number(x.oid));
}

async function dumpDatabase(
  rt: Runtime,
  ctx: SourceBackupContext,
  pre: Preflight,
  env: NodeJS.ProcessEnv,
  db: string,
  plan: CompressionPlan,
): Promise<DumpOutcome> {
  const warnings: string[] = [];
  const o = rt.options;
  const session = await rt.connector.connect(db);
  let inTransaction = false;
  try {
    const info = await readDatabaseInfo(session.client, db);
    const snapshot = await openSnapshot(session.client);
    inTransaction = true;
    if (!snapshot) {
      warnings.push(`${db}: could not export a snapshot; row counts were taken beside the dump and are not compared on restore`);
    }
    const format = o.jobs > 1 ? 'directory-tar' : 'custom';
    const base = artifactBaseName(db);
    const artifact = format === 'custom' ? `${base}.dump` : `${base}.dump.tar`;
    const dumpArgs = {
      ...rt.connArgs(),
      database: db,
      compressionLevel: plan.pgLevel,
      snapshot,
      schemas: o.schemas,
      excludeSchemas: o.excludeSchemas,
      tables: o.tables,
      excludeTables: o.excludeTables,
      excludeTableData: o.excludeTableData,
      noOwner: o.noOwner,
      noAcl: o.noAcl,
    };
    const artifactOptions: ArtifactOptions = {
      contentType: format === 'custom' ? CUSTOM_DUMP_CONTENT_TYPE : DIRECTORY_DUMP_CONTENT_TYPE,
      compression: plan.codec,
      restoreHint: restoreHintFor(db, format, o.jobs),
      metadata: { kind: 'database', database: db, format, pgDumpVersion: pre.pgDump.version.text },
    };
    const dumpError = (r: { code: number | null; signal: NodeJS.Signals | null }, stderr: string) =>
      new BackupError('SOURCE_FAILED', `${rt.name}: pg_dump of database "${db}" ${describeExit(r)}${stderr ? `: ${stderr}` : ''}`, {
        component: rt.name,
        hint: 'the artifact was not stored; fix the cause in the pg_dump message above and run the backup again',
        details: { database: db, exitCode: r.code, signal: r.signal },
      });

    let listing: Promise<string | undefined>;
    let dumped: Promise<void>;
    const started = Date.now();

    if (format === 'custom') {
      const args = buildPgDumpArgs({ ...dumpArgs, format: 'custom' });
      // pg_dump straight into the codec's own program (zstd) through an OS pipe where the codec
      // has one and the engine takes precompressed bytes: the uncompressed dump then never
      // passes through Node, which only hashes and stores the compressed stream.
      const codec = plan.codec || undefined;
      let opened: ProducerArtifact;
      try {
        opened = await openProducerArtifact(ctx, artifact, {
          artifact: artifactOptions,
          ...(codec ? { codec } : {}),
          redact: (text) => redactText(text, rt.secrets()),
        });
      } catch (error) {
        throw wrapFailure(rt, error, ctx.signal);
      }
      const { sink, encoder, external } = opened;
      ctx.logger.info('pg_dump started', {
        database: db,
        args,
        ...(encoder && external ? { pipedInto: [external.command, ...external.args].join(' ') } : {}),
      });
      let tool: SpawnedTool;
      try {
        tool = spawnTool(pre.pgDump.path, args, { env, signal: ctx.signal, ...(encoder ? { stdout: encoder.input } : {}) });
      } catch (error) {
        encoder?.kill();
        const failure = wrapFailure(rt, error, ctx.signal);
        sink.destroy(failure);
        throw failure;
      } finally {
        // pg_dump holds its own copy of the pipe now; while this process kept its end open,
        // zstd would never see the end of its input.
        encoder?.releaseInput();
      }
      let tap: Transform | undefined;
      let lister: SpawnedTool | undefined;
      if (pre.pgRestore) {
        lister = spawnTool(pre.pgRestore.path, ['--list'], { env, stdin: 'pipe' });
        let out = '';
        lister.child.stdout?.setEncoding('utf8');
        lister.child.stdout?.on('data', (d: string) => (out += d));
        tap = tocTap(lister, encoder && codec ? codec.decode(codec.describe()) : undefined);
        listing = lister.exited.then(
          (r) => (r.code === 0 ? out : undefined),
          () => undefined,
        );
      } else listing = Promise.resolve(undefined);
      // Checks pg_dump's exit; the encoder's output checks zstd's (it ends only after zstd exited 0).
      const gate = exitGate(tool, (r) => dumpError(r, tool.stderr.text(rt.secrets())));
      const head = encoder ? encoder.output : tool.child.stdout!;
      dumped = (tap ? pipeline(head, tap, gate, sink, { signal: ctx.signal }) : pipeline(head, gate, sink, { signal: ctx.signal })).catch((error: unknown) => {
        tool.child.kill('SIGTERM');
        encoder?.kill();
        // A dump cut off before its table of contents would leave the lister waiting for input.
        lister?.child.kill('SIGTERM');
        throw wrapFailure(rt, error, ctx.signal);
      });
    } else {
      // Parallel dumps write a folder (pg_dump -Fd -j needs one); it is streamed as a tar once complete.
      const work = await mkdtemp(join(o.tempDir ?? tmpdir(), 'scholaria-pgdump-'));
      const dir = join(work, 'dump');
      const args = buildPgDumpArgs({ ...dumpArgs, format: 'directory', file: dir, jobs: o.jobs });
      ctx.logger.info('pg_dump started', { database: db, args });
      const tool = spawnTool(pre.pgDump.path, args, { env, signal: ctx.signal, stdout: 'ignore' });
      const finished = (async () => {
        const r = await tool.exited;
        if (r.code !== 0) throw dumpError(r, tool.stderr.text(rt.secrets()));
      })();
      listing = finished.then(
        async () => {
          if (!pre.pgRestore) return undefined;
          const r = await runTool(pre.pgRestore.path, ['--list', dir], { env });
          return r.code === 0 ? r.stdout : undefined;
        },
        () => undefined,
      );
      dumped = (async () => {
        try {
          await finished;
          await ctx.writeArtifact(artifact, packDumpDirectory(dir), artifactOptions);
        } catch (error) {
          throw wrapFailure(rt, error, ctx.signal);
        } finally {
          await rm(work, { recursive: true, force: true });
        }
      })();
    }

    const counting = (async () => {
      const toc = await listing;
      const none: TableCount[] = [];
      if (o.rowCounts === 'off') return { tables: none, toc };
      let oids: number[];
      if (toc !== undefined) oids = tableDataOids(toc);
      else {
        if (o.schemas.length || o.tables.length || o.excludeSchemas.length || o.excludeTables.length || o.excludeTableData.length) {
          warnings.push(`${db}: could not list the dump's contents with pg_restore; row counts skipped because filters are set`);
          return { tables: none, toc };
        }
        warnings.push(`${db}: could not list the dump's contents with pg_restore; row counts cover every user table`);
        oids = await userTableOids(session.client);
      }
      const tables = await countTablesByOid(session.client, oids, { mode: o.rowCounts, exactCountMaxRows: o.exactCountMaxRows });
      return { tables: snapshot ? tables : tables.map((t) => ({ ...t, exact: false })), toc };
    })();

    const [dumpResult, countResult] = await Promise.allSettled([dumped, counting]);
    if (dumpResult.status === 'rejected') throw dumpResult.reason;
    if (countResult.status === 'rejected') throw wrapFailure(rt, countResult.reason, ctx.signal);
    const { tables, toc } = countResult.value;
    let largeObjects: number | undefined;
    if (toc && /^\d+;\s+\d+\s+\d+\s+(BLOB|LARGE OBJECT)\s/m.test(toc) && snapshot) {
      largeObjects = await largeObjectCount(session.client);
    }
    await session.client.query('COMMIT');
    inTransaction = false;
    ctx.logger.info('pg_dump finished', { database: db, tables: tables.length, ms: Date.now() - started });
    const version = toc ? archiveVersion(toc) : undefined;
    const meta: DatabaseMetadata = {
      name: db,
      artifact,
      format,
      sizeBytes: info.sizeBytes,
      encoding: info.encoding,
      collate: info.collate,
      ctype: info.ctype,
      localeProvider: info.localeProvider,
      icuLocale: info.icuLocale,
      owner: info.owner,
      acl: info.acl,
      settings: info.settings,
      comment: info.comment,
      extensions: info.extensions,
      tables,
      ...(largeObjects !== undefined ? { largeObjects } : {}),
      snapshot: !!snapshot,
      ...(version ? { archiveVersion: version } : {}),
    };
    return { meta, warnings };
  } finally {
    if (inTransaction) await session.client.query('ROLLBACK').catch(() => undefined);
    await session.release();
  }
}

