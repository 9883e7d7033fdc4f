import { PassThrough, Writable, pipeline as pipelineCb, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Codec } from '../interfaces/codec.js';
import type { Storage } from '../interfaces/storage.js';
import type { ArtifactRecord } from '../manifest/manifest-schema.js';
import { BackupError, wrapError } from '../errors/backup-error.js';
import { VerifyStream } from './hash-stream.js';

export interface OpenArtifactParams {
  storage: Storage;
  setId: string;
  artifact: ArtifactRecord;
  /** One decoder per codec record, in the order the codecs were applied on backup. */
  decoders: Codec[];
  signal?: AbortSignal;
  onBytes?: (bytes: number) => void;
}

/**
 * Reads a stored artifact with its codecs undone. The stream errors (instead of ending) when
 * the stored bytes do not match the manifest's size and SHA-256.
 */
export async function openArtifact(params: OpenArtifactParams & { checkOnly?: boolean }): Promise<Readable> {
  const { storage, setId, artifact } = params;
  const source = await storage.get(`${setId}/${artifact.path}`, params.signal ? { signal: params.signal } : {});
  const verify = new VerifyStream({ sha256: artifact.sha256, size: artifact.size, path: artifact.path }, params.onBytes);
  // checkOnly: the output is discarded, so the last decoding step may only check (zstd -t).
  const decoders = artifact.codecs
    .map((record, i) => {
      const codec = params.decoders[i]!;
      return i === 0 && params.checkOnly && codec.check ? codec.check(record) : codec.decode(record);
    })
    .reverse();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  pipelineCb([source, verify, ...decoders, out] as unknown as [Readable, PassThrough], (error) => {
    if (error && !out.destroyed) out.destroy(error);
  });
  return out;
}

/** Reads an artifact fully (hash and decode) and discards the output. */
export async function drainArtifact(params: OpenArtifactParams): Promise<void> {
  const stream = await openArtifact({ ...params, checkOnly: true });
  await pipeline(
    stream,
    new Writable({
      highWaterMark: 1 << 20,
      write(_chunk, _enc, cb) {
        cb();
      },
    }),
    params.signal ? { signal: params.signal } : {},
  );
}

/**
 * Picks, for each codec of an artifact, a decoder that can read it: with several candidates
 * of one name (age with old and new identities) each is tried by a full read until one works.
 */
export async function chooseDecoders(
  params: Omit<OpenArtifactParams, 'decoders'> & { candidates: (name: string) => Codec[] },
): Promise<Codec[]> {
  const options = params.artifact.codecs.map((record) => {
    const found = params.candidates(record.name);
    if (found.length === 0) {
      throw new BackupError('CODEC_FAILED', `${params.artifact.path} needs the "${record.name}" codec, which is not configured`, {
        hint: `Add the ${record.name} codec (with the key that can read this set) to the engine's codecs or decoders.`,
      });
    }
    return found;
  });
  // Try combinations in order; in practice only one codec (age) has several candidates.
  const combos: Codec[][] = [[]];
  for (const list of options) {
    const next: Codec[][] = [];
    for (const combo of combos) for (const codec of list) next.push([...combo, codec]);
    combos.splice(0, combos.length, ...next);
  }
  let lastError: unknown;
  for (const decoders of combos) {
    try {
      await drainArtifact({ ...params, decoders });
      return decoders;
    } catch (error) {
      lastError = error;
      if (BackupError.isInstance(error) && error.code === 'CHECKSUM_MISMATCH') throw error;
    }
  }
  throw wrapError(lastError, 'CODEC_FAILED', `${params.artifact.path} cannot be decoded`);
}
