import { describe, expect, test } from 'vitest';
import { BackupError } from '@scholaria/backup-core';
import { generateHybridIdentity, identityToRecipient } from 'age-encryption';
import { ageCodecOptionsSchema, createAgeCodec, generateAgeIdentity } from '@scholaria/backup-age';

function configError(fn: () => unknown): BackupError {
  try {
    fn();
  } catch (error) {
    expect(BackupError.isInstance(error)).toBe(true);
    return error as BackupError;
  }
  throw new Error('expected a ConfigError');
}

describe('age codec options', () => {
  test('accepts X25519 recipients and identities and fills defaults', async () => {
    const k = await generateAgeIdentity();
    const parsed = ageCodecOptionsSchema.parse({ recipients: [k.recipient], identities: [k.identity] });
    expect(parsed.scryptWorkFactor).toBe(18);
    expect(parsed.recipients).toEqual([k.recipient]);
  });

  test('rejects a post-quantum hybrid recipient, saying the age 1.1 command cannot read it', async () => {
    const pq = await identityToRecipient(await generateHybridIdentity());
    expect(pq.startsWith('age1pq1')).toBe(true);
    const err = configError(() => createAgeCodec({ recipients: [pq] }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('recipients[0]');
    expect(err.message).toContain('post-quantum');
    expect(err.message).toContain('age 1.1');
  });

  test('rejects a post-quantum identity', async () => {
    const pq = await generateHybridIdentity();
    const err = configError(() => createAgeCodec({ identities: [pq] }));
    expect(err.message).toContain('identities[0]');
    expect(err.message).toContain('post-quantum');
    expect(err.message).not.toContain(pq);
  });

  test('a secret key given as a recipient is rejected without repeating it', async () => {
    const k = await generateAgeIdentity();
    const err = configError(() => createAgeCodec({ recipients: [k.identity] }));
    expect(err.message).toContain('secret key');
    expect(err.message).not.toContain(k.identity);
    expect(JSON.stringify(err.toJSON())).not.toContain(k.identity);
  });

  test('a damaged identity is rejected without repeating it', async () => {
    const k = await generateAgeIdentity();
    const broken = `${k.identity.slice(0, -1)}${k.identity.endsWith('Q') ? 'P' : 'Q'}`;
    const err = configError(() => createAgeCodec({ identities: [broken] }));
    expect(err.message).toContain('checksum');
    expect(err.message).not.toContain(broken);
  });

  test('rejects damaged, SSH and plugin recipients with a reason each', async () => {
    const k = await generateAgeIdentity();
    const err = configError(() =>
      createAgeCodec({
        recipients: [
          `${k.recipient.slice(0, -2)}qq`,
          'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5 user@host',
          'age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t',
          'not-a-key',
        ],
      }),
    );
    expect(err.message).toContain('recipients[0]: recipient is not a valid X25519');
    expect(err.message).toContain('recipients[1]: recipient is an SSH public key');
    expect(err.message).toContain('recipients[2]: recipient looks like an age plugin recipient');
    expect(err.message).toContain('recipients[3]: recipient is not an age recipient');
  });

  test('recipients and a passphrase together are refused (age allows one or the other)', async () => {
    const k = await generateAgeIdentity();
    const err = configError(() => createAgeCodec({ recipients: [k.recipient], passphrase: 'correct horse battery staple' }));
    expect(err.message).toContain('passphrase');
    expect(err.message).not.toContain('correct horse');
  });

  test('an empty configuration, unknown option and bad env name each name the field', () => {
    expect(configError(() => createAgeCodec({})).message).toContain('give recipients');
    expect(configError(() => createAgeCodec({ recipient: 'x' } as never)).message).toContain('recipient');
    expect(configError(() => createAgeCodec({ identityEnv: 'BAD-NAME' })).message).toContain('identityEnv');
    expect(configError(() => createAgeCodec({ passphrase: 'x', scryptWorkFactor: 30 })).message).toContain('scryptWorkFactor');
  });

  test('the factory does no I/O: a missing identity file or env var only matters when decoding', () => {
    const codec = createAgeCodec({ identityFile: '/nonexistent/key.txt', identityEnv: 'SCHOLARIA_AGE_TEST_UNSET_VAR' });
    expect(codec.name).toBe('age');
    expect(() => codec.decode()).toThrow(/identityFile \/nonexistent\/key.txt/);
  });
});
