import { spawn } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { createRedisSource, RespCommandReader } from '@scholaria/backup-redis';
import { backupToDir, restoreFromDir, type DirBackup } from './helpers/dir-context.js';
import { BIG_VALUE_BYTES, BINARY_KEY, FIXTURE_DATABASES, compareFingerprints, fingerprint, loadFixture } from './helpers/fixture.js';

const PASSWORD = 'p@ss w0rd:/secret';
const ALL_DBS = Array.from({ length: 16 }, (_, i) => i);

let source: RedisServer;
let dir: TempDir;
let backup: DirBackup;
let before: Awaited<ReturnType<typeof fingerprint>>;

async function dbsizes(url: string, dbs: number[]): Promise<Record<string, number>> {
  const r = new Redis(url);
  try {
    const out: Record<string, number> = {};
    for (const db of dbs) {
      await r.select(db);
      out[String(db)] = await r.dbsize();
    }
    return out;
  } finally {
    r.disconnect();
  }
}

beforeAll(async () => {
  source = await startRedis({ password: PASSWORD });
  dir = await makeTempDir();
  await loadFixture(source.url());
  before = await fingerprint(source.url(), ALL_DBS);
  backup = await backupToDir(createRedisSource({ url: source.url() }), dir.path);
});

afterAll(async () => {
  await source?.stop();
  await dir?.remove();
});

