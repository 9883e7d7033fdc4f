import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { createAgeCodec, formatAgeKeyFile, generateAgeIdentity } from '@scholaria/backup-age';
import { collect, collectUntilError, randomData, sha256, sliced } from './helpers.js';

const run = promisify(execFile);
// Several of age's 64 KiB chunks, and not a multiple of one.
const SIZE = 3 * 1024 * 1024 + 777;

let tmp: TempDir;
let plain: Buffer;
let plainFile: string;
const originalPath = process.env['PATH'];

beforeAll(async () => {
  tmp = await makeTempDir('age-binary-');
  plain = randomData(SIZE);
  plainFile = join(tmp.path, 'plain.bin');
  await writeFile(plainFile, plain);
});
afterEach(() => {
  process.env['PATH'] = originalPath;
});
afterAll(async () => {
  await tmp.remove();
});

async function key(name: string): Promise<{ recipient: string; identity: string; file: string }> {
  const pair = await generateAgeIdentity();
  const file = join(tmp.path, `${name}.txt`);
  await writeFile(file, formatAgeKeyFile(pair), { mode: 0o600 });
  return { recipient: pair.recipient, identity: pair.identity, file };
}

async function encryptTo(file: string, implementation: 'js' | 'binary' | 'auto', recipients: string[]): Promise<void> {
  await pipeline(createReadStream(plainFile), createAgeCodec({ recipients, implementation }).encode(), createWriteStream(file));
}

/** Decrypts with the codec's JavaScript decoder (the only decoder it has). */
async function decryptJs(file: string, identityFile: string): Promise<Buffer> {
  const codec = createAgeCodec({ identityFile });
  return collect(createReadStream(file), codec.decode(codec.describe()));
}

async function decryptCli(file: string, identityFile: string): Promise<Buffer> {
  const out = `${file}.cli-out`;
  await run('age', ['-d', '-i', identityFile, '-o', out, file]);
  return readFile(out);
}

