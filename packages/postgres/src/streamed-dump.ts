import { once } from 'node:events';
import { Transform, type Duplex, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openProducerArtifact, type ProducerArtifact } from '@scholaria/backup-core';
import { wrapFailure } from './dump-failure.js';
import type { DumpJob, RunningDump } from './dump-plan.js';
import { buildPgDumpArgs } from './pg-dump-args.js';
import { exitGate, spawnTool, type SpawnedTool } from './pg-tools.js';
import { redactText } from './redact.js';

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

interface TocLister {
  lister: SpawnedTool;
  tap: Transform;
  listing: Promise<string | undefined>;
}

/** Starts `pg_restore --list` on the passing stream, when pg_restore is installed. */
function startTocLister(job: DumpJob, decoder: Duplex | undefined): TocLister | undefined {
  if (!job.pre.pgRestore) return undefined;
  const lister = spawnTool(job.pre.pgRestore.path, ['--list'], { env: job.env, stdin: 'pipe' });
  let out = '';
  lister.child.stdout?.setEncoding('utf8');
  lister.child.stdout?.on('data', (d: string) => (out += d));
  const tap = tocTap(lister, decoder);
  const listing = lister.exited.then(
    (r) => (r.code === 0 ? out : undefined),
    () => undefined,
  );
  return { lister, tap, listing };
}

async function openDumpArtifact(job: DumpJob): Promise<ProducerArtifact> {
  const { rt, ctx, codec } = job;
  try {
    return await openProducerArtifact(ctx, job.artifact, {
      artifact: job.artifactOptions,
      ...(codec ? { codec } : {}),
      redact: (text) => redactText(text, rt.secrets()),
    });
  } catch (error) {
    throw wrapFailure(rt, error, ctx.signal);
  }
}

/** Spawns pg_dump writing to stdout, or into the encoder's input pipe when there is one. */
function spawnPgDump(job: DumpJob, args: string[], opened: ProducerArtifact): SpawnedTool {
  const { rt, ctx, pre, env } = job;
  const { sink, encoder } = opened;
  try {
    return spawnTool(pre.pgDump.path, args, { env, signal: ctx.signal, ...(encoder ? { stdout: encoder.input } : {}) });
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
}

function streamHead(tool: SpawnedTool, opened: ProducerArtifact): Readable {
  if (opened.encoder) return opened.encoder.output;
  const stdout = tool.child.stdout;
  if (!stdout) throw new Error('pg_dump was started without a stdout pipe');
  return stdout;
}

/**
 * The custom format, streamed: pg_dump straight into the codec's own program (zstd) through an
 * OS pipe where the codec has one and the engine takes precompressed bytes, so the uncompressed
 * dump never passes through Node, which only hashes and stores the compressed stream; otherwise
 * pg_dump's stdout through the codec in Node.
 */
export async function startStreamedDump(job: DumpJob): Promise<RunningDump> {
  const { rt, ctx, db, codec } = job;
  const args = buildPgDumpArgs({ ...job.dumpArgs, format: 'custom' });
  const opened = await openDumpArtifact(job);
  const { sink, encoder, external } = opened;
  ctx.logger.info('pg_dump started', {
    database: db,
    args,
    ...(encoder && external ? { pipedInto: [external.command, ...external.args].join(' ') } : {}),
  });
  const tool = spawnPgDump(job, args, opened);
  const toc = startTocLister(job, encoder && codec ? codec.decode(codec.describe()) : undefined);
  // Checks pg_dump's exit; the encoder's output checks zstd's (it ends only after zstd exited 0).
  const gate = exitGate(tool, (r) => job.dumpError(r, tool.stderr.text(rt.secrets())));
  const head = streamHead(tool, opened);
  const piped = toc ? pipeline(head, toc.tap, gate, sink, { signal: ctx.signal }) : pipeline(head, gate, sink, { signal: ctx.signal });
  const dumped = piped.catch((error: unknown) => {
    tool.child.kill('SIGTERM');
    encoder?.kill();
    // A dump cut off before its table of contents would leave the lister waiting for input.
    toc?.lister.child.kill('SIGTERM');
    throw wrapFailure(rt, error, ctx.signal);
  });
  return { dumped, listing: toc ? toc.listing : Promise.resolve(undefined) };
}