describe('logical backup', () => {
  it('records server facts, mode and key counts per database in the metadata', async () => {
    const m = backup.result.metadata;
    expect(m.mode).toBe('logical');
    expect(m.requestedMode).toBe('logical');
    expect(m.serverVersion).toMatch(/^7\.0\./);
    expect(m.rdbVersion).toBe(10);
    expect(m.rdbVersions).toEqual([10]);
    expect(typeof m.usedMemory).toBe('number');
    expect(m.usedMemory as number).toBeGreaterThan(BIG_VALUE_BYTES);
    expect(m.databases).toEqual(ALL_DBS);
    expect(m.keyCounts).toEqual(await dbsizes(source.url(), ALL_DBS));
    expect((m.keyCounts as Record<string, number>)['3']).toBe(0);
    expect(m.keys).toBe(Object.values(m.keyCounts as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(backup.artifacts.get('dump.resp')?.contentType).toBe('application/x-redis-resp');
  });

  it('writes exactly the DUMP payloads the server gives, with absolute expiries', async () => {
    const reader = new RespCommandReader();
    const commands: Buffer[][] = [];
    for await (const chunk of createReadStream(backup.path('dump.resp'))) commands.push(...reader.push(chunk as Buffer));
    reader.end();
    const r = new Redis(source.url());
    try {
      let db = -1;
      let restores = 0;
      for (const c of commands) {
        const name = c[0]!.toString();
        if (name === 'SELECT') {
          db = Number(c[1]!.toString());
          await r.select(db);
          continue;
        }
        expect(name).toBe('RESTORE');
        expect(c.slice(4).map(String)).toEqual(['REPLACE', 'ABSTTL']);
        const original = await r.dumpBuffer(c[1]!);
        // Buffer.equals, not toEqual: a failing deep diff of a 24 MB buffer would exhaust memory.
        expect(original !== null && original.equals(c[3]!), `payload of key ${c[1]!.toString('hex')}`).toBe(true);
        const expireAt = Number(await r.call('PEXPIRETIME', c[1]!));
        expect(Number(c[2]!.toString())).toBe(expireAt < 0 ? 0 : expireAt);
        restores++;
      }
      expect(restores).toBe(backup.result.metadata.keys);
      expect(commands.filter((c) => c[0]!.toString() === 'SELECT').map((c) => Number(c[1]!.toString()))).toEqual(ALL_DBS);
    } finally {
      r.disconnect();
    }
  });
});

describe('logical restore', () => {
  it('flush mode: the target ends with the same keys, payloads and TTLs, and its other keys in those databases are gone', async () => {
    const target = await startRedis();
    try {
      const r = new Redis(target.url());
      await r.set('stale', 'must go');
      await r.select(3);
      await r.set('stale-in-empty-db', 'must go too');
      r.disconnect();
      const result = await restoreFromDir(createRedisSource({ url: target.url() }), dir.path, backup.component);
      expect(result.metadata?.keys).toBe(backup.result.metadata.keys);
      expect(result.metadata?.flushed).toEqual(ALL_DBS);
      const after = await fingerprint(target.url(), ALL_DBS);
      expect(compareFingerprints(before, after)).toEqual([]);
      expect(Object.keys(after['0']!)).toContain(BINARY_KEY.toString('hex'));
      expect(await dbsizes(target.url(), ALL_DBS)).toEqual(backup.result.metadata.keyCounts);
    } finally {
      await target.stop();
    }
  });

  it('merge mode keeps keys that are not in the dump and replaces those that are', async () => {
    const target = await startRedis();
    try {
      const r = new Redis(target.url());
      await r.set('extra', 'stays');
      await r.set('str:plain', 'will be replaced');
      r.disconnect();
      await restoreFromDir(createRedisSource({ url: target.url() }), dir.path, backup.component, { options: { mode: 'merge' } });
      const check = new Redis(target.url());
      expect(await check.get('extra')).toBe('stays');
      expect(await check.get('str:plain')).toBe('hello world');
      check.disconnect();
      const sizes = await dbsizes(target.url(), [0]);
      expect(sizes['0']).toBe((backup.result.metadata.keyCounts as Record<string, number>)['0']! + 1);
    } finally {
      await target.stop();
    }
  });

  it('restores only the databases asked for', async () => {
    const target = await startRedis();
    try {
      const result = await restoreFromDir(createRedisSource({ url: target.url() }), dir.path, backup.component, { options: { databases: [1, 5] } });
      const counts = backup.result.metadata.keyCounts as Record<string, number>;
      expect(result.metadata?.keyCounts).toEqual({ '1': counts['1'], '5': counts['5'] });
      expect(await dbsizes(target.url(), [0, 1, 5])).toEqual({ '0': 0, '1': counts['1'], '5': counts['5'] });
    } finally {
      await target.stop();
    }
  });

  it('dry-run reports key counts per database and versions, and writes nothing', async () => {
    const target = await startRedis();
    try {
      const r = new Redis(target.url());
      await r.set('untouched', '1');
      r.disconnect();
      const result = await restoreFromDir(createRedisSource({ url: target.url() }), dir.path, backup.component, { dryRun: true });
      expect(result.metadata?.keyCounts).toEqual(backup.result.metadata.keyCounts);
      expect(result.metadata?.targetVersion).toMatch(/^7\.0\./);
      expect(result.metadata?.targetRdbVersion).toBe(10);
      expect(result.metadata?.dumpRdbVersions).toEqual([10]);
      expect(result.metadata?.rdbVersionTooNew).toBe(false);
      expect(result.plan?.join('\n')).toMatch(/would FLUSHDB database\(s\) 0-15, then RESTORE 85 keys \(db0: 80, db1: 3, db5: 2, 13 empty databases\)/);
      expect(await dbsizes(target.url(), ALL_DBS)).toEqual({ ...Object.fromEntries(ALL_DBS.map((d) => [String(d), 0])), '0': 1 });
    } finally {
      await target.stop();
    }
  });

  it('the artifact restores with the real `redis-cli --pipe`', async () => {
    const target = await startRedis({ password: 'cli-secret' });
    try {
      const output = await new Promise<string>((resolve, reject) => {
        const child = spawn('redis-cli', ['-h', target.host, '-p', String(target.port), '--pipe'], {
          env: { ...process.env, REDISCLI_AUTH: 'cli-secret' },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr.on('data', (d: Buffer) => (text += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`redis-cli exited ${code}: ${text}`))));
        createReadStream(backup.path('dump.resp')).pipe(child.stdin);
      });
      const total = (backup.result.metadata.keys as number) + ALL_DBS.length;
      expect(output).toContain(`errors: 0, replies: ${total}`);
      expect(compareFingerprints(before, await fingerprint(target.url(), ALL_DBS))).toEqual([]);
    } finally {
      await target.stop();
    }
  });

  it('the format is documented as it is: SELECT first, one RESTORE per key', () => {
    const head = readFileSync(backup.path('dump.resp')).subarray(0, 64).toString('latin1');
    expect(head.startsWith('*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*6\r\n$7\r\nRESTORE\r\n')).toBe(true);
    expect(FIXTURE_DATABASES.every((d) => (backup.result.metadata.keyCounts as Record<string, number>)[String(d)]! > 0)).toBe(true);
  });
});
