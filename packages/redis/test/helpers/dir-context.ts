import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, type Writable } from 'node:stream';
import type {
  ArtifactOptions,
  BackupSource,
  ComponentManifest,
  Logger,
  SourceBackupContext,
  SourceBackupResult,
  SourceRestoreContext,
  SourceRestoreResult,
} from '@scholaria/backup-core';

export interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

export function captureLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface DirBackup {
  result: SourceBackupResult;
  component: ComponentManifest;
  artifacts: Map<string, ArtifactOptions | undefined>;
  logs: LogLine[];
  path(name: string): string;
}

/**
 * Drives a source the way the engine will, over a plain directory: artifacts are files, no
 * codecs, no checksums. Enough to test a source before (and apart from) the engine.
 */
export async function backupToDir(source: BackupSource, dir: string, options: { signal?: AbortSignal } = {}): Promise<DirBackup> {
  const artifacts = new Map<string, ArtifactOptions | undefined>();
  const logs: LogLine[] = [];
  const startedAt = new Date().toISOString();
  const ctx: SourceBackupContext = {
    setId: 'test_20260101_000000',
    tier: 'manual',
    signal: options.signal ?? new AbortController().signal,
    logger: captureLogger(logs),
    artifact(name: string, opts?: ArtifactOptions): Writable {
      artifacts.set(name, opts);
      return createWriteStream(join(dir, name));
    },
    async writeArtifact(name, body, opts) {
      const sink = ctx.artifact(name, opts);
      await pipeline(body instanceof Readable ? body : Readable.from(body), sink);
    },
  };
  const result = await source.backup(ctx);
  const finishedAt = new Date().toISOString();
  const records = await Promise.all(
    [...artifacts].map(async ([name, opts]) => {
      const size = (await stat(join(dir, name))).size;
      return {
        name,
        path: `${source.name}/${name}`,
        size,
        rawSize: size,
        sha256: '0'.repeat(64),
        codecs: [],
        ...(opts?.contentType ? { contentType: opts.contentType } : {}),
        ...(opts?.metadata ? { metadata: opts.metadata } : {}),
      };
    }),
  );
  const component: ComponentManifest = {
    name: source.name,
    status: 'ok',
    startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
    artifacts: records,
    metadata: result.metadata,
    warnings: result.warnings ?? [],
  };
  return { result, component, artifacts, logs, path: (name) => join(dir, name) };
}

export async function restoreFromDir(
  source: BackupSource,
  dir: string,
  component: ComponentManifest,
  options: { dryRun?: boolean; options?: Record<string, unknown>; logs?: LogLine[] } = {},
): Promise<SourceRestoreResult> {
  const ctx: SourceRestoreContext = {
    setId: 'test_20260101_000000',
    signal: new AbortController().signal,
    logger: captureLogger(options.logs ?? []),
    dryRun: options.dryRun ?? false,
    component,
    options: options.options ?? {},
    async open(name: string) {
      return createReadStream(join(dir, name));
    },
  };
  return await source.restore(ctx);
}
