import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { Decrypter, Encrypter, generateHybridIdentity, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { decodeBech32, identityProblem, isAgeIdentity, isAgeRecipient, recipientProblem } from '../src/age-key-format.js';

// The light validator must accept exactly what the age-encryption library accepts for X25519
// keys (it replaces the library at configuration time), so every case is checked against it.
const libAcceptsRecipient = (s: string) => {
  try {
    new Encrypter().addRecipient(s);
    return true;
  } catch {
    return false;
  }
};
const libAcceptsIdentity = (s: string) => {
  try {
    new Decrypter().addIdentity(s);
    return true;
  } catch {
    return false;
  }
};
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

describe('age key format (no age-encryption at configuration time)', () => {
  test('accepts keys age-encryption generates, and agrees with it on every one-character change', async () => {
    for (let k = 0; k < 4; k++) {
      const identity = await generateX25519Identity();
      const recipient = await identityToRecipient(identity);
      expect(isAgeRecipient(recipient)).toBe(true);
      expect(isAgeIdentity(identity)).toBe(true);
      expect(decodeBech32(recipient)?.bytes.length).toBe(32);
      for (let i = 4; i < recipient.length; i++) {
        for (const c of CHARSET) {
          if (c === recipient[i]) continue;
          const changed = recipient.slice(0, i) + c + recipient.slice(i + 1);
          expect(isAgeRecipient(changed), changed).toBe(false);
          expect(libAcceptsRecipient(changed), changed).toBe(false);
        }
      }
      for (let i = 16; i < identity.length; i++) {
        const c = identity[i] === 'Q' ? 'P' : 'Q';
        const changed = identity.slice(0, i) + c + identity.slice(i + 1);
        expect(isAgeIdentity(changed)).toBe(libAcceptsIdentity(changed));
        expect(isAgeIdentity(changed)).toBe(false);
      }
      // Shorter or longer payloads keep a valid-looking prefix but are not 32 bytes.
      expect(isAgeRecipient(recipient.slice(0, -1))).toBe(false);
      expect(isAgeIdentity(`${identity}Q`)).toBe(false);
    }
  });

  test('agrees with age-encryption on arbitrary age1 / AGE-SECRET-KEY-1 strings', () => {
    const tail = fc.string({ unit: fc.constantFrom(...CHARSET.split(''), '1', 'b', 'i', 'o'), minLength: 0, maxLength: 70 });
    fc.assert(
      fc.property(tail, (t) => {
        const r = `age1${t}`;
        if (!/^age1(pq|tag|tagpq)1/.test(r)) expect(isAgeRecipient(r)).toBe(libAcceptsRecipient(r));
        const id = `AGE-SECRET-KEY-1${t.toUpperCase()}`;
        expect(isAgeIdentity(id)).toBe(libAcceptsIdentity(id));
      }),
      { numRuns: 500 },
    );
  });

  test('names what is wrong without repeating the value', async () => {
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    expect(recipientProblem(identity)).toMatch(/secret key, not a recipient/);
    expect(recipientProblem(recipient.toUpperCase())).toMatch(/not an age recipient/);
    expect(recipientProblem(await identityToRecipient(await generateHybridIdentity()))).toMatch(/post-quantum/);
    expect(recipientProblem('age1yubikey1qwerty')).toMatch(/plugin/);
    expect(identityProblem(recipient)).toMatch(/recipient \(public key\)/);
    expect(identityProblem(identity.toLowerCase())).toMatch(/not an age identity/);
    const broken = identity.slice(0, -1) + (identity.endsWith('Q') ? 'P' : 'Q');
    const problem = identityProblem(broken)!;
    expect(problem).toMatch(/checksum/);
    expect(problem).not.toContain(broken.slice(16));
  });
});
