import { execFile, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { ageKeyId, createAgeCodec, formatAgeKeyFile, generateAgeIdentity } from '@scholaria/backup-age';
import { collectUntilError, randomData, sha256 } from './helpers.js';

const run = promisify(execFile);
const SIZE = 12 * 1024 * 1024 + 4321;

let tmp: TempDir;
let plainFile: string;
let plainHash: string;

beforeAll(async () => {
  tmp = await makeTempDir('age-cli-');
  plainFile = join(tmp.path, 'artifact.bin');
  const data = randomData(SIZE);
  plainHash = sha256(data);
  await writeFile(plainFile, data);
});
afterAll(async () => {
  await tmp.remove();
});

/** age-keygen writes the key file; its stderr line is "Public key: age1...". */
async function cliKey(name: string): Promise<{ file: string; recipient: string }> {
  const file = join(tmp.path, name);
  await run('age-keygen', ['-o', file]);
  const { stdout } = await run('age-keygen', ['-y', file]);
  return { file, recipient: stdout.trim() };
}

async function fileHash(path: string): Promise<string> {
  return sha256(await readFile(path));
}

describe('interop with the age command (age 1.1)', () => {
  test('the tool is the one the docs talk about', async () => {
    const { stdout } = await run('age', ['--version']);
    expect(stdout.trim()).toMatch(/^v?1\.\d+\.\d+/);
  });

  test('library-encrypted multi-MB artifact decrypts with `age -d -i key.txt`', async () => {
    const key = await generateAgeIdentity();
    const keyFile = join(tmp.path, 'lib-key.txt');
    await writeFile(keyFile, formatAgeKeyFile(key), { mode: 0o600 });
    const codec = createAgeCodec({ recipients: [key.recipient] });
    const encrypted = join(tmp.path, 'artifact.bin.age');
    await pipeline(createReadStream(plainFile), codec.encode(), createWriteStream(encrypted));
    const out = join(tmp.path, 'from-lib.out');
    await run('age', ['-d', '-i', keyFile, '-o', out, encrypted]);
    expect(await fileHash(out)).toBe(plainHash);
  });

  test('`age -r` output decodes with the codec reading the age-keygen key file', async () => {
    const key = await cliKey('cli-key.txt');
    const encrypted = join(tmp.path, 'from-cli.age');
    await run('age', ['-r', key.recipient, '-o', encrypted, plainFile]);
    const codec = createAgeCodec({ recipients: [key.recipient], identityFile: key.file });
    const out = join(tmp.path, 'from-cli.out');
    await pipeline(createReadStream(encrypted), codec.decode(codec.describe()), createWriteStream(out));
    expect(await fileHash(out)).toBe(plainHash);
  });

  test('a file `age` encrypted to two recipients opens with either key; the codec output to two opens with either in `age`', async () => {
    const a = await cliKey('two-a.txt');
    const b = await cliKey('two-b.txt');
    const recipientsFile = join(tmp.path, 'recipients.txt');
    await writeFile(recipientsFile, `# backup keys\n${a.recipient}\n${b.recipient}\n`);
    const fromCli = join(tmp.path, 'two-cli.age');
    await run('age', ['-R', recipientsFile, '-o', fromCli, plainFile]);
    for (const k of [a, b]) {
      const codec = createAgeCodec({ identityFile: k.file });
      const out = join(tmp.path, `two-cli-${k.recipient.slice(-6)}.out`);
      await pipeline(createReadStream(fromCli), codec.decode(), createWriteStream(out));
      expect(await fileHash(out)).toBe(plainHash);
    }

    const fromLib = join(tmp.path, 'two-lib.age');
    await pipeline(createReadStream(plainFile), createAgeCodec({ recipients: [a.recipient, b.recipient] }).encode(), createWriteStream(fromLib));
    for (const k of [a, b]) {
      const out = join(tmp.path, `two-lib-${k.recipient.slice(-6)}.out`);
      await run('age', ['-d', '-i', k.file, '-o', out, fromLib]);
      expect(await fileHash(out)).toBe(plainHash);
    }
  });

  test('a file `age` encrypted to another key fails with DECRYPT_FAILED and writes no plaintext', async () => {
    const right = await cliKey('right.txt');
    const wrong = await cliKey('wrong.txt');
    const encrypted = join(tmp.path, 'other.age');
    await run('age', ['-r', right.recipient, '-o', encrypted, plainFile]);
    const codec = createAgeCodec({ identityFile: wrong.file });
    const record = { name: 'age', params: { recipients: [ageKeyId(right.recipient)] } };
    const { out, error } = await collectUntilError(createReadStream(encrypted), codec.decode(record));
    expect(error).toMatchObject({ code: 'DECRYPT_FAILED' });
    expect(String((error as Error).message)).toContain(ageKeyId(right.recipient));
    expect(out.length).toBe(0);
  });

  test('the documented key id recipe matches ageKeyId', async () => {
    const key = await cliKey('id.txt');
    // age-keygen -y key.txt | tr -d '\n' | sha256sum | cut -c1-16, one step at a time without a shell
    const { stdout: pub } = await run('age-keygen', ['-y', key.file]);
    const sum = spawnSync('sha256sum', [], { input: pub.replace(/\n/g, ''), encoding: 'utf8' });
    expect(sum.status).toBe(0);
    expect(`x25519:${sum.stdout.slice(0, 16)}`).toBe(ageKeyId(key.recipient));
  });
});
