import type { Writable } from 'node:stream';
import type { Codec, ExternalEncoder } from '../interfaces/codec.js';
import type { ArtifactOptions, SourceBackupContext } from '../interfaces/source.js';
import { startExternalEncoder, type RunningExternalEncoder } from '../codecs/external-encoder-process.js';

/** What `openProducerArtifact` opened: where a producing program's bytes go. */
export interface ProducerArtifact {
  /** The artifact's sink: pipe `encoder.output` into it when there is an encoder, else the producer's bytes. */
  sink: Writable;
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
 * The pipeline's one fast path for sources whose data comes from a program of their own
 * (pg_dump): when the context takes precompressed bytes (`ctx.acceptsPrecompressed`) and
 * `codec` has an external encoder (`Codec.externalEncoder`, e.g. the `zstd` program), the
 * artifact is opened with `precompressed` (the manifest records the codec, suffix and raw size as
 * if the engine had applied it; encryption still applies) and the encoder is started. Otherwise
 * the artifact is opened with `compression: codec` and the producer's bytes go through Node.
 * The sink is opened first, so a refused artifact leaves no child process; if the encoder fails
 * to start, the sink is destroyed and the error thrown.
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
  const sink = ctx.artifact(name, { ...rest, precompressed: { codec, rawSize: () => encoder?.inputBytes() ?? 0 } });
  try {
    encoder = await startExternalEncoder(external, { signal: ctx.signal, ...(options.redact ? { redact: options.redact } : {}) });
  } catch (error) {
    sink.destroy(error as Error);
    throw error;
  }
  return { sink, encoder, external };
}
