import { createCipheriv, createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupSource, SourceBackupContext, SourceRestoreContext } from '@scholaria/backup-core';

export interface TestSourceOptions {
  name?: string;
  /** Small artifacts kept in memory: name -> content. */
  files?: Record<string, string | Buffer>;
  /** Large artifacts generated on the fly (never held in memory): name -> byte count. */
  generated?: Record<string, number>;
  /** Pause between generated chunks, to give tests time to kill or abort mid-stream. */
  chunkDelayMs?: number;
  /** Make backup fail: before writing, or after this many bytes of the first generated artifact. */
  failBackup?: boolean | { afterBytes: number; message?: string };
  /** Make restore fail with this message. */
  failRestore?: string;
  /** Passed into check(). */
  healthy?: boolean;
}

export interface TestSource extends BackupSource {
  /** The "live data": what a restore overwrites. */
  readonly data: Map<string, Buffer>;
  /** Generated artifacts received by restore: name -> { sha256, size }. */
  readonly received: Map<string, { sha256: string; size: number }>;
  readonly calls: { backup: number; restore: number; dryRun: number };
  /** sha256/size of what `generated` produces for a name. */
  expectedDigest(name: string): { sha256: string; size: number };
}

function generatedChunk(name: string, index: number): Buffer {
  // Deterministic, incompressible bytes: an AES-CTR keystream keyed by name and chunk index
  // (fast enough that tests measure the pipeline, not the generator).
  const key = createHash('sha256').update(name).digest().subarray(0, 16);
  const iv = createHash('sha256').update(`chunk:${index}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(64 * 1024));
}

function* generate(name: string, bytes: number): Generator<Buffer> {
  let left = bytes;
  for (let i = 0; left > 0; i++) {
    const chunk = generatedChunk(name, i);
    yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= chunk.length;
  }
}

/** An in-process BackupSource for engine tests: its "target" is a Map in memory. */
export function createTestSource(options: TestSourceOptions = {}): TestSource {
  const name = options.name ?? 'test';
  const data = new Map<string, Buffer>(
    Object.entries(options.files ?? { 'data.txt': 'hello from the test source\n' }).map(([k, v]) => [k, Buffer.from(v)]),
  );
  const received = new Map<string, { sha256: string; size: number }>();
  const calls = { backup: 0, restore: 0, dryRun: 0 };
  const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function* slowGenerate(artifact: string, bytes: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    let sent = 0;
    const fail = typeof options.failBackup === 'object' ? options.failBackup : undefined;
    for (const chunk of generate(artifact, bytes)) {
      if (signal.aborted) throw new Error('aborted');
      if (fail && sent + chunk.length > fail.afterBytes) throw new Error(fail.message ?? `test source failed after ${sent} bytes`);
      if (options.chunkDelayMs) await delay(options.chunkDelayMs);
      sent += chunk.length;
      yield chunk;
    }
  }

  return {
    specVersion: 'v1',
    name,
    data,
    received,
    calls,
    expectedDigest(artifact) {
      const hash = createHash('sha256');
      let size = 0;
      for (const chunk of generate(artifact, options.generated?.[artifact] ?? 0)) {
        hash.update(chunk);
        size += chunk.length;
      }
      return { sha256: hash.digest('hex'), size };
    },
    async backup(ctx: SourceBackupContext) {
      calls.backup++;
      if (options.failBackup === true) throw new Error('test source: backup failed on purpose');
      for (const [file, content] of data) {
        await ctx.writeArtifact(file, Readable.from([content]), { contentType: 'application/octet-stream', restoreHint: `cat > ${file}` });
      }
      for (const [artifact, bytes] of Object.entries(options.generated ?? {})) {
        await ctx.writeArtifact(artifact, slowGenerate(artifact, bytes, ctx.signal), { contentType: 'application/octet-stream' });
      }
      return { metadata: { files: data.size, generated: Object.keys(options.generated ?? {}).length } };
    },
    async restore(ctx: SourceRestoreContext) {
      if (ctx.dryRun) {
        calls.dryRun++;
        return { plan: ctx.component.artifacts.map((a) => `would restore ${a.name} (${a.rawSize} bytes)`) };
      }
      calls.restore++;
      if (options.failRestore) throw new Error(options.failRestore);
      const restored = new Map<string, Buffer>();
      for (const artifact of ctx.component.artifacts) {
        const stream = await ctx.open(artifact.name);
        if (options.generated?.[artifact.name] !== undefined) {
          const hash = createHash('sha256');
          let size = 0;
          await pipeline(
            stream,
            new Writable({
              write(chunk: Buffer, _e, cb) {
                hash.update(chunk);
                size += chunk.length;
                cb();
              },
            }),
          );
          received.set(artifact.name, { sha256: hash.digest('hex'), size });
        } else {
          const chunks: Buffer[] = [];
          for await (const chunk of stream) chunks.push(chunk as Buffer);
          restored.set(artifact.name, Buffer.concat(chunks));
        }
      }
      // Replace the live data only once every artifact was read completely.
      data.clear();
      for (const [k, v] of restored) data.set(k, v);
      return { plan: [...restored.keys()].map((k) => `restored ${k}`) };
    },
    async check() {
      return options.healthy === false ? { ok: false, problems: ['test source: unhealthy on purpose'] } : { ok: true, details: { files: data.size } };
    },
  };
}
