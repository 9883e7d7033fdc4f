import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createBackupEngine, createGzipCodec, type BackupEngineOptions, type Manifest } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { ageKeyId, createAgeCodec, formatAgeKeyFile, generateAgeIdentity, type AgeKeyPair } from '@scholaria/backup-age';
import { sha256 } from './helpers.js';

const BIG = 6 * 1024 * 1024 + 777;
const SMALL = 'rows of the live database\n'.repeat(200);
const T1 = new Date('2026-11-26T02:00:00Z');
const T2 = new Date('2026-11-27T02:00:00Z');

let k1: AgeKeyPair;
let k2: AgeKeyPair;
let tmp: TempDir;

beforeAll(async () => {
  [k1, k2] = await Promise.all([generateAgeIdentity(), generateAgeIdentity()]);
  tmp = await makeTempDir('age-engine-');
});
afterAll(async () => {
  await tmp.remove();
});

let dirCount = 0;
async function freshRoot(): Promise<string> {
  return join(tmp.path, `storage-${++dirCount}`);
}

function source() {
  return createTestSource({ name: 'postgres', files: { 'scholaria.sql': SMALL }, generated: { 'big.dump': BIG } });
}

function engine(root: string, overrides: Partial<BackupEngineOptions> & Pick<BackupEngineOptions, 'sources'>) {
  return createBackupEngine({ storage: createFsStorage({ root }), clock: () => T1, ...overrides });
}

async function backupWith(root: string, codecs: BackupEngineOptions['codecs'], at: Date): Promise<Manifest> {
  const result = await engine(root, { sources: [source()], codecs, clock: () => at }).backup({ tier: 'daily' });
  expect(result.error).toBeUndefined();
  expect(result.status).toBe('complete');
  return result.manifest!;
}

