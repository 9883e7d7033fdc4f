import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir, userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AUDIT_GENESIS_HASH,
  canonicalJson,
  createAuditLog,
  verifyAuditLines,
  type AuditRecord,
} from '../src/audit/audit-log.js';
import { BackupError, NotFoundError } from '../src/errors/backup-error.js';
import type { Storage, StorageEntry } from '../src/interfaces/storage.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A small real-disk Storage for these tests (the full one lives in @scholaria/backup-fs). */
function dirStorage(): { root: string; storage: Storage } {
  const root = mkdtempSync(join(tmpdir(), 'scholaria-audit-'));
  dirs.push(root);
  const storage: Storage = {
    specVersion: 'v1',
    name: `test-dir:${root}`,
    async put(key, body: Readable) {
      const file = join(root, key);
      await mkdir(dirname(file), { recursive: true });
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(Buffer.from(c as Buffer));
      const tmp = `${file}.tmp-${process.pid}`;
      await writeFile(tmp, Buffer.concat(chunks));
      await rename(tmp, file);
      return { size: Buffer.concat(chunks).length };
    },
    async get(key) {
      const file = join(root, key);
      if (!existsSync(file)) throw new NotFoundError(`no such key ${key}`);
      return createReadStream(file);
    },
    async list(prefix) {
      const out: StorageEntry[] = [];
      const walk = async (dir: string): Promise<void> => {
        if (!existsSync(dir)) return;
        for (const e of await readdir(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.isDirectory()) await walk(p);
          else {
            const key = relative(root, p);
            if (key.startsWith(prefix)) {
              const s = await stat(p);
              out.push({ key, size: s.size, modifiedAt: s.mtime });
            }
          }
        }
      };
      await walk(root);
      return out;
    },
    async delete(key) {
      await rm(join(root, key), { force: true });
    },
  };
  return { root, storage };
}

function clockAt(...isoTimes: string[]): () => Date {
  let i = 0;
  return () => new Date(isoTimes[Math.min(i++, isoTimes.length - 1)]!);
}

async function fileLines(root: string, month: string): Promise<string[]> {
  return (await readFile(join(root, '.scholaria-backup/audit', `${month}.jsonl`), 'utf8')).split('\n').filter(Boolean);
}

async function writeLines(root: string, month: string, lines: string[]): Promise<void> {
  await writeFile(join(root, '.scholaria-backup/audit', `${month}.jsonl`), lines.map((l) => `${l}\n`).join(''));
}

/** Four entries in November 2026 (UTC). */
async function seededLog() {
  const { root, storage } = dirStorage();
  const log = createAuditLog(storage, {
    actor: 'ops@backup-host',
    clock: clockAt('2026-11-01T02:00:00Z', '2026-11-02T02:00:00Z', '2026-11-03T02:00:00Z', '2026-11-04T02:00:00Z'),
  });
  await log.append({ action: 'backup', setId: 'scholaria_backup_20261101_020000', components: ['postgres', 'redis'], result: 'ok' });
  await log.append({ action: 'verify', setId: 'scholaria_backup_20261101_020000', result: 'ok' });
  await log.append({ action: 'backup', setId: 'scholaria_backup_20261103_020000', components: ['qdrant'], result: 'failed', error: 'qdrant: connection refused' });
  await log.append({ action: 'prune', result: 'ok', details: { removed: 2 } });
  expect((await log.verify()).ok).toBe(true);
  return { root, storage, log };
}

