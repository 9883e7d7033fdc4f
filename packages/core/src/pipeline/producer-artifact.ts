import type { Writable } from 'node:stream';
import type { Codec, ExternalEncoder } from '../interfaces/codec.js';
import type { ArtifactOptions, SourceBackupContext } from '../interfaces/source.js';
import { startExternalEncoder, type RunningExternalEncoder } from '../codecs/external-encoder-process.js';
import { parentDeathSignalAvailable } from '../util/parent-death.js';
import type { FileArtifact } from './file-artifact.js';

/**
 * What `openProducerArtifact` opened: where a producing program's bytes go. Exactly one of
 * `sink` and `file` is set.
 */
export interface ProducerArtifact {
  /** The artifact's sink: pipe `encoder.output` into it when there is an encoder, else the producer's bytes. */
  sink?: Writable;
  /**
   * The artifact as a file written by a program (`encoder` is then set). Without
   * `file.input` the encoder writes the file itself (started with it as stdout; its `output`
   * carries no bytes and ends once it exited 0); with `file.input` (an encryption program writes
   * the file) pipe `encoder.output` into `file.input`. Call `file.start()` once the producer
   * runs and `file.finish()` once everything exited successfully; `file.destroy(error)` on failure.
   */
  file?: FileArtifact;
  /**
   * The codec's own program, running, when the fast path applies: give `encoder.input` to the
   * producing child as its stdout (the raw bytes then never pass through Node), call
   * `encoder.releaseInput()` once the child is spawned, and pipe `encoder.output` into `sink`.
   */
  encoder?: RunningExternalEncoder;
  /** The command line of `encoder` (for logs). */
  external?: ExternalEncoder;
}

/**
 * The pipeline's fast paths for sources whose data comes from a program of their own
 * (pg_dump): when the context takes precompressed bytes (`ctx.acceptsPrecompressed`) and
 * `codec` has an external encoder (`Codec.externalEncoder`, e.g. the `zstd` program), the
 * artifact is opened with `precompressed` (the manifest records the codec, suffix and raw size as
 * if the engine had applied it; encryption still applies) and the encoder is started. Where the
 * context can open the artifact as a local file (`ctx.artifactFile`: one fs storage, no
 * encryption), the encoder writes that file itself, as `pg_dump | zstd > file` does, and the
 * engine hashes it by reading it back; otherwise the encoder's output goes through the sink.
 * Without an external encoder the artifact is opened with `compression: codec` and the
 * producer's bytes go through Node. The artifact is opened first, so a refused artifact leaves
 * no child process; if the encoder fails to start, the artifact is destroyed and the error thrown.
 */
export async function openProducerArtifact(
  ctx: SourceBackupContext,
  name: string,
  options: { artifact: ArtifactOptions; codec?: Codec; redact?: (text: string) => string },
): Promise<ProducerArtifact> {
  const { codec } = options;
  const external = codec && ctx.acceptsPrecompressed === true ? await codec.externalEncoder?.() : undefined;
  if (!codec || !external) {
    return { sink: ctx.artifact(name, { ...options.artifact, ...(codec ? { compression: codec } : {}) }) };
  }
  let encoder: RunningExternalEncoder | undefined;
  const { compression: _replaced, ...rest } = options.artifact;
  const artifactOptions: ArtifactOptions = { ...rest, precompressed: { codec, rawSize: () => encoder?.inputBytes() ?? 0 } };
  const file = ctx.artifactFile ? await ctx.artifactFile(name, artifactOptions) : undefined;
  const sink = file ? undefined : ctx.artifact(name, artifactOptions);
  try {
    encoder = await startExternalEncoder(external, {
      signal: ctx.signal,
      ...(options.redact ? { redact: options.redact } : {}),
      // Without encryption zstd writes the file; with it, its output goes to the encrypter's input.
      ...(file && !file.input ? { stdout: file.fd } : {}),
    });
  } catch (error) {
    sink?.destroy(error as Error);
    file?.destroy(error as Error);
    throw error;
  }
  return file ? { file, encoder, external } : { sink: sink!, encoder, external };
}

/**
 * Starts, without waiting, the checks `openProducerArtifact` will wait for: whether the codec's
 * program is installed and usable (`Codec.externalEncoder`), and whether a program writing a
 * file can be tied to this process's life. A source calls it first and overlaps them with its own
 * preparation (connecting, reading versions); each check runs once per process. Nothing is
 * opened, and a failing check is reported by `openProducerArtifact`, not here.
 */
export function prepareProducerArtifact(ctx: SourceBackupContext, codec: Codec | undefined): void {
  if (!codec || ctx.acceptsPrecompressed !== true || !codec.externalEncoder) return;
  void codec.externalEncoder().catch(() => undefined);
  if (ctx.artifactFile) void parentDeathSignalAvailable();
}
