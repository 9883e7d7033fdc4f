import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BackupError } from '@scholaria/backup-core';
import { makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { ageKeyId, createAgeCodec, formatAgeKeyFile, generateAgeIdentity, type AgeKeyPair } from '@scholaria/backup-age';
import { collect, collectUntilError, randomData, sha256, sliced } from './helpers.js';

const CHUNK = 64 * 1024;
const CHUNK_CT = CHUNK + 16;

let k1: AgeKeyPair;
let k2: AgeKeyPair;
let k3: AgeKeyPair;
let tmp: TempDir;

beforeAll(async () => {
  [k1, k2, k3] = await Promise.all([generateAgeIdentity(), generateAgeIdentity(), generateAgeIdentity()]);
  tmp = await makeTempDir('age-codec-');
});
afterAll(async () => {
  await tmp.remove();
});

async function encrypt(codec: ReturnType<typeof createAgeCodec>, data: Buffer): Promise<Buffer> {
  return collect(sliced(data), codec.encode());
}

function expectDecryptFailed(error: unknown): BackupError {
  expect(BackupError.isInstance(error)).toBe(true);
  const e = error as BackupError;
  expect(e.code).toBe('DECRYPT_FAILED');
  expect(e.hint).toBeTruthy();
  return e;
}

describe('age codec', () => {
  test('has the pinned shape', () => {
    const codec = createAgeCodec({ recipients: [k1.recipient] });
    expect(codec).toMatchObject({ specVersion: 'v1', name: 'age', kind: 'encryption', extension: '.age', manualDecode: 'age -d -i KEY_FILE' });
  });

  test.each([
    ['empty', 0],
    ['one byte', 1],
    ['small', 1000],
    ['exactly one age chunk', CHUNK],
    ['one chunk plus one byte', CHUNK + 1],
    ['multi-MB', 5 * 1024 * 1024 + 123],
  ])('round trip: %s', async (_label, size) => {
    const codec = createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });
    const data = randomData(size);
    const ciphertext = await encrypt(codec, data);
    expect(ciphertext.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    expect(ciphertext.includes(data.subarray(0, Math.min(64, size))) && size >= 16).toBe(false);
    const plain = await collect(sliced(ciphertext), codec.decode(codec.describe()));
    expect(plain.length).toBe(size);
    expect(sha256(plain)).toBe(sha256(data));
  });

  test('the same codec encodes and decodes several streams at once', async () => {
    const codec = createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });
    const inputs = [randomData(300_000), randomData(10), randomData(0)];
    const outputs = await Promise.all(inputs.map(async (d) => collect(Readable.from([d]), codec.encode(), codec.decode(codec.describe()))));
    outputs.forEach((o, i) => expect(sha256(o)).toBe(sha256(inputs[i]!)));
  });

  test('describe() records key ids of the recipients and never a key', () => {
    const codec = createAgeCodec({ recipients: [k1.recipient, k2.recipient], identities: [k1.identity, k3.identity] });
    const record = codec.describe();
    expect(record).toEqual({ name: 'age', params: { format: 'age-encryption.org/v1', recipients: [ageKeyId(k1.recipient), ageKeyId(k2.recipient)] } });
    expect(ageKeyId(k1.recipient)).toMatch(/^x25519:[0-9a-f]{16}$/);
    const json = JSON.stringify(record);
    for (const secret of [k1.identity, k2.identity, k3.identity, k1.recipient, k2.recipient]) expect(json).not.toContain(secret);
    expect(JSON.stringify(codec)).not.toContain(k1.identity);
  });

  test('several recipients: each identity alone decrypts, an unrelated one does not', async () => {
    const enc = createAgeCodec({ recipients: [k1.recipient, k2.recipient] });
    const data = randomData(200_000);
    const ciphertext = await encrypt(enc, data);
    for (const k of [k1, k2]) {
      const dec = createAgeCodec({ identities: [k.identity] });
      expect(sha256(await collect(sliced(ciphertext), dec.decode(enc.describe())))).toBe(sha256(data));
    }
    const other = createAgeCodec({ identities: [k3.identity] });
    const { out, error } = await collectUntilError(sliced(ciphertext), other.decode(enc.describe()));
    expectDecryptFailed(error);
    expect(out.length).toBe(0);
  });

  test('wrong key: DECRYPT_FAILED naming the recipients it was encrypted to and what to do', async () => {
    const enc = createAgeCodec({ recipients: [k1.recipient, k2.recipient] });
    const ciphertext = await encrypt(enc, randomData(100_000));
    const wrong = createAgeCodec({ identities: [k3.identity] });
    const { out, error } = await collectUntilError(sliced(ciphertext), wrong.decode(enc.describe()));
    const e = expectDecryptFailed(error);
    expect(out.length).toBe(0);
    expect(e.message).toContain('wrong key');
    expect(e.message).toContain(ageKeyId(k1.recipient));
    expect(e.message).toContain(ageKeyId(k2.recipient));
    expect(e.message).toContain(ageKeyId(k3.recipient));
    expect(e.hint).toContain('decoders');
    expect(e.message).not.toContain(k3.identity);
    expect(e.hint).not.toContain(k3.identity);
  });

  test('an encrypt-only codec refuses to decode and says which recipients are needed', async () => {
    const enc = createAgeCodec({ recipients: [k1.recipient] });
    let error: unknown;
    try {
      enc.decode(enc.describe());
    } catch (e) {
      error = e;
    }
    const e = expectDecryptFailed(error);
    expect(e.message).toContain(ageKeyId(k1.recipient));
    expect(e.message).toContain('no identity');
  });

  test('a decrypt-only codec refuses to encode', () => {
    const dec = createAgeCodec({ identities: [k1.identity] });
    expect(() => dec.encode()).toThrow(/no recipients/);
  });

  describe('corruption is never passed off as complete plaintext', () => {
    const data = randomData(3 * CHUNK + 5000);
    let ciphertext: Buffer;
    let headerEnd: number;
    const codec = () => createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });

    beforeAll(async () => {
      ciphertext = await encrypt(codec(), data);
      // header ends after the "--- <mac>\n" line; then 16 bytes of nonce, then the payload
      headerEnd = ciphertext.indexOf('\n---') + 1;
      headerEnd = ciphertext.indexOf('\n', headerEnd) + 1;
      expect(ciphertext.length).toBe(headerEnd + 16 + 3 * CHUNK_CT + 5000 + 16);
    });

    const payload = () => headerEnd + 16;
    const cuts: [string, () => number][] = [
      ['empty file', () => 0],
      ['inside the header', () => 40],
      ['inside the nonce', () => headerEnd + 8],
      ['right after the nonce', () => payload()],
      ['inside the first chunk', () => payload() + 1000],
      ['at a chunk boundary', () => payload() + 2 * CHUNK_CT],
      ['one byte short', () => ciphertext.length - 1],
    ];
    test.each(cuts)('truncated %s', async (_label, at) => {
      const c = codec();
      const { out, error } = await collectUntilError(sliced(ciphertext.subarray(0, at())), c.decode(c.describe()));
      const e = expectDecryptFailed(error);
      expect(e.message).toMatch(/truncated|damaged/);
      expect(out.length).toBeLessThan(data.length);
      // whatever came out before the error is authenticated plaintext, chunk by chunk
      expect(out.equals(data.subarray(0, out.length))).toBe(true);
      expect(out.length % CHUNK).toBe(0);
    });

    test('trailing garbage after the last chunk is rejected', async () => {
      const c = codec();
      const { error } = await collectUntilError(sliced(Buffer.concat([ciphertext, Buffer.from('x')])), c.decode(c.describe()));
      expectDecryptFailed(error);
    });

    const flips: [string, () => number][] = [
      ['in the version line', () => 3],
      ['in the recipient stanza body', () => ciphertext.indexOf('\n---') - 3],
      ['in the header MAC', () => headerEnd - 5],
      ['in the nonce', () => headerEnd + 3],
      ['in the first chunk', () => payload() + 10],
      ['in the last chunk tag', () => ciphertext.length - 2],
    ];
    test.each(flips)('flipped byte %s', async (_label, at) => {
      const c = codec();
      const bad = Buffer.from(ciphertext);
      const i = at();
      bad[i] = bad[i]! ^ 0x01;
      const { out, error } = await collectUntilError(sliced(bad), c.decode(c.describe()));
      const e = expectDecryptFailed(error);
      expect(e.message).toMatch(/authentication|damaged|modified/);
      expect(e.message).not.toContain('wrong key');
      expect(out.length).toBeLessThan(data.length);
      expect(out.equals(data.subarray(0, out.length))).toBe(true);
    });
  });

  test('passphrase mode round trip; wrong passphrase fails with DECRYPT_FAILED', async () => {
    const enc = createAgeCodec({ passphrase: 'gentle-orbit-quarry-lantern-mosaic', scryptWorkFactor: 12 });
    expect(enc.describe().params).toEqual({ format: 'age-encryption.org/v1', recipients: ['scrypt'] });
    expect(JSON.stringify(enc.describe())).not.toContain('gentle');
    const data = randomData(150_000);
    const ciphertext = await encrypt(enc, data);
    expect(ciphertext.toString('latin1', 0, 200)).toContain('-> scrypt ');
    expect(sha256(await collect(sliced(ciphertext), enc.decode(enc.describe())))).toBe(sha256(data));

    const wrong = createAgeCodec({ passphrase: 'not-the-passphrase' });
    const { error } = await collectUntilError(sliced(ciphertext), wrong.decode(enc.describe()));
    const e = expectDecryptFailed(error);
    expect(e.message).toContain('passphrase');
    expect(e.hint).toContain('passphrase');
    expect(e.message).not.toContain('not-the-passphrase');
  });

  test('passphraseEnv is read when encoding, not at construction', async () => {
    const name = 'SCHOLARIA_AGE_TEST_PASSPHRASE';
    delete process.env[name];
    const codec = createAgeCodec({ passphraseEnv: name, scryptWorkFactor: 10 });
    expect(() => codec.encode()).toThrow(new RegExp(name));
    process.env[name] = 'plover-ember-sunlit-drawer';
    try {
      const data = randomData(1000);
      expect(sha256(await collect(sliced(data), codec.encode(), codec.decode(codec.describe())))).toBe(sha256(data));
    } finally {
      delete process.env[name];
    }
  });

  test('identityFile in age-keygen format (comments ignored) decrypts', async () => {
    const file = join(tmp.path, 'key.txt');
    await writeFile(file, `\n${formatAgeKeyFile(k2)}\n# another comment\n`, { mode: 0o600 });
    const enc = createAgeCodec({ recipients: [k2.recipient] });
    const dec = createAgeCodec({ identityFile: file });
    const data = randomData(70_000);
    expect(sha256(await collect(sliced(data), enc.encode(), dec.decode(enc.describe())))).toBe(sha256(data));
  });

  test('identityFile problems name the file and line, never the content', async () => {
    const file = join(tmp.path, 'bad-key.txt');
    const pub = k1.recipient;
    await writeFile(file, `# created: now\n${pub}\nAGE-SECRET-KEY-1NOTVALIDNOTVALID\n`, { mode: 0o600 });
    const dec = createAgeCodec({ identityFile: file });
    let error: unknown;
    try {
      dec.decode();
    } catch (e) {
      error = e;
    }
    expect(BackupError.isInstance(error)).toBe(true);
    const e = error as BackupError;
    expect(e.code).toBe('INVALID_KEY');
    expect(e.message).toContain(`${file} line 2 is a recipient`);
    expect(e.message).toContain(`${file} line 3 is not a valid X25519 age identity`);
    expect(e.message).not.toContain('NOTVALID');
  });

  test('identityEnv is read at call time, so a key exported later still works; identities from all sources are tried', async () => {
    const name = 'SCHOLARIA_AGE_TEST_IDENTITY';
    delete process.env[name];
    const dec = createAgeCodec({ identities: [k1.identity], identityEnv: name });
    expect(() => dec.decode()).toThrow(new RegExp(`${name} \\(identityEnv\\) is not set`));
    process.env[name] = `# public key: ${k3.recipient}\n${k3.identity}\n${k2.identity}`;
    try {
      const data = randomData(10_000);
      for (const k of [k1, k2, k3]) {
        const enc = createAgeCodec({ recipients: [k.recipient] });
        expect(sha256(await collect(sliced(data), enc.encode(), dec.decode(enc.describe())))).toBe(sha256(data));
      }
    } finally {
      delete process.env[name];
    }
  });

  test('decode without a record still works and a wrong key then says the recipients are unknown', async () => {
    const enc = createAgeCodec({ recipients: [k1.recipient] });
    const ciphertext = await encrypt(enc, randomData(5000));
    const ok = createAgeCodec({ identities: [k1.identity] });
    expect((await collect(sliced(ciphertext), ok.decode())).length).toBe(5000);
    const wrong = createAgeCodec({ identities: [k2.identity] });
    const { error } = await collectUntilError(sliced(ciphertext), wrong.decode());
    expect(expectDecryptFailed(error).message).toContain('not recorded');
  });

  test('destroying or aborting mid-stream tears everything down without unhandled rejections', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const codec = createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });
      const enc = codec.encode();
      enc.on('error', () => {});
      enc.write(randomData(300_000));
      enc.destroy(new Error('stop'));
      await new Promise((resolve) => enc.once('close', resolve));

      const dec = codec.decode(codec.describe());
      dec.destroy();
      await new Promise((resolve) => dec.once('close', resolve));

      const controller = new AbortController();
      let seen = 0;
      const endless = new Readable({
        read() {
          this.push(Buffer.alloc(65_536, 1));
        },
      });
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          if (seen > 2_000_000) controller.abort();
          cb();
        },
      });
      await expect(pipeline(endless, codec.encode(), codec.decode(codec.describe()), sink, { signal: controller.signal })).rejects.toThrow(/abort/i);

      codec.encode();
      codec.decode(codec.describe());
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('a record from another codec is refused', () => {
    const codec = createAgeCodec({ identities: [k1.identity] });
    expect(() => codec.decode({ name: 'gzip' })).toThrow(/"gzip" codec/);
  });

  test('constant memory: a 256 MiB stream encrypts and decrypts with bounded RSS growth', async () => {
    const codec = createAgeCodec({ recipients: [k1.recipient], identities: [k1.identity] });
    const total = 256 * 1024 * 1024;
    const block = randomData(1 << 20);
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= total) return void this.push(null);
        sent += block.length;
        this.push(block);
      },
    });
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let received = 0;
    await pipeline(
      source,
      codec.encode(),
      codec.decode(codec.describe()),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          received += chunk.length;
          peak = Math.max(peak, process.memoryUsage().rss);
          cb();
        },
      }),
    );
    expect(received).toBe(total);
    const growthMiB = (peak - before) / 2 ** 20;
    console.log(`age 256 MiB round trip: RSS before ${(before / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB, growth ${growthMiB.toFixed(1)} MiB`);
    // Buffering the artifact would need at least 256 MiB; a streaming codec stays far below.
    expect(growthMiB).toBeLessThan(128);
  }, 300_000);
});
