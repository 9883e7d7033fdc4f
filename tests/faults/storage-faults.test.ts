// Storage full (a real 8 MiB tmpfs) and storage read-only (a read-only remount, also in the
// middle of a write): the error says what happened to which storage and what to do, no set that
// lacks data is ever complete, earlier sets stay intact, and the storage works again afterwards.
import { statfsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupError, createBackupEngine, retentionFromDays, type BackupEngine, type Storage } from '@scholaria/backup-core';
import { createFsStorage, TEMP_PREFIX } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { assertCatalogSound, captureLogger, sha256sumCheck, sleep, walk } from './helpers/common.js';
import { bindMount, mountTmpfs, type Mount } from './helpers/mounts.js';
import { gatedPuts } from './helpers/storage-wrappers.js';

let dir: TempDir;
let mount: Mount | undefined;
beforeEach(async () => {
  dir = await makeTempDir('faults-storage-');
});
afterEach(async () => {
  mount?.unmount();
  mount = undefined;
  await dir.remove();
});

function engineWith(storage: Storage, options: { generated?: number; content?: string; logger?: ReturnType<typeof captureLogger>; lockTtlMs?: number } = {}): BackupEngine {
  return createBackupEngine({
    sources: [
      createTestSource({
        name: 'test',
        files: { 'data.txt': options.content ?? 'x'.repeat(3000) },
        ...(options.generated ? { generated: { 'big.bin': options.generated } } : {}),
      }),
    ],
    storage,
    retention: { ...retentionFromDays({ daily: 7, weekly: 30, monthly: 365 }), incompleteGracePeriod: '0s' },
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.lockTtlMs ? { lockTtlMs: options.lockTtlMs } : {}),
  });
}

async function tempFiles(root: string): Promise<string[]> {
  return (await walk(root)).filter((e) => e.path.split('/').pop()!.startsWith(TEMP_PREFIX)).map((e) => e.path);
}

const freeBytes = (path: string) => {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
};

