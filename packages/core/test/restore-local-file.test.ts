import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  createBackupEngine,
  createGzipCodec,
  createZstdCodec,
  BackupError,
  type BackupSource,
  type SourceRestoreContext,
  type Storage,
} from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { makeTempDir, type TempDir } from '@scholaria/backup-testkit';

const CONTENT = Buffer.from('x'.repeat(5 * 1024 * 1024 + 123) + 'end\n');

/** A source that stores one artifact and, on restore, runs `onRestore` with the context. */
function fileSource(onRestore: (ctx: SourceRestoreContext) => Promise<void>): BackupSource {
  return {
    specVersion: 'v1',
    name: 'files',
    async backup(ctx) {
      // No compression option: the engine's codecs (if any) apply.
      await ctx.writeArtifact('data.bin', Readable.from([CONTENT]));
      return { metadata: {} };
    },
    async restore(ctx) {
      await onRestore(ctx);
      return { plan: ['restored'] };
    },
    async check() {
      return { ok: true };
    },
  };
}

/** The same storage without the localFiles capability (as an object store would be). */
function withoutLocalPath(storage: Storage): Storage {
  const { localFiles: _drop, ...capabilities } = storage.capabilities ?? {};
  return { ...storage, capabilities };
}

describe('restore: verified local files (ctx.localFile)', () => {
  let temp: TempDir;
  beforeEach(async () => {
    temp = await makeTempDir('scholaria-core-localfile-');
  });
  afterEach(async () => {
    await temp.remove();
  });

  async function backedUp(options: { codecs?: boolean } = {}) {
    const root = join(temp.path, 'backup');
    const seen: { local?: Awaited<ReturnType<NonNullable<SourceRestoreContext['localFile']>>> | undefined; content?: Buffer; error?: unknown }[] = [];
    let onRestore = async (ctx: SourceRestoreContext) => {
      const local = await ctx.localFile?.('data.bin');
      try {
        seen.push({ local, content: local ? readFileSync(local.fd) : undefined });
      } finally {
        await local?.close();
      }
    };
    const source = fileSource((ctx) => onRestore(ctx));
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root }), ...(options.codecs ? { codecs: [createGzipCodec()] } : {}) });
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    const artifact = result.manifest!.components[0]!.artifacts[0]!;
    return {
      engine,
      root,
      file: join(root, result.setId, artifact.path),
      seen,
      setRestore: (f: typeof onRestore) => (onRestore = f),
    };
  }

  it('hands the source the verified file when the storage is local and no codec applies', async () => {
    const { engine, file, seen } = await backedUp();
    const res = await engine.restore({ ref: 'latest' });
    expect(res.status).toBe('ok');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.local).toMatchObject({ path: file, size: CONTENT.length });
    expect(seen[0]!.content!.equals(CONTENT)).toBe(true);
    await engine.close();
  });

  it('gives no local file for a coded artifact or a storage without localPath', async () => {
    const coded = await backedUp({ codecs: true });
    expect((await coded.engine.restore({ ref: 'latest' })).status).toBe('ok');
    expect(coded.seen).toEqual([{ local: undefined, content: undefined }]);
    await coded.engine.close();

    const seen: unknown[] = [];
    const remote = createBackupEngine({
      sources: [fileSource(async (ctx) => void seen.push(await ctx.localFile?.('data.bin')))],
      storage: withoutLocalPath(createFsStorage({ root: join(temp.path, 'remote') })),
    });
    expect((await remote.backup({ tier: 'daily' })).status).toBe('complete');
    expect((await remote.restore({ ref: 'latest' })).status).toBe('ok');
    expect(seen).toEqual([undefined]);
    await remote.close();
  });

  it('refuses a corrupted local file before the source runs', async () => {
    const { engine, file, seen } = await backedUp();
    const bytes = await readFile(file);
    bytes[1000] = bytes[1000]! ^ 0xff;
    await writeFile(file, bytes);
    const res = await engine.restore({ ref: 'latest' });
    expect(res.status).toBe('failed');
    expect(res.verified).toEqual([expect.objectContaining({ ok: false, code: 'CHECKSUM_MISMATCH' })]);
    expect(seen).toEqual([]);
    await engine.close();
  });

  it('refuses the file when it was replaced or rewritten after verification', async () => {
    for (const change of ['rewrite', 'replace'] as const) {
      const { engine, file, setRestore } = await backedUp();
      let error: unknown;
      setRestore(async (ctx) => {
        // Same bytes, so only the identity check (inode, mtime, ctime) can notice.
        if (change === 'rewrite') await writeFile(file, CONTENT);
        else {
          await writeFile(`${file}.new`, CONTENT);
          await rename(`${file}.new`, file);
        }
        try {
          await ctx.localFile?.('data.bin');
        } catch (e) {
          error = e;
          throw e;
        }
      });
      const res = await engine.restore({ ref: 'latest' });
      expect(res.status).toBe('failed');
      expect(BackupError.isInstance(error) && error.code).toBe('CHECKSUM_MISMATCH');
      expect((error as Error).message).toMatch(/changed after it was verified/);
      await engine.close();
      await temp.remove();
      temp = await makeTempDir('scholaria-core-localfile-');
    }
  });

  it('the verify pass still decodes a zstd artifact in full (zstd -t): damaged data behind a matching sha256 is refused', async () => {
    const root = join(temp.path, 'zstd');
    let restored = 0;
    const zstd = createZstdCodec({ implementation: 'binary' });
    const engine = createBackupEngine({
      sources: [fileSource(async () => void restored++)],
      storage: createFsStorage({ root }),
      codecs: [zstd],
    });
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    expect((await engine.restore({ ref: 'latest' })).status).toBe('ok');
    expect(restored).toBe(1);

    // A cut-off zstd stream, recorded as if the backup had stored it: only decoding can notice.
    const artifact = result.manifest!.components[0]!.artifacts[0]!;
    const file = join(root, result.setId, artifact.path);
    const whole = await readFile(file);
    const cut = whole.subarray(0, whole.length >> 1);
    await writeFile(file, cut);
    const manifestPath = join(root, result.setId, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    const cutSha = createHash('sha256').update(cut).digest('hex');
    Object.assign(manifest.components[0].artifacts[0], { size: cut.length, sha256: cutSha });
    await writeFile(manifestPath, JSON.stringify(manifest));
    // SHA256SUMS rewritten too (restore checks that it agrees with the manifest).
    const sumsPath = join(root, result.setId, 'SHA256SUMS');
    await writeFile(sumsPath, (await readFile(sumsPath, 'utf8')).replace(artifact.sha256, cutSha));

    const res = await engine.restore({ ref: 'latest' });
    expect(res.status).toBe('failed');
    expect(res.verified).toEqual([expect.objectContaining({ ok: false, code: 'CODEC_FAILED' })]);
    expect(restored).toBe(1);
    await engine.close();
  });
});