describe('audit log on a real directory', () => {
  it('writes one chained JSON line per entry into month files', async () => {
    const { root, storage } = dirStorage();
    const log = createAuditLog(storage, {
      timeZone: 'Asia/Seoul',
      clock: clockAt('2026-10-31T14:30:00Z', '2026-10-31T15:30:00Z', '2026-11-30T16:00:00Z'),
    });
    const r1 = await log.append({ action: 'backup', setId: 's1', components: ['postgres'], result: 'ok' });
    const r2 = await log.append({ action: 'restore', setId: 's1', components: ['postgres'], result: 'failed', error: 'boom', details: { dryRun: false } });
    const r3 = await log.append({ action: 'verify', result: 'partial' });

    // 2026-10-31T15:30Z is already November in Seoul; 2026-11-30T16:00Z is December.
    expect(await readdir(join(root, '.scholaria-backup/audit'))).toEqual(['2026-10.jsonl', '2026-11.jsonl', '2026-12.jsonl']);
    expect(await fileLines(root, '2026-10')).toHaveLength(1);
    expect(await fileLines(root, '2026-11')).toHaveLength(1);

    expect(r1).toMatchObject({
      time: '2026-10-31T23:30:00.000+09:00',
      actor: `${userInfo().username}@${hostname()}`,
      action: 'backup',
      setId: 's1',
      components: ['postgres'],
      result: 'ok',
      error: null,
      prevHash: AUDIT_GENESIS_HASH,
    });
    expect(r2.prevHash).toBe(r1.hash);
    expect(r3.prevHash).toBe(r2.hash);
    expect(r3).toMatchObject({ setId: null, components: [], error: null });

    // The hash is the sha256 of the line's JSON without `hash`, keys sorted, no whitespace.
    const line = JSON.parse((await fileLines(root, '2026-11'))[0]!) as Record<string, unknown>;
    const { hash, ...rest } = line;
    const sorted = Object.fromEntries(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
    expect(hash).toBe(createHash('sha256').update(JSON.stringify(sorted)).digest('hex'));
    expect(Object.keys(line)).toEqual(['time', 'actor', 'action', 'setId', 'components', 'result', 'error', 'details', 'prevHash', 'hash']);

    expect(await log.read()).toEqual([r1, r2, r3]);
    expect(await log.verify()).toEqual({ ok: true, lines: 3 });
  });

  it('continues the chain from a previous process and across months', async () => {
    const { root, storage } = dirStorage();
    const first = createAuditLog(storage, { actor: 'a@h', clock: clockAt('2026-01-31T23:00:00Z') });
    const r1 = await first.append({ action: 'backup', result: 'ok' });
    const second = createAuditLog(storage, { actor: 'b@h', clock: clockAt('2026-02-01T01:00:00Z') });
    const r2 = await second.append({ action: 'prune', result: 'ok' });
    expect(r2.prevHash).toBe(r1.hash);
    expect(await fileLines(root, '2026-02')).toHaveLength(1);
    expect(await second.verify()).toEqual({ ok: true, lines: 2 });
  });

  it('serialises concurrent appends into one valid chain', async () => {
    const { storage } = dirStorage();
    const log = createAuditLog(storage, { actor: 'x@y', clock: () => new Date('2026-05-05T05:05:05Z') });
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => log.append({ action: 'verify', setId: `s${i}`, result: 'ok' })));
    const records = await log.read();
    expect(records.map((r) => r.setId)).toEqual(results.map((r) => r.setId));
    expect(records).toHaveLength(25);
    expect(await log.verify()).toEqual({ ok: true, lines: 25 });
  });

  it('never writes into a month older than the newest file when the clock goes back', async () => {
    const { root, storage } = dirStorage();
    const log = createAuditLog(storage, { actor: 'x@y', clock: clockAt('2026-03-01T00:00:00Z', '2026-02-27T00:00:00Z') });
    await log.append({ action: 'backup', result: 'ok' });
    await log.append({ action: 'backup', result: 'ok' });
    expect(await readdir(join(root, '.scholaria-backup/audit'))).toEqual(['2026-03.jsonl']);
    expect((await log.verify()).ok).toBe(true);
  });

  it('redacts the error text and refuses malformed entries', async () => {
    const { storage } = dirStorage();
    const log = createAuditLog(storage, { actor: 'x@y', redact: (s) => s.replaceAll('hunter2', '***') });
    const r = await log.append({ action: 'backup', result: 'failed', error: 'auth failed for password hunter2' });
    expect(r.error).toBe('auth failed for password ***');
    let error: unknown;
    try {
      await log.append({ action: '', result: 'ok', components: 'postgres' as unknown as string[] });
    } catch (e) {
      error = e;
    }
    expect(BackupError.isInstance(error) && error.code).toBe('USAGE');
    expect((error as Error).message).toMatch(/action must be a non-empty string; components must be a list of strings/);
    // The failed append did not block the queue.
    await log.append({ action: 'verify', result: 'ok' });
    expect(await log.verify()).toEqual({ ok: true, lines: 2 });
  });
});