describe('storage full', () => {
  it('a 16 MiB artifact into an 8 MiB file system: fails naming the disk, leaves no set and no partial file, the earlier set survives', async () => {
    mount = mountTmpfs(join(dir.path, 'disk'), '8m');
    const root = join(mount.path, 'backup');
    const storage = createFsStorage({ root });
    const good = await engineWith(storage).backup({ tier: 'daily' });
    expect(good.status).toBe('complete');
    const freeBefore = freeBytes(mount.path);

    const logger = captureLogger();
    const result = await engineWith(storage, { generated: 16 * 1024 * 1024, logger }).backup({ tier: 'daily' });
    expect(result.status).toBe('failed');
    const failure = result.components[0]!.error as BackupError;
    const noSpace = `fs:${root}: no space left on the device \\(put "${result.setId}/test/big.bin"\\)`;
    expect(failure.code).toBe('STORAGE_FAILED');
    expect(failure.message).toMatch(new RegExp(`^test: writing test/big.bin failed: ${noSpace}`));
    expect(failure.hint).toMatch(/free space on/);
    expect(result.storages[0]!.error!.message).toMatch(new RegExp(noSpace));
    expect(result.error!.message).toMatch(/nothing was recorded|every component failed/);

    const engine = engineWith(storage);
    const { complete, incomplete } = await assertCatalogSound(engine);
    expect(complete).toEqual([good.setId]);
    expect(incomplete).toEqual([]);
    expect(await readdir(root)).not.toContain(result.setId);
    expect(await tempFiles(root)).toEqual([]);
    // The space the failed write took is given back.
    expect(freeBytes(mount.path)).toBeGreaterThanOrEqual(freeBefore - 64 * 1024);
    expect((await engine.verify({ ref: good.setId })).ok).toBe(true);
    expect((await engineWith(storage, { generated: 1024 * 1024 }).backup()).status).toBe('complete');
  });

  it('the disk fills at each point of a backup in turn (lock, artifact, SHA256SUMS, manifest, audit): never a complete set that lacks a file', async () => {
    mount = mountTmpfs(join(dir.path, 'disk'), '8m');
    const root = join(mount.path, 'backup');
    const storage = createFsStorage({ root });
    const good = await engineWith(storage).backup({ tier: 'daily' });
    const failedAt = new Set<string>();
    const outcomes: string[] = [];
    const page = statfsSync(mount.path).bsize;
    for (let pagesLeft = 0; pagesLeft <= 7; pagesLeft++) {
      const filler = join(mount.path, 'filler');
      await writeFile(filler, Buffer.alloc(Math.max(0, freeBytes(mount.path) - pagesLeft * page)));
      expect(freeBytes(mount.path)).toBe(pagesLeft * page);
      const logger = captureLogger();
      const engine = engineWith(storage, { content: `round ${pagesLeft} `.repeat(300), logger });
      let outcome: string;
      try {
        const r = await engine.backup({ tier: 'daily' });
        if (r.status === 'complete') {
          outcome = 'complete';
          expect((await engine.verify({ ref: r.setId })).ok).toBe(true);
          expect(sha256sumCheck(join(root, r.setId)).ok).toBe(true);
          const auditWarning = logger.lines.find((l) => l.startsWith('warn could not append to the audit log'));
          if (auditWarning) {
            expect(auditWarning).toMatch(/no space left/);
            failedAt.add('audit');
            outcome = 'complete, audit line not written';
          }
        } else {
          expect(r.status).toBe('failed');
          const messages = [...r.components.map((c) => c.error?.message ?? ''), ...r.storages.map((s) => s.error?.message ?? ''), r.error?.message ?? ''].join(' | ');
          expect(messages).toMatch(/no space left on the device/);
          const key = /put "[^"]*?(test\/data\.txt|SHA256SUMS|manifest\.json)"/.exec(messages)?.[1];
          expect(key, messages).toBeDefined();
          failedAt.add(key!);
          outcome = `failed at ${key}`;
          expect(await readdir(root)).not.toContain(r.setId);
        }
      } catch (error) {
        // The lock itself could not be written: refused before anything else.
        expect(error).toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringMatching(/no storage is available: .*no space left on the device \(put "\.scholaria-backup\/locks\//) });
        failedAt.add('lock');
        outcome = 'refused: lock not writable';
      }
      outcomes.push(`${pagesLeft} pages free: ${outcome}`);
      await rm(filler);
      const { complete } = await assertCatalogSound(engine);
      expect(complete).toContain(good.setId);
      expect((await engine.verify({ all: true })).ok).toBe(true);
      expect(await tempFiles(root)).toEqual([]);
    }
    if (process.env.FAULT_VERBOSE) console.info(outcomes.join('\n'));
    // Every stage of the write met a full disk at least once.
    expect([...failedAt].sort(), outcomes.join('\n')).toEqual(expect.arrayContaining(['lock', 'test/data.txt', 'manifest.json']));
    expect(failedAt.has('SHA256SUMS') || failedAt.has('manifest.json')).toBe(true);
  });
});

describe('storage read-only', () => {
  it('a read-only backup disk: backup refused naming it, list and verify still work, backups resume once writable', async () => {
    mount = bindMount(join(dir.path, 'disk'));
    const root = join(mount.path, 'backup');
    const storage = createFsStorage({ root });
    const engine = engineWith(storage);
    const good = await engine.backup({ tier: 'daily' });
    mount.readOnly();
    const error = await engine.backup({ tier: 'daily' }).then(() => undefined, (e: BackupError) => e);
    expect(error?.code).toBe('STORAGE_FAILED');
    expect(error?.message).toMatch(new RegExp(`no storage is available: fs:${root}: the file system is read-only \\(put "\\.scholaria-backup/locks/`));
    expect(error?.hint).toMatch(/writable|health-check/);
    expect((await engine.list()).map((s) => s.id)).toEqual([good.setId]);
    const verified = await engine.verify({ ref: good.setId });
    expect(verified.ok).toBe(true);
    // A dry-run restore only reads and plans.
    expect((await engine.restore({ ref: good.setId, dryRun: true })).status).toBe('ok');
    mount.readWrite();
    expect((await engine.backup({ tier: 'daily' })).status).toBe('complete');
    expect((await engine.verify({ all: true })).ok).toBe(true);
  });

  it('the disk turns read-only in the middle of an artifact: the run fails by name, nothing looks complete, prune cleans up later', async () => {
    mount = bindMount(join(dir.path, 'disk'));
    const root = join(mount.path, 'backup');
    const storage = createFsStorage({ root, staleTempAfterMs: 0 });
    const good = await engineWith(storage).backup({ tier: 'daily' });
    const gate = gatedPuts(storage, 'test/big.bin', 512 * 1024);
    const logger = captureLogger();
    const running = engineWith(gate.storage, { generated: 4 * 1024 * 1024, logger, lockTtlMs: 2000 }).backup({ tier: 'daily' });
    await gate.reached;
    const undo = mount.readOnlyOnTop();
    gate.release();
    const result = await running.catch((e: BackupError) => e);
    undo();
    if (process.env.FAULT_VERBOSE) console.info(`read-only mid-write: ${result instanceof Error ? result.message : `${result.status}: ${result.components[0]!.error?.message}`}`);
    if (result instanceof Error) {
      // The lock could not be released on a read-only disk; the run itself must name the cause.
      expect(result.message).toMatch(/read-only/);
    } else {
      expect(result.status).toBe('failed');
      expect(result.components[0]!.error!.message).toMatch(/the file system is read-only/);
    }
    const engine = engineWith(storage);
    const { complete } = await assertCatalogSound(engine);
    expect(complete).toEqual([good.setId]);
    expect((await engine.verify({ ref: good.setId })).ok).toBe(true);
    // Its lock could not be removed from the read-only disk (logged); this process still lives,
    // so the lock holds until its TTL (2 s here) and is then taken over.
    expect(logger.lines.some((l) => /^warn could not remove the lock .*read-only/.test(l))).toBe(true);
    await sleep(2500);
    const next = await engine.backup({ tier: 'daily' });
    expect(next.status).toBe('complete');
    await engine.prune();
    expect((await engine.list({ includeIncomplete: true })).every((s) => s.status === 'complete')).toBe(true);
    expect((await engine.verify({ all: true })).ok).toBe(true);
  });
});
