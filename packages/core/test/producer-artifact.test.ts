import { spawn } from 'node:child_process';
import { PassThrough, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  createGzipCodec,
  createZstdCodec,
  openProducerArtifact,
  prepareProducerArtifact,
  silentLogger,
  type ArtifactOptions,
  type SourceBackupContext,
} from '../src/index.js';

/** A backup context that records what the source asked for, and collects the bytes. */
function fakeContext(acceptsPrecompressed: boolean) {
  const opened: { name: string; options: ArtifactOptions | undefined; bytes: Buffer[] }[] = [];
  const ctx: SourceBackupContext = {
    setId: 's',
    tier: 'daily',
    signal: new AbortController().signal,
    logger: silentLogger,
    acceptsPrecompressed,
    artifact(name, options): Writable {
      const entry = { name, options, bytes: [] as Buffer[] };
      opened.push(entry);
      const sink = new PassThrough();
      sink.on('data', (d: Buffer) => entry.bytes.push(d));
      return sink;
    },
    async writeArtifact() {
      throw new Error('not used');
    },
  };
  return { ctx, opened };
}

describe('openProducerArtifact: the pipeline fast path for a producing program', () => {
  it('pipes the producer straight into the codec program when the context takes precompressed bytes', async () => {
    const { ctx, opened } = fakeContext(true);
    const codec = createZstdCodec();
    const { sink, encoder, external } = await openProducerArtifact(ctx, 'db.dump', { artifact: { contentType: 'x', compression: codec }, codec });
    expect(encoder, 'the zstd program is installed here').toBeDefined();
    expect(external!.command).toBe('zstd');
    expect(opened[0]!.options!.compression).toBeUndefined();
    expect(opened[0]!.options!.precompressed!.codec).toBe(codec);
    const producer = spawn('sh', ['-c', "yes 'row 0123456789' | head -c 200000"], { stdio: ['ignore', encoder!.input, 'inherit'] });
    // Listen before anything can finish: a 'close' that already happened never fires again.
    const producerClosed = new Promise((r) => producer.once('close', r));
    encoder!.releaseInput();
    await pipeline(encoder!.output, sink!);
    await producerClosed;
    expect(opened[0]!.options!.precompressed!.rawSize()).toBe(200_000);
    expect(Buffer.concat(opened[0]!.bytes).subarray(0, 4).toString('hex')).toBe('28b52ffd');
  });

  it('falls back to compression through Node when the context or the codec cannot take the fast path', async () => {
    for (const [accepts, codec] of [
      [false, createZstdCodec()],
      [true, createGzipCodec()],
    ] as const) {
      const { ctx, opened } = fakeContext(accepts);
      const result = await openProducerArtifact(ctx, 'db.dump', { artifact: { contentType: 'x' }, codec });
      expect(result.encoder).toBeUndefined();
      expect(opened[0]!.options).toEqual({ contentType: 'x', compression: codec });
    }
    const { ctx, opened } = fakeContext(true);
    await openProducerArtifact(ctx, 'plain', { artifact: { compression: false } });
    expect(opened[0]!.options).toEqual({ compression: false });
  });

  it('prepareProducerArtifact starts the codec\'s checks early, opens nothing, and leaves a failing check to the open', async () => {
    let checks = 0;
    const failing = {
      ...createZstdCodec(),
      externalEncoder: () => {
        checks++;
        return Promise.reject(new Error('zstd check failed'));
      },
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const refusing = fakeContext(false);
      prepareProducerArtifact(refusing.ctx, failing);
      prepareProducerArtifact(refusing.ctx, undefined);
      expect(checks, 'no fast path, no check').toBe(0);
      const { ctx, opened } = fakeContext(true);
      prepareProducerArtifact(ctx, failing);
      expect(checks).toBe(1);
      expect(opened).toEqual([]);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      await expect(openProducerArtifact(ctx, 'db.dump', { artifact: {}, codec: failing })).rejects.toThrow(/zstd check failed/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
