import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupError, formatSha256Sums } from '@scholaria/backup-core';
import { createFsStorage, fsStorageOptionsSchema, type FsStorage } from '@scholaria/backup-fs';
import { backupErrorOf, makeTempDir, storageConformance, type TempDir } from '@scholaria/backup-testkit';
import { fsFailure } from '../src/fs-errors.js';

storageConformance({
  name: 'fs',
  create: async () => {
    const dir = await makeTempDir();
    return { storage: createFsStorage({ root: `${dir.path}/root` }), cleanup: dir.remove };
  },
});

const execFileAsync = promisify(execFile);
const body = (...chunks: (Buffer | string)[]) =>
  Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)), { objectMode: false });
const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;

/** Every entry under `dir`, relative, directories with a trailing '/'. Sees temp files too. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name));
    out.push(entry.isDirectory() ? `${rel}/` : rel);
  }
  return out.sort();
}

/** A body that sends `bytes` and then fails, like a dump that dies half-way. */
function failingBody(bytes: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(randomBytes(bytes));
      } else {
        this.destroy(new Error('pg_dump exited with code 1'));
      }
    },
  });
}

/**
 * Runs `fn` with the effective uid of `nobody` when the tests run as root: root ignores
 * permission bits, and the point is to see what an unprivileged backup user gets. The real uid
 * stays 0 so the effective uid (and capabilities) can be restored afterwards.
 */
async function unprivileged<T>(fn: () => Promise<T>): Promise<T> {
  if (process.getuid?.() !== 0) return fn();
  process.setegid!(65534);
  process.seteuid!(65534);
  try {
    return await fn();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
  }
}

