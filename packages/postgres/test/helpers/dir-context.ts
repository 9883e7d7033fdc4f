import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  silentLogger,
  type ArtifactOptions,
  type ArtifactRecord,
  type Codec,
  type ComponentManifest,
  type SourceBackupContext,
  type SourceBackupResult,
  type SourceRestoreContext,
} from '@scholaria/backup-core';

interface Stored {
  record: ArtifactRecord;
  file: string;
  codec: Codec | undefined;
}

export interface DirBackupContext {
  ctx: SourceBackupContext;
  /** Artifacts stored so far (only those whose sink finished cleanly). */
  stored: Map<string, Stored>;
  /** Names of artifacts whose sink was destroyed with an error. */
  failed: string[];
  /** Bytes written so far to each artifact's sink (before the codecs this context applies). */
  written: Map<string, number>;
  /** The first bytes each sink received (compressed already when the source sent precompressed bytes). */
  heads: Map<string, Buffer>;
  component(result: SourceBackupResult): ComponentManifest;
}

export interface DirContextOptions {
  setId?: string;
  signal?: AbortSignal;
  /** Milliseconds to wait per chunk, to make a slow storage. */
  slowMs?: number;
  /** Whether the context takes precompressed bytes, as the engine does (default true). */
  acceptsPrecompressed?: boolean;
}

/**
 * A stand-in for the engine over a folder: each artifact goes through its compression codec
 * into a temp file that is renamed only when the sink finishes, as the engine's storage does.
 */
export function createDirBackupContext(dir: string, options: DirContextOptions = {}): DirBackupContext {
  const stored = new Map<string, Stored>();
  const failed: string[] = [];
  const written = new Map<string, number>();
  const heads = new Map<string, Buffer>();
  const startedAt = new Date().toISOString();
  const setId = options.setId ?? 'test_20260101_020000';

  function artifact(name: string, opts: ArtifactOptions = {}): Writable {
    // Like the engine: a precompressed codec is recorded but not applied again.
    const codec = opts.precompressed ? opts.precompressed.codec : opts.compression ? opts.compression : undefined;
    const final = join(dir, `${name.replace(/\//g, '_')}${codec ? codec.extension : ''}`);
    const temp = `${final}.partial`;
    const encoder = codec && !opts.precompressed ? codec.encode() : new PassThrough();
    const hash = createHash('sha256');
    let size = 0;
    let rawSize = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    const done = (async () => {
      await mkdir(dir, { recursive: true });
      await pipeline(encoder, counter, createWriteStream(temp, { mode: 0o600 }));
    })();
    done.catch(() => undefined);
    return new Writable({
      write(chunk: Buffer, _e, cb) {
        if (rawSize < 16) heads.set(name, Buffer.concat([heads.get(name) ?? Buffer.alloc(0), chunk]).subarray(0, 16));
        rawSize += chunk.length;
        written.set(name, rawSize);
        const go = () => (encoder.write(chunk) ? cb() : encoder.once('drain', () => cb()));
        if (options.slowMs) setTimeout(go, options.slowMs);
        else go();
      },
      final(cb) {
        encoder.end();
        done.then(async () => {
          await rename(temp, final);
          stored.set(name, {
            file: final,
            codec,
            record: {
              name,
              path: `postgres/${name}${codec ? codec.extension : ''}`,
              size,
              sha256: hash.digest('hex'),
              rawSize: opts.precompressed ? opts.precompressed.rawSize() : rawSize,
              codecs: codec ? [codec.describe()] : [],
              ...(opts.contentType ? { contentType: opts.contentType } : {}),
              ...(opts.restoreHint ? { manualRestore: `${codec ? `${codec.manualDecode} < X | ` : ''}${opts.restoreHint}` } : {}),
              ...(opts.metadata ? { metadata: opts.metadata } : {}),
            },
          });
          cb();
        }, cb);
      },
      destroy(error, cb) {
        if (error) failed.push(name);
        encoder.destroy(error ?? undefined);
        void rm(temp, { force: true }).finally(() => cb(error));
      },
    });
  }

  const ctx: SourceBackupContext = {
    setId,
    tier: 'daily',
    signal: options.signal ?? new AbortController().signal,
    logger: silentLogger,
    artifact,
    acceptsPrecompressed: options.acceptsPrecompressed ?? true,
    async writeArtifact(name, body, opts) {
      const src = body instanceof Readable ? body : Readable.from(body);
      await pipeline(src, artifact(name, opts));
    },
  };
  return {
    ctx,
    stored,
    failed,
    written,
    heads,
    component(result) {
      return {
        name: 'postgres',
        status: 'ok',
        startedAt,
        finishedAt: new Date().toISOString(),
        durationMs: 1,
        artifacts: [...stored.values()].map((s) => s.record),
        metadata: result.metadata,
        warnings: result.warnings ?? [],
      };
    },
  };
}

/** The restore side of the stand-in: open() undoes the codec and checks the sha256 at the end. */
export function createDirRestoreContext(
  backup: DirBackupContext,
  component: ComponentManifest,
  o: { dryRun?: boolean; options?: Record<string, unknown>; signal?: AbortSignal } = {},
): SourceRestoreContext & { opened: string[] } {
  const opened: string[] = [];
  return {
    setId: backup.ctx.setId,
    signal: o.signal ?? new AbortController().signal,
    logger: silentLogger,
    dryRun: o.dryRun ?? false,
    component,
    options: o.options ?? {},
    opened,
    async open(name: string) {
      const s = backup.stored.get(name);
      if (!s) throw new Error(`no artifact ${name}`);
      await stat(s.file);
      opened.push(name);
      const hash = createHash('sha256');
      const check = new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
        flush(cb) {
          const got = hash.digest('hex');
          cb(got === s.record.sha256 ? null : new Error(`checksum mismatch for ${name}`));
        },
      });
      const out = new PassThrough();
      const stages: NodeJS.ReadWriteStream[] = [check];
      if (s.codec) stages.push(s.codec.decode(s.codec.describe()));
      void (pipeline as (...a: unknown[]) => Promise<void>)(createReadStream(s.file), ...stages, out).catch((e: Error) => out.destroy(e));
      return out;
    },
  };
}
