import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createBackupEngine,
  createZstdCodec,
  startExternalEncoder,
  zstdInputBytes,
  type BackupSource,
  type ExternalEncoder,
} from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { backupErrorOf, isProcessRunning, makeTempDir, type TempDir } from '@scholaria/backup-testkit';

const run = promisify(execFile);

/** A producer program writing `bytes` bytes of text, the way pg_dump writes its dump. */
const producerScript = (bytes: number) => `yes 'scholaria chunk text 0123456789' | head -c ${bytes}`;

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const shellEncoder = (script: string): ExternalEncoder => ({
  command: 'sh',
  args: ['-c', script],
  label: 'test compression',
  missingHint: 'install sh',
  failureHint: 'see the message',
  inputBytes: (stderr) => zstdInputBytes(stderr),
});

describe('external encoders (a codec run as its own program, fed by another program)', () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await dir.remove();
  });

  it('the zstd codec describes its program when it reports byte counts, and none when it is missing', async () => {
    const encoder = await createZstdCodec({ level: 5, threads: 2 }).externalEncoder!();
    expect(encoder).toBeDefined();
    expect(encoder!.command).toBe('zstd');
    expect(encoder!.args).toEqual(['-c', '-5', '-T2', '-vv', '--no-progress']);
    expect(await createZstdCodec({ binary: join(dir.path, 'no-such-zstd') }).externalEncoder!()).toBeUndefined();
    expect(zstdInputBytes('/*stdin*\\  :100.00%   (1234567 B => 45 B, /*stdout*\\) ')).toBe(1234567);
    expect(zstdInputBytes('/*stdin*\\  : 3.10%   (  100000 =>   3100 bytes, /*stdout*\\) ')).toBe(100000);
    expect(zstdInputBytes('zstd: error 70 : Write error')).toBeUndefined();
  });

  it('another program writes straight into zstd: the output is standard zstd and the input size is exact', async () => {
    const codec = createZstdCodec();
    const encoder = await startExternalEncoder((await codec.externalEncoder!())!);
    const producer = spawn('sh', ['-c', producerScript(3_000_000)], { stdio: ['ignore', encoder.input, 'inherit'] });
    const producerClosed = new Promise((r) => producer.once('close', r));
    encoder.releaseInput();
    const compressed = await collect(encoder.output);
    await producerClosed;
    expect(encoder.inputBytes()).toBe(3_000_000);
    expect(compressed.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    expect(compressed.length).toBeLessThan(100_000);
    const file = join(dir.path, 'x.zst');
    await writeFile(file, compressed);
    const { stdout } = await run('sh', ['-c', `zstd -d -c < ${file} | wc -c`]);
    expect(Number(stdout.trim())).toBe(3_000_000);
    const decoder = codec.decode(codec.describe());
    const decodedP = collect(decoder);
    decoder.end(compressed);
    const decoded = await decodedP;
    expect(decoded.length).toBe(3_000_000);
  });

  it('an encoder that fails fails its output with its stderr, redacted; a missing one is TOOL_MISSING', async () => {
    const encoder = await startExternalEncoder(shellEncoder('head -c 1000 > /dev/null; echo "boom: token s3cr3t-xyz rejected" >&2; exit 4'), {
      redact: (text) => text.split('s3cr3t-xyz').join('***'),
    });
    const producer = spawn('sh', ['-c', producerScript(5_000_000)], { stdio: ['ignore', encoder.input, 'ignore'] });
    const producerClosed = new Promise((r) => producer.once('close', r));
    encoder.releaseInput();
    const e = await backupErrorOf(collect(encoder.output));
    expect(e.code).toBe('CODEC_FAILED');
    expect(e.message).toBe('test compression failed: sh exited with code 4: boom: token *** rejected');
    await producerClosed;

    const quiet = await startExternalEncoder(shellEncoder('cat'));
    quiet.input.end('x');
    quiet.releaseInput();
    expect((await backupErrorOf(collect(quiet.output))).message).toMatch(/did not report how many bytes it read/);

    const missing = await backupErrorOf(startExternalEncoder({ ...shellEncoder(''), command: join(dir.path, 'nope') }));
    expect(missing.code).toBe('TOOL_MISSING');
    expect(missing.hint).toBe('install sh');
  });

  it('aborting kills the encoder and fails its output', async () => {
    const controller = new AbortController();
    const encoder = await startExternalEncoder((await createZstdCodec().externalEncoder!())!, { signal: controller.signal });
    const producer = spawn('sh', ['-c', 'yes scholaria'], { stdio: ['ignore', encoder.input, 'ignore'] });
    const producerClosed = new Promise((r) => producer.once('close', r));
    encoder.releaseInput();
    const out = collect(encoder.output);
    await new Promise((r) => encoder.output.once('data', r));
    controller.abort();
    const e = await backupErrorOf(out);
    expect(e.message).toMatch(/zstd compression failed: zstd was killed by SIGTERM/);
    await encoder.exited;
    expect(isProcessRunning(encoder.pid)).toBe(false);
    // The producer then meets a closed pipe and stops too.
    await producerClosed;
  });

  it('the engine records a precompressed artifact exactly like one it compressed, and restores it', async () => {
    const codec = createZstdCodec();
    const restored: Buffer[] = [];
    const source: BackupSource = {
      specVersion: 'v1',
      name: 'test',
      async backup(ctx) {
        expect(ctx.acceptsPrecompressed).toBe(true);
        const encoder = await startExternalEncoder((await codec.externalEncoder!())!, { signal: ctx.signal });
        spawn('sh', ['-c', producerScript(2_500_000)], { stdio: ['ignore', encoder.input, 'inherit'] });
        encoder.releaseInput();
        await ctx.writeArtifact('dump.txt', encoder.output, {
          contentType: 'text/plain',
          precompressed: { codec, rawSize: encoder.inputBytes },
          restoreHint: 'wc -c',
        });
        // The same artifact compressed by the engine, for comparison.
        const plain = spawn('sh', ['-c', producerScript(2_500_000)], { stdio: ['ignore', 'pipe', 'inherit'] });
        await ctx.writeArtifact('plain.txt', plain.stdout, { contentType: 'text/plain', compression: codec, restoreHint: 'wc -c' });
        return { metadata: {} };
      },
      async restore(ctx) {
        restored.push(await collect(await ctx.open('dump.txt')));
        return {};
      },
      async check() {
        return { ok: true };
      },
    };
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }) });
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    const [dump, plain] = ['dump.txt', 'plain.txt'].map((n) => result.manifest!.components[0]!.artifacts.find((a) => a.name === n)!);
    expect(dump!.path).toBe('test/dump.txt.zst');
    expect(dump!.codecs).toEqual(plain!.codecs);
    expect(dump!.codecs).toEqual([{ name: 'zstd', params: { level: 3 } }]);
    expect(dump!.rawSize).toBe(2_500_000);
    expect(dump!.rawSize).toBe(plain!.rawSize);
    expect(dump!.manualRestore).toBe('zstd -d < test/dump.txt.zst | wc -c');
    const file = join(dir.path, result.setId, 'test', 'dump.txt.zst');
    expect(createHash('sha256').update(await readFile(file)).digest('hex')).toBe(dump!.sha256);
    const { stdout } = await run('sh', ['-c', `zstd -d < ${file} | wc -c`]);
    expect(Number(stdout.trim())).toBe(2_500_000);

    const res = await engine.restore({ ref: 'latest' });
    expect(res.status).toBe('ok');
    expect(restored[0]!.length).toBe(2_500_000);
    expect(restored[0]!.subarray(0, 10).toString()).toBe('scholaria ');
    await engine.close();
  });

  it('refuses an encryption codec as precompressed', async () => {
    const source: BackupSource = {
      specVersion: 'v1',
      name: 'test',
      async backup(ctx) {
        const fake = { ...createZstdCodec(), kind: 'encryption' as const, name: 'fake' };
        ctx.artifact('x', { precompressed: { codec: fake, rawSize: () => 0 } });
        return { metadata: {} };
      },
      async restore() {
        return {};
      },
      async check() {
        return { ok: true };
      },
    };
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }) });
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('failed');
    expect(result.components[0]!.error?.message).toMatch(/only a compression codec can be applied by the source/);
    expect(result.manifest).toBeUndefined();
    await engine.close();
  });
});
