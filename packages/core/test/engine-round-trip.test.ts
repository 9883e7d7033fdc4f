import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBackupEngine, createGzipCodec, BackupError, type Logger } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { walk } from './helpers.js';

const run = promisify(execFile);

describe('engine round trip on fs storage', () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await dir.remove();
  });

  it('backs up, lists, verifies and restores a set', async () => {
    const source = createTestSource({ files: { 'a.txt': 'alpha\n', 'nested/b.bin': Buffer.from([0, 1, 2, 255]) } });
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }), codecs: [createGzipCodec()] });
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    expect(result.setId).toMatch(/^scholaria_backup_\d{8}_\d{6}$/);
    expect(result.manifest!.components[0]!.artifacts.map((a) => a.path).sort()).toEqual(['test/a.txt.gz', 'test/nested/b.bin.gz']);

    const sets = await engine.list();
    expect(sets.map((s) => [s.id, s.status, s.tier])).toEqual([[result.setId, 'complete', 'daily']]);

    const verified = await engine.verify({ ref: 'latest' });
    expect(verified.ok).toBe(true);
    expect(verified.sets[0]!.files.map((f) => f.ok)).toEqual([true, true]);

    source.data.clear();
    source.data.set('junk', Buffer.from('x'));
    const restored = await engine.restore({ ref: 'latest' });
    expect(restored.status).toBe('ok');
    expect(restored.verified.every((v) => v.ok)).toBe(true);
    expect(Object.fromEntries([...source.data].map(([k, v]) => [k, v.toString('hex')]))).toEqual({
      'a.txt': Buffer.from('alpha\n').toString('hex'),
      'nested/b.bin': '000102ff',
    });
  });

  it('writes a SHA256SUMS that GNU sha256sum -c accepts inside the set folder, manifest last', async () => {
    const source = createTestSource({ generated: { 'big.bin': 3 * 1024 * 1024 + 17 } });
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }) });
    const { setId } = await engine.backup({ tier: 'weekly' });
    const { stdout } = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(dir.path, setId) });
    expect(stdout.trim().split('\n')).toEqual(['test/big.bin: OK', 'test/data.txt: OK']);
    const manifest = JSON.parse(await readFile(join(dir.path, setId, 'manifest.json'), 'utf8'));
    expect(manifest.formatVersion).toBe(1);
    expect(manifest.status).toBe('complete');
    expect(manifest.components[0].artifacts.find((a: { name: string }) => a.name === 'big.bin').sha256).toBe(
      source.expectedDigest('big.bin').sha256,
    );
  });

  it('files are 0600 and folders 0700 whatever the umask', async () => {
    const old = process.umask(0o000);
    try {
      const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: join(dir.path, 'backup') }) });
      await engine.backup();
    } finally {
      process.umask(old);
    }
    const entries = await walk(join(dir.path, 'backup'));
    expect(entries.length).toBeGreaterThan(3);
    for (const e of entries) expect([e.path, e.mode.toString(8)]).toEqual([e.path, e.isDir ? '700' : '600']);
  });

  it('a flipped byte makes verify fail naming the file, and restore refuses the set', async () => {
    const source = createTestSource({ files: { 'a.txt': 'important data\n' } });
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }) });
    const { setId } = await engine.backup();
    const file = join(dir.path, setId, 'test', 'a.txt');
    const bytes = await readFile(file);
    bytes[3] = bytes[3]! ^ 0xff;
    await writeFile(file, bytes);

    const verified = await engine.verify({ ref: setId });
    expect(verified.ok).toBe(false);
    expect(verified.sets[0]!.files).toEqual([expect.objectContaining({ path: 'test/a.txt', ok: false })]);
    expect(verified.sets[0]!.problems.join('\n')).toMatch(/test\/a\.txt: checksum mismatch/);

    source.data.set('a.txt', Buffer.from('live data changed since\n'));
    const restored = await engine.restore({ ref: setId });
    expect(restored.status).toBe('failed');
    expect(restored.components[0]!.error!.message).toMatch(/test\/a\.txt: checksum mismatch/);
    expect(source.calls.restore).toBe(0);
    expect(source.data.get('a.txt')!.toString()).toBe('live data changed since\n');
  });

  it('gives unique set ids to two sets made in the same second', async () => {
    const fixed = new Date('2026-11-26T02:00:00Z');
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), clock: () => fixed, timeZone: 'Asia/Seoul' });
    const a = await engine.backup({ tier: 'daily' });
    const b = await engine.backup({ tier: 'daily' });
    expect(a.setId).toBe('scholaria_backup_20261126_110000');
    expect(b.setId).toBe('scholaria_backup_20261126_110000-2');
    expect(a.manifest!.startedAt).toBe('2026-11-26T11:00:00.000+09:00');
    expect((await engine.list()).map((s) => s.id).sort()).toEqual([a.setId, b.setId]);
  });

  it('a failing component makes the set partial while the others finish', async () => {
    const good = createTestSource({ name: 'good' });
    const bad = createTestSource({ name: 'bad', failBackup: { afterBytes: 100_000, message: 'connection to postgres://app:hunter2@db/x lost' }, generated: { 'x.bin': 1_000_000 } });
    const engine = createBackupEngine({ sources: [good, bad], storage: createFsStorage({ root: dir.path }), secrets: ['hunter2'] });
    const result = await engine.backup();
    expect(result.status).toBe('partial');
    const failed = result.components.find((c) => c.name === 'bad')!;
    expect(failed.status).toBe('failed');
    expect(failed.error!.message).toMatch(/^bad: /);
    expect(failed.error!.message).not.toContain('hunter2');
    expect(result.components.find((c) => c.name === 'good')!.status).toBe('ok');
    const files = await readdir(join(dir.path, result.setId));
    expect(files.sort()).toEqual(['SHA256SUMS', 'good', 'manifest.json']);
    const manifestText = await readFile(join(dir.path, result.setId, 'manifest.json'), 'utf8');
    expect(manifestText).not.toContain('hunter2');
    expect(JSON.parse(manifestText).components.find((c: { name: string }) => c.name === 'bad').status).toBe('failed');
    // 'latest' means the newest complete set: a partial set is listed but not chosen.
    await expect(engine.restore({ ref: 'latest' })).rejects.toMatchObject({ code: 'SET_NOT_FOUND' });
    const restored = await engine.restore({ ref: result.setId, components: ['good'] });
    expect(restored.status).toBe('ok');
  });

  it('writes the set to every storage and reports one that fails without stopping the others', async () => {
    const good = createFsStorage({ root: join(dir.path, 'good') });
    const broken = createFsStorage({ root: '/proc/scholaria-cannot-write-here' });
    const engine = createBackupEngine({ sources: [createTestSource()], storage: [broken, good] });
    const result = await engine.backup();
    expect(result.status).toBe('complete');
    expect(result.storages.find((s) => s.name === broken.name)).toMatchObject({ ok: false });
    expect(result.storages.find((s) => s.name === good.name)).toMatchObject({ ok: true });
    expect(result.manifest!.storages).toEqual([good.name]);
  });

  it('dry-run restore verifies and plans but does not touch the target', async () => {
    const source = createTestSource({ files: { 'a.txt': 'v1' } });
    const engine = createBackupEngine({ sources: [source], storage: createFsStorage({ root: dir.path }) });
    await engine.backup();
    source.data.set('a.txt', Buffer.from('v2'));
    const res = await engine.restore({ ref: 'latest', dryRun: true });
    expect(res.status).toBe('ok');
    expect(res.dryRun).toBe(true);
    expect(res.components[0]!.plan).toEqual(['would restore a.txt (2 bytes)']);
    expect(source.data.get('a.txt')!.toString()).toBe('v2');
    expect(source.calls.restore).toBe(0);
  });

  it('rejects unknown components and malformed set ids with clear errors', async () => {
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }) });
    await expect(engine.backup({ components: ['mysql'] })).rejects.toMatchObject({ code: 'COMPONENT_UNKNOWN', message: expect.stringContaining('"mysql"') });
    await engine.backup();
    await expect(engine.restore({ ref: 'latest', components: ['redis'] })).rejects.toMatchObject({ code: 'COMPONENT_UNKNOWN' });
    await expect(engine.restore({ ref: '../etc/passwd' })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(engine.restore({ ref: 'scholaria_backup_20200101_000000' })).rejects.toMatchObject({ code: 'SET_NOT_FOUND' });
  });

  it('rejects adapters of an unknown specVersion and invalid options, listing every problem', () => {
    const source = { ...createTestSource(), specVersion: 'v2' } as never;
    try {
      createBackupEngine({ sources: [source], storage: [], timeZone: 'Mars/Olympus', concurrency: 0 });
      expect.unreachable();
    } catch (error) {
      expect(BackupError.isInstance(error)).toBe(true);
      const message = (error as Error).message;
      expect(message).toMatch(/specVersion "v2"/);
      expect(message).toMatch(/at least one Storage/);
      expect(message).toMatch(/Mars\/Olympus/);
      expect(message).toMatch(/concurrency/);
    }
  });

  it('an abort mid-backup leaves no set behind', async () => {
    const controller = new AbortController();
    const engine = createBackupEngine({
      sources: [createTestSource({ generated: { 'big.bin': 20 * 1024 * 1024 }, chunkDelayMs: 1 })],
      storage: createFsStorage({ root: dir.path }),
    });
    const result = await engine.backup({
      signal: controller.signal,
      onProgress: (e) => {
        if (e.bytes > 1024 * 1024) controller.abort(new Error('operator pressed ctrl-c'));
      },
    });
    expect(result.status).toBe('failed');
    expect(result.error!.message).toMatch(/aborted/);
    expect(await engine.list({ includeIncomplete: true })).toEqual([]);
  });

  it('logs through the injected logger and never prints itself', async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug: (m) => lines.push(`debug ${m}`),
      info: (m) => lines.push(`info ${m}`),
      warn: (m) => lines.push(`warn ${m}`),
      error: (m) => lines.push(`error ${m}`),
    };
    const engine = createBackupEngine({ sources: [createTestSource()], storage: createFsStorage({ root: dir.path }), logger });
    const { setId } = await engine.backup();
    expect(lines).toContain(`info backup ${setId} complete`);
  });
});
