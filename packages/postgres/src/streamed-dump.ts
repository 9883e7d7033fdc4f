import { once } from 'node:events';
import { Transform, type Duplex, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { openProducerArtifact, type ProducerArtifact } from '@scholaria/backup-core';
import { wrapFailure } from './dump-failure.js';
import type { DumpJob, RunningDump } from './dump-plan.js';
import { buildPgDumpArgs } from './pg-dump-args.js';
import { exitGate, spawnTool, type SpawnedTool } from './pg-tools.js';
import { redactText } from './redact.js';

/** Where the head of the dump goes: `write` takes the next block, false once no more is wanted. */
interface HeadFeed {
  write(chunk: Buffer): boolean | Promise<boolean>;
  /** The dump ended: closes the lister's input if it is still open. */
  end(): void;
  /** The dump failed: stops the decoder. */
  abort(): void;
}

/**
 * Feeds the head of the dump to `pg_restore --list`, which reads the table of contents and
 * exits. The listing names the tables whose data is in this very dump (whatever the filters
 * matched), so the row counts cover exactly those. When the stream is already compressed (pg_dump
 * piped straight into the zstd program), `decoder` undoes that first; it runs only until the
 * lister has what it needs.
 */
function headFeed(lister: SpawnedTool, decoder?: Duplex): HeadFeed {
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
  return {
    write(chunk) {
      if (!open) return false;
      if (input.write(chunk)) return true;
      return Promise.race([once(input, 'drain').catch(() => undefined), closed]).then(() => open);
    },
    end() {
      if (open) input.end();
    },
    abort() {
      decoder?.destroy();
    },
  };
}

/** The head feed as a pass-through stage of the dump's stream. */
function tocTap(feed: HeadFeed): Transform {
  let feeding = true;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!feeding) return cb(null, chunk);
      const more = feed.write(chunk);
      if (typeof more === 'boolean') {
        feeding = more;
        return cb(null, chunk);
      }
      void more.then((m) => {
        feeding = m;
        cb(null, chunk);
      });
    },
    flush(cb: TransformCallback) {
      feed.end();
      cb();
    },
    destroy(error, cb) {
      // pipeline() destroys its streams once done too; the decoder may still be feeding the
      // lister the end of a small dump then, and stops by itself when the lister exits.
      if (error) feed.abort();
      cb(error);
    },
  });
}

interface TocLister {
  lister: SpawnedTool;
  feed: HeadFeed;
  listing: Promise<string | undefined>;
}

/** Starts `pg_restore --list` on the passing stream, when pg_restore is installed. */
function startTocLister(job: DumpJob, decoder: Duplex | undefined): TocLister | undefined {
  if (!job.pre.pgRestore) return undefined;
  const lister = spawnTool(job.pre.pgRestore.path, ['--list'], { env: job.env, stdin: 'pipe' });
  let out = '';
  lister.child.stdout?.setEncoding('utf8');
  lister.child.stdout?.on('data', (d: string) => (out += d));
  const feed = headFeed(lister, decoder);
  const listing = lister.exited.then(
    (r) => (r.code === 0 ? out : undefined),
    () => undefined,
  );
  return { lister, feed, listing };
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
  const { sink, file, encoder } = opened;
  try {
    return spawnTool(pre.pgDump.path, args, { env, signal: ctx.signal, ...(encoder ? { stdout: encoder.input } : {}) });
  } catch (error) {
    encoder?.kill();
    const failure = wrapFailure(rt, error, ctx.signal);
    sink?.destroy(failure);
    file?.destroy(failure);
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
 * dump never passes through Node. On a single fs storage zstd then writes the artifact's file
 * itself (the shell's `pg_dump | zstd > file`), or the age program does when the age codec
 * encrypts (zstd's output then passes through Node into it), and the engine hashes the file by
 * reading it back; otherwise Node hashes and stores zstd's output as it streams, or, without the
 * zstd program, pg_dump's stdout goes through the codec in Node.
 */
export async function startStreamedDump(job: DumpJob): Promise<RunningDump> {
  const { rt, ctx, db, codec } = job;
  const args = buildPgDumpArgs({ ...job.dumpArgs, format: 'custom' });
  const opened = await openDumpArtifact(job);
  const { sink, file, encoder, external } = opened;
  ctx.logger.info('pg_dump started', {
    database: db,
    args,
    ...(encoder && external ? { pipedInto: [external.command, ...external.args].join(' ') } : {}),
    ...(file ? { writesFile: true } : {}),
  });
  const tool = spawnPgDump(job, args, opened);
  const toc = startTocLister(job, encoder && codec ? codec.decode(codec.describe()) : undefined);
  const stopAll = () => {
    tool.child.kill('SIGTERM');
    encoder?.kill();
    // A dump cut off before its table of contents would leave the lister waiting for input.
    toc?.lister.child.kill('SIGTERM');
  };
  if (file && encoder) {
    const input = file.input;
    // The file holds zstd's output (the head the lister reads) unless an encryption program
    // writes it; then zstd's output passes through Node into that program, past the lister.
    file.start(toc && !input ? (chunk) => toc.feed.write(chunk) : undefined);
    const dumped = (async () => {
      const dumpExit = tool.exited.then((r) => {
        if (r.code !== 0) throw job.dumpError(r, tool.stderr.text(rt.secrets()));
      });
      // The encoder's output ends only after zstd exited 0 and said how much it read (without
      // an encrypter it carries no bytes). When zstd fails, pg_dump dies of the broken pipe:
      // zstd's error says why.
      const encoding = input
        ? toc
          ? pipeline(encoder.output, tocTap(toc.feed), input, { signal: ctx.signal })
          : pipeline(encoder.output, input, { signal: ctx.signal })
        : finished(encoder.output.resume());
      const [encoded, dumpedOk] = await Promise.allSettled([encoding, dumpExit]);
      // A broken pipe into the encryption program: the program's exit says why it stopped.
      if (encoded.status === 'rejected') throw (await file.inputFailure()) ?? encoded.reason;
      if (dumpedOk.status === 'rejected') throw dumpedOk.reason;
      await file.finish();
      toc?.feed.end();
    })().catch((error: unknown) => {
      stopAll();
      toc?.feed.abort();
      const failure = wrapFailure(rt, error, ctx.signal);
      file.destroy(failure);
      throw failure;
    });
    return { dumped, listing: toc ? toc.listing : Promise.resolve(undefined) };
  }
  if (!sink) throw new Error('openProducerArtifact returned neither a sink nor a file');
  // Checks pg_dump's exit; the encoder's output checks zstd's (it ends only after zstd exited 0).
  const gate = exitGate(tool, (r) => job.dumpError(r, tool.stderr.text(rt.secrets())));
  const head = streamHead(tool, opened);
  const piped = toc ? pipeline(head, tocTap(toc.feed), gate, sink, { signal: ctx.signal }) : pipeline(head, gate, sink, { signal: ctx.signal });
  const dumped = piped.catch((error: unknown) => {
    stopAll();
    throw wrapFailure(rt, error, ctx.signal);
  });
  return { dumped, listing: toc ? toc.listing : Promise.resolve(undefined) };
}