describe('fs storage', () => {
  let temp: TempDir;
  let root: string;
  let storage: FsStorage;
  let savedUmask: number;

  beforeEach(async () => {
    temp = await makeTempDir();
    root = path.join(temp.path, 'backup');
    storage = createFsStorage({ root });
    savedUmask = process.umask();
  });
  afterEach(async () => {
    process.umask(savedUmask);
    await chmod(temp.path, 0o755).catch(() => undefined);
    await temp.remove();
  });

  describe('factory', () => {
    it('names the storage fs:<absolute root> and resolves a relative root', () => {
      expect(storage.name).toBe(`fs:${root}`);
      expect(storage.root).toBe(root);
      const relative = createFsStorage({ root: 'some/relative/dir' });
      expect(relative.root).toBe(path.resolve('some/relative/dir'));
      expect(relative.name).toBe(`fs:${path.resolve('some/relative/dir')}`);
    });

    it('does no I/O: the root is created on the first write, with mode 0700', async () => {
      await expect(lstat(root)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await storage.list('')).toEqual([]);
      expect(await storage.stat('x')).toBeUndefined();
      await storage.delete('x');
      expect((await storage.capacity()).total).toBeGreaterThan(0);
      await expect(lstat(root)).rejects.toMatchObject({ code: 'ENOENT' });
      process.umask(0o022);
      await storage.put('first', body('1'));
      expect(await modeOf(root)).toBe(0o700);
    });

    it('rejects bad options with a ConfigError naming the field', () => {
      const cases: [unknown, string][] = [
        [{}, 'root'],
        [{ root: '' }, 'root'],
        [{ root: '/backup', fileMode: 0o400 }, 'fileMode'],
        [{ root: '/backup', dirMode: 0o600 }, 'dirMode'],
        [{ root: '/backup', fsync: 'yes' }, 'fsync'],
        [{ root: '/backup', rot: '/typo' }, 'rot'],
      ];
      for (const [options, field] of cases) {
        let error: unknown;
        try {
          createFsStorage(options as never);
        } catch (e) {
          error = e;
        }
        expect(BackupError.isInstance(error), JSON.stringify(options)).toBe(true);
        expect((error as BackupError).code).toBe('CONFIG_INVALID');
        expect((error as BackupError).message).toContain(field);
      }
    });

    it('exports the options schema with its defaults', () => {
      expect(fsStorageOptionsSchema.parse({ root: '/backup' })).toEqual({
        root: '/backup',
        fileMode: 0o600,
        dirMode: 0o700,
        fsync: true,
        staleTempAfterMs: 3_600_000,
      });
    });
  });

  describe('permissions', () => {
    it('writes files 0600 and directories 0700 even with a permissive umask', async () => {
      process.umask(0o000);
      await storage.put('set/postgres/db.dump', body('dump'));
      await storage.put('set/postgres/db.dump', body('overwritten'));
      await storage.createExclusive('.scholaria-backup/locks/run.lock', Buffer.from('{}'));
      expect(await modeOf(root)).toBe(0o700);
      expect(await modeOf(path.join(root, 'set'))).toBe(0o700);
      expect(await modeOf(path.join(root, 'set/postgres'))).toBe(0o700);
      expect(await modeOf(path.join(root, 'set/postgres/db.dump'))).toBe(0o600);
      expect(await modeOf(path.join(root, '.scholaria-backup/locks'))).toBe(0o700);
      expect(await modeOf(path.join(root, '.scholaria-backup/locks/run.lock'))).toBe(0o600);
    });

    it('keeps 0600/0700 under a restrictive umask too', async () => {
      process.umask(0o277);
      await storage.put('a/b', body('x'));
      expect(await modeOf(path.join(root, 'a'))).toBe(0o700);
      expect(await modeOf(path.join(root, 'a/b'))).toBe(0o600);
    });

    it('creates missing parents of the root with the directory mode', async () => {
      process.umask(0o000);
      const deep = createFsStorage({ root: path.join(temp.path, 'x/y/backup') });
      await deep.put('k', body('v'));
      expect(await modeOf(path.join(temp.path, 'x'))).toBe(0o700);
      expect(await modeOf(path.join(temp.path, 'x/y'))).toBe(0o700);
      expect(await modeOf(path.join(temp.path, 'x/y/backup'))).toBe(0o700);
    });

    it('honours custom modes and leaves the mode of an existing root alone', async () => {
      process.umask(0o000);
      await mkdir(root, { mode: 0o755 });
      await chmod(root, 0o755);
      const custom = createFsStorage({ root, fileMode: 0o640, dirMode: 0o750 });
      await custom.put('d/f', body('x'));
      expect(await modeOf(root)).toBe(0o755);
      expect(await modeOf(path.join(root, 'd'))).toBe(0o750);
      expect(await modeOf(path.join(root, 'd/f'))).toBe(0o640);
    });
  });

  describe('atomic writes and temp files', () => {
    it('removes the temp file and the directories it created when the source fails', async () => {
      await storage.put('keep/me', body('kept'));
      const error = await backupErrorOf(storage.put('set_1/postgres/db.dump', failingBody(2 * 1024 * 1024)));
      expect(error.message).toContain('pg_dump exited with code 1');
      expect(await tree(root)).toEqual(['keep/', 'keep/me']);
    });

    it('keeps the previous object and removes the temp file when an overwrite fails', async () => {
      await storage.put('set_1/manifest.json', body('{"v":1}'));
      await backupErrorOf(storage.put('set_1/manifest.json', failingBody(100_000)));
      expect(await tree(root)).toEqual(['set_1/', 'set_1/manifest.json']);
      expect(await readFile(path.join(root, 'set_1/manifest.json'), 'utf8')).toBe('{"v":1}');
    });

    it('removes the temp file when the put is aborted, and reports ABORTED', async () => {
      const controller = new AbortController();
      const stalled = new Readable({ read() {} });
      stalled.push(randomBytes(500_000));
      const putting = storage.put('set_2/redis/dump.rdb', stalled, { signal: controller.signal });
      setTimeout(() => controller.abort(), 20);
      const error = await backupErrorOf(putting);
      expect(error.code).toBe('ABORTED');
      expect(error.message).toContain('set_2/redis/dump.rdb');
      expect(await tree(root).catch(() => [])).toEqual([]);
    });

    it('does not list temp files, symlinks or directories', async () => {
      await storage.put('set/a', body('a'));
      await writeFile(path.join(root, 'set/.tmp-123-deadbeef'), 'partial');
      await symlink(path.join(root, 'set/a'), path.join(root, 'set/link'));
      await mkdir(path.join(root, 'set/empty-dir'));
      expect((await storage.list('')).map((e) => e.key)).toEqual(['set/a']);
    });

    it('createExclusive leaves no temp file behind, whether it wins or loses', async () => {
      expect(await storage.createExclusive('locks/l', Buffer.from('a'))).toBe(true);
      expect(await storage.createExclusive('locks/l', Buffer.from('b'))).toBe(false);
      expect(await tree(root)).toEqual(['locks/', 'locks/l']);
    });

    it('writes plain files without fsync when asked to', async () => {
      const fast = createFsStorage({ root, fsync: false });
      const data = randomBytes(123_456);
      await fast.put('nosync/obj', body(data));
      expect((await readFile(path.join(root, 'nosync/obj'))).equals(data)).toBe(true);
    });
  });

  describe('delete', () => {
    it('removes emptied parent directories up to, not including, the root', async () => {
      await storage.put('set_1/postgres/db.dump', body('x'));
      await storage.put('set_1/SHA256SUMS', body('y'));
      await storage.delete('set_1/postgres/db.dump');
      expect(await tree(root)).toEqual(['set_1/', 'set_1/SHA256SUMS']);
      await storage.deleteMany(['set_1/SHA256SUMS']);
      expect(await tree(root)).toEqual([]);
      expect((await stat(root)).isDirectory()).toBe(true);
    });

    it('treats a directory key as missing and leaves it', async () => {
      await storage.put('dir/child', body('x'));
      await storage.delete('dir');
      expect(await tree(root)).toEqual(['dir/', 'dir/child']);
    });

    it('sweeps temp files of long-dead writers out of a directory it empties, but not fresh ones', async () => {
      await storage.put('killed/a.dump', body('x'));
      const stale = path.join(root, 'killed/.tmp-999-stale');
      await writeFile(stale, 'half a dump');
      const old = new Date(Date.now() - 2 * 3_600_000);
      await utimes(stale, old, old);
      await storage.put('live/a.dump', body('x'));
      await writeFile(path.join(root, 'live/.tmp-1000-fresh'), 'being written');

      await storage.delete('killed/a.dump');
      await storage.delete('live/a.dump');
      expect(await tree(root)).toEqual(['live/', 'live/.tmp-1000-fresh']);
    });

    it('removeStaleTempFiles removes only temp files older than the threshold, and a dry run only finds them', async () => {
      await mkdir(path.join(root, 'a/b'), { recursive: true });
      await writeFile(path.join(root, 'a/b/.tmp-1-old'), 'x');
      await writeFile(path.join(root, 'a/.tmp-2-new'), 'y');
      const old = new Date(Date.now() - 10 * 60_000);
      await utimes(path.join(root, 'a/b/.tmp-1-old'), old, old);
      expect(await storage.removeStaleTempFiles({ olderThanMs: 5 * 60_000, dryRun: true })).toEqual(['a/b/.tmp-1-old']);
      expect(await tree(root)).toEqual(['a/', 'a/.tmp-2-new', 'a/b/', 'a/b/.tmp-1-old']);
      expect(await storage.removeStaleTempFiles({ olderThanMs: 5 * 60_000 })).toEqual(['a/b/.tmp-1-old']);
      expect(await tree(root)).toEqual(['a/', 'a/.tmp-2-new']);
    });
  });

  describe('localPath', () => {
    it('gives the file of an object, and undefined for a missing key or a prefix', async () => {
      await storage.put('set/postgres/db.dump', body('dump bytes'));
      const file = await storage.localPath('set/postgres/db.dump');
      expect(file).toBe(path.join(root, 'set', 'postgres', 'db.dump'));
      expect(await readFile(file!, 'utf8')).toBe('dump bytes');
      expect(await storage.localPath('set/postgres/other.dump')).toBeUndefined();
      expect(await storage.localPath('set/postgres')).toBeUndefined();
      expect(await storage.localPath('set/postgres/db.dump/x')).toBeUndefined();
      expect((await backupErrorOf(storage.localPath('../escape'))).code).toBe('INVALID_KEY');
    });
  });

  describe('keys', () => {
    it('rejects fs-unsafe keys with INVALID_KEY and writes nothing anywhere', async () => {
      const bad = ['./x', 'a/./b', 'a//b', 'a/', '.tmp-x', 'a/.tmp-y', '..', `${'n'.repeat(256)}`, '../escape'];
      for (const key of bad) {
        const error = await backupErrorOf(storage.put(key, body('x')));
        expect(error.code, key).toBe('INVALID_KEY');
        expect(error.message).toContain(JSON.stringify(key));
      }
      expect(await readdir(temp.path)).toEqual([]);
    });

    it('accepts dotted names that are not "." or ".."', async () => {
      for (const key of ['.scholaria-backup/audit/2026-11.jsonl', 'a/..b', 'b../c', '...', 'x/.tmp']) {
        await storage.put(key, body(key));
        expect((await readFile(path.join(root, key), 'utf8'))).toBe(key);
      }
    });

    it('validates list prefixes', async () => {
      for (const prefix of ['../', '/etc/', 'a/../', 'a\0', 'a\\b']) {
        expect((await backupErrorOf(storage.list(prefix))).code, prefix).toBe('INVALID_KEY');
      }
    });

    it('gives NOT_FOUND for a key below a file and a clear conflict error when writing one', async () => {
      await storage.put('file', body('x'));
      expect((await backupErrorOf(storage.get('file/below'))).code).toBe('NOT_FOUND');
      const error = await backupErrorOf(storage.put('file/below', body('y')));
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.message).toContain('file/below');
      expect(error.hint).toBeTruthy();
    });
  });

  describe('errors', () => {
    it('a root in a read-only directory fails with a clear permission error', async () => {
      const locked = path.join(temp.path, 'locked');
      await mkdir(locked, { mode: 0o555 });
      await chmod(locked, 0o555);
      const inside = createFsStorage({ root: path.join(locked, 'backup') });
      const error = await unprivileged(() => backupErrorOf(inside.put('set/a', body('x'))));
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.message).toMatch(/permission denied/i);
      expect(error.message).toContain('set/a');
      expect(error.hint).toContain(path.join(locked, 'backup'));
      expect(await readdir(locked)).toEqual([]);
    });

    it('an existing read-only root fails the same way and leaves no temp file', async () => {
      await mkdir(root, { mode: 0o555 });
      await chmod(root, 0o555);
      const error = await unprivileged(() => backupErrorOf(storage.put('obj', body('x'))));
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.hint).toContain(root);
      expect(await readdir(root)).toEqual([]);
    });

    it('maps ENOSPC, EROFS and EACCES to STORAGE_FAILED with what to do', () => {
      const errno = (code: string) => Object.assign(new Error(`${code}: simulated, write`), { code });
      const nospc = fsFailure(errno('ENOSPC'), { root: '/backup', op: 'put', key: 'set/db.dump' });
      expect(nospc.code).toBe('STORAGE_FAILED');
      expect(nospc.message).toContain('no space left');
      expect(nospc.message).toContain('set/db.dump');
      expect(nospc.hint).toMatch(/^free space on \/backup/);
      const rofs = fsFailure(errno('EROFS'), { root: '/backup', op: 'put', key: 'k' });
      expect(rofs.message).toContain('read-only');
      expect(rofs.hint).toContain('read-write');
      const acces = fsFailure(errno('EACCES'), { root: '/backup', op: 'get', key: 'k' });
      expect(acces.message).toMatch(/permission denied/);
      expect(fsFailure(errno('EMFILE'), { root: '/r', op: 'list' }).retryable).toBe(true);
    });
  });

  it('a body larger than the write-back step (32 MiB) is stored whole, with and without fsync, and fails whole when it breaks', async () => {
    const block = randomBytes(1024 * 1024);
    const blocks = 75;
    const expected = createHash('sha256');
    for (let i = 0; i < blocks; i++) expected.update(block);
    const digest = expected.digest('hex');
    for (const fsync of [true, false]) {
      const s = createFsStorage({ root, fsync });
      const key = `big/${fsync ? 'synced' : 'unsynced'}.bin`;
      let sent = 0;
      const source = new Readable({
        read() {
          this.push(sent++ < blocks ? block : null);
        },
      });
      const { size } = await s.put(key, source);
      expect(size).toBe(blocks * block.length);
      const stored = await readFile(path.join(root, key));
      expect(createHash('sha256').update(stored).digest('hex')).toBe(digest);
    }
    // Broken after several write-backs: nothing is left under the key, no temp file either.
    let sent = 0;
    const breaking = new Readable({
      read() {
        if (sent++ < 70) this.push(block);
        else this.destroy(new Error('source died'));
      },
    });
    await expect(storage.put('big/broken.bin', breaking)).rejects.toThrow();
    expect((await tree(path.join(root, 'big'))).filter((f) => f.includes('broken') || f.startsWith('.'))).toEqual([]);
  });

  it('a set written through the storage passes the real `sha256sum -c SHA256SUMS`', async () => {
    const setId = 'scholaria_backup_20261126_020000';
    const artifacts: Record<string, Buffer> = {
      'postgres/scholaria.dump.zst': randomBytes(300_000),
      'redis/dump.rdb': randomBytes(50_000),
      'qdrant/chunks collection.snapshot': randomBytes(10_000),
    };
    for (const [name, data] of Object.entries(artifacts)) await storage.put(`${setId}/${name}`, body(data));
    const sums = formatSha256Sums(
      Object.entries(artifacts).map(([p, data]) => ({ path: p, sha256: createHash('sha256').update(data).digest('hex') })),
    );
    await storage.put(`${setId}/SHA256SUMS`, body(sums));
    await storage.put(`${setId}/manifest.json`, body('{}'));
    const { stdout } = await execFileAsync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: path.join(root, setId) });
    expect(stdout.trim().split('\n').sort()).toEqual(Object.keys(artifacts).map((p) => `${p}: OK`).sort());
  });
});

describe('fs deletePrefix', () => {
  it('removes a whole set folder, hidden temp files of a killed writer included', async () => {
    const dir = await makeTempDir();
    try {
      const storage = createFsStorage({ root: dir.path });
      await storage.put('set_20260101_000000/a/b.bin', Readable.from([Buffer.from('x')]));
      await storage.put('other/keep.bin', Readable.from([Buffer.from('y')]));
      await writeFile(`${dir.path}/set_20260101_000000/a/.tmp-leftover`, 'partial');
      await storage.deletePrefix('set_20260101_000000/');
      expect((await readdir(dir.path)).sort()).toEqual(['other']);
      await expect(storage.deletePrefix('')).rejects.toMatchObject({ code: 'INVALID_KEY' });
      await expect(storage.deletePrefix('../x/')).rejects.toMatchObject({ code: 'INVALID_KEY' });
    } finally {
      await dir.remove();
    }
  });
});