describe('age encryption by the age program (implementation binary/auto)', () => {
  test('a file the age program wrote through the codec decrypts with the JavaScript decoder and with `age -d`', async () => {
    const k = await key('ext');
    const file = join(tmp.path, 'ext.age');
    await encryptTo(file, 'binary', [k.recipient]);
    const head = (await readFile(file)).subarray(0, 64).toString('latin1');
    expect(head.startsWith('age-encryption.org/v1\n-> X25519 ')).toBe(true);
    expect(sha256(await decryptJs(file, k.file))).toBe(sha256(plain));
    expect(sha256(await decryptCli(file, k.file))).toBe(sha256(plain));
  });

  test('and the other way: a file the JavaScript encoder wrote decrypts with `age -d` and with the JavaScript decoder', async () => {
    const k = await key('js');
    const file = join(tmp.path, 'js.age');
    await encryptTo(file, 'js', [k.recipient]);
    expect(sha256(await decryptCli(file, k.file))).toBe(sha256(plain));
    expect(sha256(await decryptJs(file, k.file))).toBe(sha256(plain));
  });

  test('encrypted by the program to two recipients, either key opens it', async () => {
    const a = await key('two-a');
    const b = await key('two-b');
    const file = join(tmp.path, 'two.age');
    await encryptTo(file, 'binary', [a.recipient, b.recipient]);
    for (const k of [a, b]) {
      expect(sha256(await decryptJs(file, k.file))).toBe(sha256(plain));
      expect(sha256(await decryptCli(file, k.file))).toBe(sha256(plain));
    }
  });

  test('the program encodes uneven input slices and empty input like the JavaScript encoder (both decrypt to the input)', async () => {
    const k = await key('slices');
    const dec = createAgeCodec({ identities: [k.identity] });
    for (const data of [plain.subarray(0, 65536 * 2), Buffer.alloc(0), plain.subarray(0, 10)]) {
      for (const implementation of ['binary', 'js'] as const) {
        const enc = await collect(sliced(Buffer.from(data)), createAgeCodec({ recipients: [k.recipient], implementation }).encode());
        const back = await collect(sliced(enc), dec.decode(dec.describe()));
        expect(sha256(back)).toBe(sha256(data));
      }
    }
  });

  test("'auto' falls back to JavaScript when no age program is on PATH; 'binary' then says TOOL_MISSING", async () => {
    const k = await key('nopath');
    const emptyBin = join(tmp.path, 'empty-bin');
    await run('mkdir', ['-p', emptyBin]);
    process.env['PATH'] = emptyBin;
    const file = join(tmp.path, 'fallback.age');
    await encryptTo(file, 'auto', [k.recipient]);
    await expect(createAgeCodec({ recipients: [k.recipient], implementation: 'auto' }).externalEncoder!()).resolves.toBeUndefined();
    let thrown: unknown;
    try {
      createAgeCodec({ recipients: [k.recipient], implementation: 'binary' }).encode();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'TOOL_MISSING' });
    expect(String((thrown as Error).message)).toContain('"age"');
    process.env['PATH'] = originalPath;
    expect(sha256(await decryptCli(file, k.file))).toBe(sha256(plain));
    expect(sha256(await decryptJs(file, k.file))).toBe(sha256(plain));
  });

  test("'auto' does not use a program named age that does not write age files", async () => {
    const k = await key('fake');
    const fakeBin = join(tmp.path, 'fake-bin');
    await run('mkdir', ['-p', fakeBin]);
    const fake = join(fakeBin, 'age');
    await writeFile(fake, '#!/bin/sh\ncat\n');
    await chmod(fake, 0o755);
    process.env['PATH'] = `${fakeBin}:${originalPath}`;
    const file = join(tmp.path, 'not-fake.age');
    await encryptTo(file, 'auto', [k.recipient]);
    process.env['PATH'] = originalPath;
    expect(sha256(await decryptCli(file, k.file))).toBe(sha256(plain));
  });

  test('a program that fails half-way fails the stream with CODEC_FAILED instead of a short file', async () => {
    const k = await key('dies');
    const bin = join(tmp.path, 'dying-bin');
    await run('mkdir', ['-p', bin]);
    const dying = join(bin, 'age-dies');
    // Encrypts the first MiB with the real program, then exits 3 if there was more: the probe's
    // few bytes pass, a real run fails after part of its output.
    const age = (await run('sh', ['-c', 'command -v age'])).stdout.trim();
    await writeFile(dying, `#!/bin/sh\nhead -c 1048576 | '${age}' "$@" || exit 1\nif [ "$(head -c 1 | wc -c)" -gt 0 ]; then exit 3; fi\n`);
    await chmod(dying, 0o755);
    const codec = createAgeCodec({ recipients: [k.recipient], implementation: 'binary', binary: dying });
    // The probe's few bytes pass; the real run exits 3.
    const { out, error } = await collectUntilError(sliced(plain), codec.encode());
    expect(out.length).toBeGreaterThan(0);
    expect(error).toMatchObject({ code: 'CODEC_FAILED' });
    expect(String((error as Error).message)).toContain('exited with code 3');
  });

  test("passphrase mode never runs the program, and 'binary' with a passphrase is refused at construction", async () => {
    const codec = createAgeCodec({ passphrase: 'correct horse battery staple', scryptWorkFactor: 10 });
    expect(await codec.externalEncoder?.()).toBeUndefined();
    const enc = await collect(sliced(plain.subarray(0, 100_000)), codec.encode());
    const back = await collect(sliced(enc), codec.decode(codec.describe()));
    expect(sha256(back)).toBe(sha256(plain.subarray(0, 100_000)));
    expect(() => createAgeCodec({ passphrase: 'x', implementation: 'binary' })).toThrow(/binary.*passphrase/);
  });

  test('the external encoder names the program and passes only public recipients as arguments', async () => {
    const k = await key('args');
    const external = await createAgeCodec({ recipients: [k.recipient], identities: [k.identity] }).externalEncoder!();
    expect(external).toBeDefined();
    expect(external!.command).toBe('age');
    expect(external!.args).toEqual(['-r', k.recipient]);
    expect(JSON.stringify(external)).not.toContain('AGE-SECRET-KEY');
  });
});