describe('audit chain tampering is detected and named', () => {
  const file = '.scholaria-backup/audit/2026-11.jsonl';

  it('an edited line', async () => {
    const { root, log } = await seededLog();
    const lines = await fileLines(root, '2026-11');
    lines[2] = lines[2]!.replace('"result":"failed"', '"result":"ok"');
    await writeLines(root, '2026-11', lines);
    expect(await log.verify()).toEqual({
      ok: false,
      lines: 4,
      firstBroken: { file, line: 3, reason: 'the line does not match its hash (it was edited)' },
    });
  });

  it('an edited line whose hash was recomputed breaks at the next line', async () => {
    const { root, log } = await seededLog();
    const lines = await fileLines(root, '2026-11');
    const record = JSON.parse(lines[1]!) as AuditRecord;
    const forged: Record<string, unknown> = { ...record, result: 'failed' };
    delete forged.hash;
    forged.hash = createHash('sha256').update(canonicalJson(forged)).digest('hex');
    lines[1] = JSON.stringify(forged);
    await writeLines(root, '2026-11', lines);
    const result = await log.verify();
    expect(result.firstBroken).toEqual({
      file,
      line: 3,
      reason: 'prevHash does not match the hash of the line before it (a line was deleted, inserted or reordered)',
    });
  });

  it('a deleted line', async () => {
    const { root, log } = await seededLog();
    const lines = await fileLines(root, '2026-11');
    lines.splice(1, 1);
    await writeLines(root, '2026-11', lines);
    const result = await log.verify();
    expect(result.ok).toBe(false);
    expect(result.lines).toBe(3);
    expect(result.firstBroken).toMatchObject({ file, line: 2, reason: expect.stringMatching(/deleted, inserted or reordered/) });
  });

  it('a reordered line', async () => {
    const { root, log } = await seededLog();
    const lines = await fileLines(root, '2026-11');
    [lines[1], lines[2]] = [lines[2]!, lines[1]!];
    await writeLines(root, '2026-11', lines);
    expect((await log.verify()).firstBroken).toMatchObject({ file, line: 2, reason: expect.stringMatching(/reordered/) });
  });

  it('a removed earlier month file', async () => {
    const { root, storage } = dirStorage();
    const log = createAuditLog(storage, { actor: 'x@y', clock: clockAt('2026-10-10T00:00:00Z', '2026-11-10T00:00:00Z') });
    await log.append({ action: 'backup', result: 'ok' });
    await log.append({ action: 'backup', result: 'ok' });
    await rm(join(root, '.scholaria-backup/audit/2026-10.jsonl'));
    expect((await log.verify()).firstBroken).toEqual({
      file,
      line: 1,
      reason: 'the first line of the log does not start the chain (earlier lines or files were removed)',
    });
  });

  it('a damaged last line is named, and later appends still chain on', async () => {
    const { root, log } = await seededLog();
    const lines = await fileLines(root, '2026-11');
    lines[3] = lines[3]!.slice(0, 20);
    await writeLines(root, '2026-11', lines);
    await expect(log.read()).rejects.toThrow(/2026-11\.jsonl: line 4 is not valid JSON/);
    await log.append({ action: 'verify', result: 'ok' });
    expect(await log.verify()).toMatchObject({ ok: false, lines: 5, firstBroken: { file, line: 4, reason: 'not valid JSON' } });
  });
});

describe('verifyAuditLines', () => {
  it('accepts an empty log and reports empty or non-object lines', () => {
    expect(verifyAuditLines([])).toEqual({ ok: true, lines: 0 });
    expect(verifyAuditLines([{ file: 'a', text: '' }])).toEqual({ ok: true, lines: 0 });
    expect(verifyAuditLines([{ file: 'a', text: '\n' }]).firstBroken).toEqual({ file: 'a', line: 1, reason: 'empty line' });
    expect(verifyAuditLines([{ file: 'a', text: '[1]\n' }]).firstBroken?.reason).toBe('not a JSON object');
    expect(verifyAuditLines([{ file: 'a', text: '{"prevHash":"x"}\n' }]).firstBroken?.reason).toBe('missing or malformed "hash"');
  });
});