describe('age through the engine with fs storage', () => {
  test('gzip then age: stored bytes are age files, the manifest records key ids only, restore gives the data back', async () => {
    const root = await freshRoot();
    const codec = createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });
    const manifest = await backupWith(root, [createGzipCodec(), codec], T1);

    expect(manifest.encryption).toEqual({ codec: 'age', recipients: [ageKeyId(k1.recipient)] });
    const artifacts = manifest.components.flatMap((c) => c.artifacts);
    expect(artifacts.map((a) => a.path).sort()).toEqual(['postgres/big.dump.gz.age', 'postgres/scholaria.sql.gz.age']);
    for (const a of artifacts) {
      expect(a.codecs.map((c) => c.name)).toEqual(['gzip', 'age']);
      expect(a.codecs[1]!.params).toMatchObject({ recipients: [ageKeyId(k1.recipient)] });
      expect(a.manualRestore).toContain('age -d -i KEY_FILE');
      const stored = await readFile(join(root, manifest.id, a.path));
      expect(stored.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
      expect(sha256(stored)).toBe(a.sha256);
    }
    const manifestText = await readFile(join(root, manifest.id, 'manifest.json'), 'utf8');
    expect(manifestText).not.toContain(k1.identity);
    expect(manifestText).not.toContain('AGE-SECRET-KEY');

    const src = source();
    src.data.set('scholaria.sql', Buffer.from('damaged live data'));
    const restored = await engine(root, { sources: [src], codecs: [createGzipCodec(), codec] }).restore({ ref: 'latest' });
    expect(restored.status).toBe('ok');
    expect(src.calls.restore).toBe(1);
    expect(src.data.get('scholaria.sql')?.toString()).toBe(SMALL);
    expect(src.received.get('big.dump')).toEqual(src.expectedDigest('big.dump'));
  });

  test('without the key: `sha256sum -c SHA256SUMS` passes, engine.verify passes, and `age -d -i key.txt | gunzip` recovers the artifact', async () => {
    const root = await freshRoot();
    const encryptOnly = createAgeCodec({ recipients: [k1.recipient] });
    const manifest = await backupWith(root, [createGzipCodec(), encryptOnly], T1);
    const setDir = join(root, manifest.id);

    const sums = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: setDir, encoding: 'utf8' });
    expect(sums.status).toBe(0);
    expect(sums.stdout).toContain('postgres/big.dump.gz.age: OK');

    const verified = await engine(root, { sources: [source()], codecs: [createGzipCodec(), encryptOnly] }).verify({ ref: manifest.id });
    expect(verified.ok).toBe(true);

    const keyFile = join(tmp.path, 'engine-key1.txt');
    await writeFile(keyFile, formatAgeKeyFile(k1), { mode: 0o600 });
    const out = join(tmp.path, 'big.dump.gz');
    const age = spawnSync('age', ['-d', '-i', keyFile, '-o', out, join(setDir, 'postgres/big.dump.gz.age')], { encoding: 'utf8' });
    expect(age.stderr).toBe('');
    expect(age.status).toBe(0);
    const plain = gunzipSync(await readFile(out));
    expect({ sha256: sha256(plain), size: plain.length }).toEqual(source().expectedDigest('big.dump'));
  });

  test('a restore with the wrong identity fails before the source restore runs, naming the recipients', async () => {
    const root = await freshRoot();
    await backupWith(root, [createGzipCodec(), createAgeCodec({ recipients: [k1.recipient] })], T1);
    const src = source();
    const before = src.data.get('scholaria.sql');
    const result = await engine(root, {
      sources: [src],
      codecs: [createGzipCodec(), createAgeCodec({ recipients: [k2.recipient], identities: [k2.identity] })],
    }).restore({ ref: 'latest' });
    expect(result.status).toBe('failed');
    expect(src.calls.restore).toBe(0);
    expect(src.data.get('scholaria.sql')).toBe(before);
    const failed = result.verified.filter((v) => !v.ok);
    expect(failed.length).toBe(2);
    for (const f of failed) {
      expect(f.error).toContain('wrong key');
      expect(f.error).toContain(ageKeyId(k1.recipient));
    }
    const error = result.components[0]!.error!;
    expect(error.message).toContain(ageKeyId(k1.recipient));
    expect(error.message).not.toContain(k2.identity);
  });

  test('an encrypt-only codec cannot restore and says which key is missing', async () => {
    const root = await freshRoot();
    const encryptOnly = createAgeCodec({ recipients: [k1.recipient] });
    await backupWith(root, [createGzipCodec(), encryptOnly], T1);
    const src = source();
    const result = await engine(root, { sources: [src], codecs: [createGzipCodec(), encryptOnly] }).restore({ ref: 'latest' });
    expect(result.status).toBe('failed');
    expect(src.calls.restore).toBe(0);
    expect(result.verified.every((v) => !v.ok && /no identity/.test(v.error ?? ''))).toBe(true);
  });

  test('a damaged stored artifact fails the restore before the source restore runs', async () => {
    const root = await freshRoot();
    const codec = createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });
    const manifest = await backupWith(root, [createGzipCodec(), codec], T1);
    const file = join(root, manifest.id, 'postgres/big.dump.gz.age');
    const bytes = await readFile(file);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    await writeFile(file, bytes);
    const src = source();
    const result = await engine(root, { sources: [src], codecs: [createGzipCodec(), codec] }).restore({ ref: 'latest' });
    expect(result.status).toBe('failed');
    expect(src.calls.restore).toBe(0);
    expect(result.verified.find((v) => v.path === 'postgres/big.dump.gz.age')?.ok).toBe(false);
  });

  test('key rotation: set A (key 1) and set B (key 2) both restore when the old key is given as a decoder', async () => {
    const root = await freshRoot();
    const setA = await backupWith(root, [createGzipCodec(), createAgeCodec({ recipients: [k1.recipient] })], T1);
    const setB = await backupWith(root, [createGzipCodec(), createAgeCodec({ recipients: [k2.recipient] })], T2);
    expect(setA.encryption?.recipients).toEqual([ageKeyId(k1.recipient)]);
    expect(setB.encryption?.recipients).toEqual([ageKeyId(k2.recipient)]);

    const rotated = (src: ReturnType<typeof source>, decoders: BackupEngineOptions['decoders']) =>
      engine(root, {
        sources: [src],
        codecs: [createGzipCodec(), createAgeCodec({ recipients: [k2.recipient], identities: [k2.identity] })],
        decoders,
        clock: () => T2,
      });

    for (const id of [setA.id, setB.id]) {
      const src = source();
      src.data.clear();
      const result = await rotated(src, [createAgeCodec({ identities: [k1.identity] })]).restore({ ref: id });
      expect(result.status).toBe('ok');
      expect(src.data.get('scholaria.sql')?.toString()).toBe(SMALL);
      expect(src.received.get('big.dump')).toEqual(src.expectedDigest('big.dump'));
    }

    // Without the old key, set A is refused (naming key 1) and set B still restores.
    const srcA = source();
    const a = await rotated(srcA, []).restore({ ref: setA.id });
    expect(a.status).toBe('failed');
    expect(srcA.calls.restore).toBe(0);
    expect(a.verified.some((v) => v.error?.includes(ageKeyId(k1.recipient)))).toBe(true);
    const b = await rotated(source(), []).restore({ ref: setB.id });
    expect(b.status).toBe('ok');
  });
});
