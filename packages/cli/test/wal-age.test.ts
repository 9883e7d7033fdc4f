import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzipCodec } from '@scholaria/backup-core';
import { createAgeCodec, generateAgeIdentity } from '@scholaria/backup-age';
import { WalArchive } from '@scholaria/backup-postgres/wal-archive';
import { createMemoryStorage, makeTempDir } from '@scholaria/backup-testkit';
import { describe, expect, it } from 'vitest';

// Lives in the CLI package, which depends on both postgres and age (as wal-push uses them).
describe('age-encrypted WAL archive', () => {
  it('push encrypts to the recipient; fetch decrypts only with the identity', async () => {
    const dir = await makeTempDir('wal-age-');
    try {
      const key = await generateAgeIdentity();
      const other = await generateAgeIdentity();
      const storage = createMemoryStorage();
      const name = '00000001000000000000000A';
      const bytes = randomBytes(1 << 20);
      await writeFile(join(dir.path, name), bytes);

      // The archive_command side knows only the public recipient.
      const pusher = new WalArchive({ storages: [storage], codecs: [createGzipCodec(), createAgeCodec({ recipients: [key.recipient] })] });
      expect((await pusher.push(join(dir.path, name))).outcome).toBe('stored');
      const keys = [...storage.objects.keys()].sort();
      expect(keys).toEqual([`wal/${name}.gz.age`, `wal/${name}.json`]);
      const stored = storage.objects.get(`wal/${name}.gz.age`)!.body;
      expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
      expect(stored.includes(bytes.subarray(0, 64))).toBe(false);

      // The wrong identity cannot fetch, and nothing takes the name %p.
      const wrong = new WalArchive({ storages: [storage], codecs: [createGzipCodec(), createAgeCodec({ recipients: [other.recipient], identities: [other.identity] })] });
      await expect(wrong.fetch(name, join(dir.path, 'wrong'))).rejects.toThrow(/wrong key/);
      await expect(readFile(join(dir.path, 'wrong'))).rejects.toThrow(/ENOENT/);

      // The restore_command side has the identity: the file comes back byte for byte.
      const fetcher = new WalArchive({ storages: [storage], codecs: [createGzipCodec(), createAgeCodec({ recipients: [key.recipient], identities: [key.identity] })] });
      expect(await fetcher.fetch(name, join(dir.path, 'out'))).toBe(true);
      expect((await readFile(join(dir.path, 'out'))).equals(bytes)).toBe(true);
    } finally {
      await dir.remove();
    }
  });
});
