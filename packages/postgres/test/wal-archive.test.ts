import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzipCodec } from '@scholaria/backup-core';
import { createMemoryStorage, makeTempDir } from '@scholaria/backup-testkit';
import { describe, expect, it } from 'vitest';
import {
  WalArchive,
  buildPgBasebackupArgs,
  checkWalContinuity,
  formatLsn,
  lastPositionBefore,
  parseHistoryFile,
  parseLsn,
  parseSegmentName,
  planWal,
  recoverySettings,
  segmentName,
  walToKeep,
  type ArchivedWalFile,
} from '../src/index.js';

const at = (iso: string) => new Date(iso);
const file = (name: string, iso = '2026-12-02T00:00:00Z'): ArchivedWalFile => ({ name, archivedAt: at(iso), storage: 'memory' });

describe('WAL names', () => {
  it('round-trips segment names and LSNs as PostgreSQL spells them', () => {
    expect(parseSegmentName('000000010000000100000002')).toEqual({ timeline: 1, position: 258n });
    expect(segmentName(2, 258n)).toBe('000000020000000100000002');
    expect(formatLsn(parseLsn('1/2A000028')!)).toBe('1/2A000028');
    // A stop LSN right at a segment boundary needs only the segment before it.
    expect(lastPositionBefore(parseLsn('0/3000000')!)).toBe(2n);
    expect(parseHistoryFile('1\t0/3000100\tbefore 2026-12-02 10:00:00+00\n')).toEqual([{ timeline: 1, switchLsn: 0x3000100n }]);
  });

  it('builds pg_basebackup arguments without a password', () => {
    const args = buildPgBasebackupArgs({ host: 'db', port: 5432, user: 'replicator' });
    expect(args).toEqual(expect.arrayContaining(['-D', '-', '-F', 't', '-X', 'none', '-h', 'db', '-U', 'replicator']));
    expect(args.join(' ')).not.toMatch(/password/i);
  });

  it('writes the recovery target in PostgreSQL syntax', () => {
    const lines = recoverySettings({ kind: 'time', time: at('2026-12-02T05:05:00Z'), text: '' }, "scholaria-backup wal-fetch %f %p", 5433);
    expect(lines).toContain("recovery_target_time = '2026-12-02 05:05:00.000+00'");
    expect(lines).toContain("restore_command = 'scholaria-backup wal-fetch %f %p'");
    expect(lines).toContain('port = 5433');
  });
});

describe('WAL plan', () => {
  const base = { timeline: 1, startLsn: '0/2000028', stopLsn: '0/2000100', stopTime: '2026-12-02T00:00:00Z' };
  const none = async () => undefined;

  it('lists every segment from the base backup to the first one archived after the target', async () => {
    const files = [file('000000010000000000000002', '2026-12-02T00:00:01Z'), file('000000010000000000000003', '2026-12-02T00:05:00Z'), file('000000010000000000000004', '2026-12-02T00:10:00Z')];
    const plan = await planWal({ base, target: { kind: 'time', time: at('2026-12-02T00:04:00Z'), text: 'x' }, files, readHistory: none });
    expect(plan.segments).toEqual(['000000010000000000000002', '000000010000000000000003']);
    expect(plan.missing).toEqual([]);
    expect(plan.beyond).toBe(1);
  });

  it('names the missing segment of a gap', async () => {
    const files = [file('000000010000000000000002'), file('000000010000000000000004', '2026-12-02T00:10:00Z')];
    const plan = await planWal({ base, target: { kind: 'time', time: at('2026-12-02T00:04:00Z'), text: 'x' }, files, readHistory: none });
    expect(plan.missing).toEqual(['000000010000000000000003']);
    const latest = await planWal({ base, target: { kind: 'latest' }, files, readHistory: none });
    expect(latest.missing).toEqual(['000000010000000000000003']);
  });

  it('follows a timeline switch: the switch segment and later ones come from the new timeline', async () => {
    const files = [file('000000010000000000000002'), file('000000010000000000000003'), file('00000002.history'), file('000000020000000000000003'), file('000000020000000000000004')];
    const plan = await planWal({ base, target: { kind: 'latest' }, files, readHistory: async () => '1\t0/3000100\tno recovery target specified\n' });
    expect(plan.targetTimeline).toBe(2);
    expect(plan.segments).toEqual(['000000010000000000000002', '000000020000000000000003', '000000020000000000000004']);
    expect(plan.missing).toEqual([]);
  });

  it('refuses a target time with no WAL archived after it', async () => {
    await expect(planWal({ base, target: { kind: 'time', time: at('2026-12-03T00:00:00Z'), text: 'tomorrow' }, files: [file('000000010000000000000002')], readHistory: none })).rejects.toThrow(/no WAL archived after the target time/);
  });
});

describe('WAL retention and continuity', () => {
  it('keeps what the oldest kept base backup needs and nothing older; history files stay', () => {
    const files = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003', '00000002.history', '000000010000000000000001.00000028.backup'].map((n) => file(n));
    const plan = walToKeep(files, [{ timeline: 1, startLsn: '0/2000028', stopLsn: '0/2000100', stopTime: '' }]);
    expect(plan.remove.sort()).toEqual(['000000010000000000000001', '000000010000000000000001.00000028.backup']);
    expect(walToKeep(files, []).remove).toEqual([]);
  });

  it('finds holes per timeline', () => {
    const c = checkWalContinuity(['000000010000000000000001', '000000010000000000000004', '000000020000000000000004'].map((n) => file(n)));
    expect(c.ok).toBe(false);
    expect(c.gaps).toEqual([{ timeline: 1, from: '000000010000000000000002', to: '000000010000000000000003', count: 2 }]);
  });
});

describe('WalArchive', () => {
  it('pushes encoded with a record, fetches verified, is idempotent and refuses different bytes', async () => {
    const dir = await makeTempDir('scholaria-wal-');
    try {
      const storage = createMemoryStorage();
      const archive = new WalArchive({ storages: [storage], codecs: [createGzipCodec()] });
      const name = '000000010000000000000007';
      const bytes = randomBytes(1 << 20);
      await writeFile(join(dir.path, name), bytes);
      expect((await archive.push(join(dir.path, name))).outcome).toBe('stored');
      expect([...storage.objects.keys()].sort()).toEqual([`wal/${name}.gz`, `wal/${name}.json`]);
      expect((await archive.push(join(dir.path, name))).outcome).toBe('already-archived');
      expect(await archive.fetch(name, join(dir.path, 'out'))).toBe(true);
      expect((await readFile(join(dir.path, 'out'))).equals(bytes)).toBe(true);
      expect(await archive.fetch('000000010000000000000008', join(dir.path, 'none'))).toBe(false);

      const other = Buffer.from(bytes);
      other[0] = other[0]! ^ 1;
      await writeFile(join(dir.path, 'other'), other);
      await expect(archive.push(join(dir.path, 'other'), { name })).rejects.toThrow(/already archived with different contents/);

      // A damaged stored object is caught before anything takes the name %p.
      const stored = storage.objects.get(`wal/${name}.gz`)!;
      stored.body = Buffer.concat([stored.body.subarray(0, 100), Buffer.from([stored.body[100]! ^ 0xff]), stored.body.subarray(101)]);
      await expect(archive.fetch(name, join(dir.path, 'bad'))).rejects.toThrow(/checksum/i);
      await expect(readFile(join(dir.path, 'bad'))).rejects.toThrow(/ENOENT/);
    } finally {
      await dir.remove();
    }
  });
});
