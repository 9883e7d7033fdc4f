import { BackupError, type ArtifactOptions, type Codec, type SourceBackupContext } from '@scholaria/backup-core';
import { artifactBaseName, shellQuote } from './backup-metadata.js';
import type { CompressionPlan } from './compression-plan.js';
import type { PgDumpArgsOptions } from './pg-dump-args.js';
import { describeExit, type ChildResult } from './pg-tools.js';
import type { Preflight } from './preflight.js';
import type { Runtime } from './runtime.js';

export const CUSTOM_DUMP_CONTENT_TYPE = 'application/x-postgresql-custom-dump';
export const DIRECTORY_DUMP_CONTENT_TYPE = 'application/x-tar';

/** custom: one pg_dump stream; directory-tar: a parallel `pg_dump -Fd -j` folder stored as a tar. */
export type DumpFormat = 'custom' | 'directory-tar';

/** Everything one database's dump needs, decided before pg_dump starts. */
export interface DumpJob {
  rt: Runtime;
  ctx: SourceBackupContext;
  pre: Preflight;
  env: NodeJS.ProcessEnv;
  db: string;
  format: DumpFormat;
  artifact: string;
  artifactOptions: ArtifactOptions;
  /** The codec compressing the artifact outside pg_dump, if any. */
  codec: Codec | undefined;
  /** pg_dump options shared by both formats; each path adds its format (and folder). */
  dumpArgs: PgDumpArgsOptions;
  /** The error for a pg_dump that exited badly, given its exit and redacted stderr. */
  dumpError: (r: ChildResult, stderr: string) => BackupError;
}

/** A dump under way: `dumped` settles when the artifact is stored, `listing` with pg_restore --list's output. */
export interface RunningDump {
  dumped: Promise<void>;
  listing: Promise<string | undefined>;
}

export function chooseDumpFormat(jobs: number): DumpFormat {
  return jobs > 1 ? 'directory-tar' : 'custom';
}

export function dumpArtifactName(db: string, format: DumpFormat): string {
  const base = artifactBaseName(db);
  return format === 'custom' ? `${base}.dump` : `${base}.dump.tar`;
}

export function restoreHintFor(db: string, format: DumpFormat, jobs: number): string {
  const dbArg = shellQuote(`--dbname=${db}`);
  if (format === 'custom') return `pg_restore ${dbArg}`;
  return `sh -c 'mkdir -p dump && tar -x -C dump' && pg_restore --jobs=${jobs} ${dbArg} dump`;
}

export function pgDumpOptions(rt: Runtime, db: string, plan: CompressionPlan, snapshot: string | undefined): PgDumpArgsOptions {
  const o = rt.options;
  return {
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
}

function dumpArtifactOptions(rt: Runtime, pre: Preflight, db: string, format: DumpFormat, plan: CompressionPlan): ArtifactOptions {
  return {
    contentType: format === 'custom' ? CUSTOM_DUMP_CONTENT_TYPE : DIRECTORY_DUMP_CONTENT_TYPE,
    compression: plan.codec,
    restoreHint: restoreHintFor(db, format, rt.options.jobs),
    metadata: { kind: 'database', database: db, format, pgDumpVersion: pre.pgDump.version.text },
  };
}

function pgDumpFailure(rt: Runtime, db: string): DumpJob['dumpError'] {
  return (r, stderr) =>
    new BackupError('SOURCE_FAILED', `${rt.name}: pg_dump of database "${db}" ${describeExit(r)}${stderr ? `: ${stderr}` : ''}`, {
      component: rt.name,
      hint: 'the artifact was not stored; fix the cause in the pg_dump message above and run the backup again',
      details: { database: db, exitCode: r.code, signal: r.signal },
    });
}

export interface DumpJobInput {
  rt: Runtime;
  ctx: SourceBackupContext;
  pre: Preflight;
  env: NodeJS.ProcessEnv;
  db: string;
  plan: CompressionPlan;
  snapshot: string | undefined;
}

export function planDump({ rt, ctx, pre, env, db, plan, snapshot }: DumpJobInput): DumpJob {
  const format = chooseDumpFormat(rt.options.jobs);
  return {
    rt,
    ctx,
    pre,
    env,
    db,
    format,
    artifact: dumpArtifactName(db, format),
    artifactOptions: dumpArtifactOptions(rt, pre, db, format, plan),
    codec: plan.codec || undefined,
    dumpArgs: pgDumpOptions(rt, db, plan, snapshot),
    dumpError: pgDumpFailure(rt, db),
  };
}
