import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { Decrypter, Encrypter } from 'age-encryption';
import { BackupError, type Codec, type CodecRecord, type ExternalEncoder } from '@scholaria/backup-core';
import { PASSPHRASE_KEY_ID, ageKeyId, ageRecipientOf, parseIdentityText } from './age-keys.js';
import { parseAgeCodecOptions, type AgeCodecOptions, type ResolvedAgeCodecOptions } from './age-options.js';
import { webTransformDuplex, type StreamPhase } from './web-stream-duplex.js';
import { ageBinaryEncoder, ageBinaryEncrypts, ageBinaryMissing, ageExternalEncoder } from './age-binary.js';

export interface AgeCodec extends Codec {
  readonly name: 'age';
  readonly kind: 'encryption';
  readonly extension: '.age';
  /** Key ids of the recipients new artifacts are encrypted to (`['scrypt']` in passphrase mode). */
  readonly keyIds: readonly string[];
}

interface DecryptionKeys {
  identities: string[];
  passphrases: string[];
  /** Where the keys came from, for messages: 'identities', 'identityFile /etc/key.txt', ... */
  origins: string[];
}

const CORRUPT_HINT =
  'The stored bytes were changed or cut short. Run `sha256sum -c SHA256SUMS` in the set folder, then restore from an intact copy (another storage or an older set).';

/**
 * age encryption (age-encryption.org/v1) as a streaming codec. Artifacts decrypt with the
 * standard tool: `age -d -i key.txt FILE.age`.
 */
export function createAgeCodec(options: AgeCodecOptions): AgeCodec {
  const opts = parseAgeCodecOptions(options);
  const encryptsWithPassphrase = opts.passphrase !== undefined || opts.passphraseEnv !== undefined;
  const keyIds = encryptsWithPassphrase && opts.recipients.length === 0 ? [PASSPHRASE_KEY_ID] : opts.recipients.map(ageKeyId);
  /**
   * Whether the `age` program encrypts here (recipients only; feature-detected once, see
   * `ageBinaryEncrypts`). 'binary' without a working program is an error, 'auto' falls back.
   */
  const useBinary = (): boolean => {
    if (encryptsWithPassphrase || opts.implementation === 'js' || opts.recipients.length === 0) return false;
    if (ageBinaryEncrypts(opts.binary, opts.recipients)) return true;
    if (opts.implementation === 'binary') throw ageBinaryMissing(opts.binary);
    return false;
  };

  return {
    specVersion: 'v1',
    name: 'age',
    kind: 'encryption',
    extension: '.age',
    manualDecode: 'age -d -i KEY_FILE',
    keyIds,

    describe(): CodecRecord {
      return {
        name: 'age',
        params: { format: 'age-encryption.org/v1', recipients: [...keyIds] },
      };
    },

    encode(): Duplex {
      const passphrase = encryptsWithPassphrase ? readPassphrase(opts) : undefined;
      if (passphrase === undefined && opts.recipients.length === 0) {
        throw new BackupError('CONFIG_INVALID', 'age: this codec has no recipients to encrypt to (it only holds keys to decrypt)', {
          component: 'age',
          hint: "Set recipients (the 'age1...' public keys) on the codec in `codecs`; a codec that only decrypts old sets belongs in the engine's `decoders`.",
        });
      }
      if (useBinary()) return ageBinaryEncoder(opts.binary, opts.recipients);
      return webTransformDuplex(
        async (input) => {
          const encrypter = new Encrypter();
          if (passphrase !== undefined) {
            encrypter.setScryptWorkFactor(opts.scryptWorkFactor);
            encrypter.setPassphrase(passphrase);
          } else {
            for (const r of opts.recipients) encrypter.addRecipient(r);
          }
          return encrypter.encrypt(input);
        },
        (error) =>
          BackupError.isInstance(error)
            ? error
            : new BackupError('CODEC_FAILED', `age: encryption failed: ${messageOf(error)}`, { component: 'age', cause: error }),
      );
    },

    // The `age` program on its own, for a producer that joins programs with OS pipes
    // (pg_dump | zstd | age); undefined where encode() would run JavaScript.
    async externalEncoder(): Promise<ExternalEncoder | undefined> {
      return useBinary() ? ageExternalEncoder(opts.binary, opts.recipients) : undefined;
    },

    decode(record?: CodecRecord): Duplex {
      if (record && record.name !== 'age') {
        throw new BackupError('CODEC_FAILED', `age: cannot decode an artifact written by the "${record.name}" codec`, {
          component: 'age',
          hint: 'This is a bug in the codec order; report it with the manifest.',
        });
      }
      const encryptedTo = recordedKeyIds(record);
      const keys = loadDecryptionKeys(opts, encryptedTo);
      let ownKeyIds: string[] = [];
      return webTransformDuplex(
        async (input) => {
          ownKeyIds = await Promise.all(keys.identities.map(async (id) => ageKeyId(await ageRecipientOf(id))));
          const decrypter = new Decrypter();
          for (const id of keys.identities) decrypter.addIdentity(id);
          for (const p of keys.passphrases) decrypter.addPassphrase(p);
          return decrypter.decrypt(input);
        },
        (error, phase) => decryptError(error, phase, { encryptedTo, ownKeyIds, keys }),
      );
    },
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function recordedKeyIds(record: CodecRecord | undefined): string[] | undefined {
  const list = record?.params?.['recipients'];
  return Array.isArray(list) && list.every((x) => typeof x === 'string') ? (list as string[]) : undefined;
}

function describeRecipients(encryptedTo: string[] | undefined): string {
  if (!encryptedTo) return 'recipients not recorded in the manifest';
  if (encryptedTo.length === 1 && encryptedTo[0] === PASSPHRASE_KEY_ID) return 'a passphrase (scrypt)';
  return `recipient key ids ${encryptedTo.join(', ')}`;
}

function readPassphrase(opts: ResolvedAgeCodecOptions): string {
  if (opts.passphrase !== undefined) return opts.passphrase;
  const name = opts.passphraseEnv!;
  const value = process.env[name];
  if (!value) {
    throw new BackupError('INVALID_KEY', `age: environment variable ${name} (passphraseEnv) is not set or empty`, {
      component: 'age',
      hint: `Export ${name} with the backup passphrase before running.`,
    });
  }
  return value;
}

/** Gathers every configured secret at call time, so rotated files and env changes take effect. */
function loadDecryptionKeys(opts: ResolvedAgeCodecOptions, encryptedTo: string[] | undefined): DecryptionKeys {
  const keys: DecryptionKeys = { identities: [...opts.identities], passphrases: [], origins: [] };
  if (opts.identities.length > 0) keys.origins.push('identities');
  const problems: string[] = [];

  if (opts.identityFile) {
    let text: string;
    try {
      text = readFileSync(opts.identityFile, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new BackupError('INVALID_KEY', `age: cannot read identityFile ${opts.identityFile} (${code ?? messageOf(error)})`, {
        component: 'age',
        cause: error,
        hint: 'Point identityFile at the key file written by `age-keygen -o key.txt`, readable by this process.',
      });
    }
    const parsed = parseIdentityText(text, `identityFile ${opts.identityFile}`);
    problems.push(...parsed.problems);
    if (parsed.identities.length === 0 && parsed.problems.length === 0) problems.push(`identityFile ${opts.identityFile} holds no identity`);
    keys.identities.push(...parsed.identities);
    keys.origins.push(`identityFile ${opts.identityFile}`);
  }

  if (opts.identityEnv) {
    const value = process.env[opts.identityEnv];
    if (!value || value.trim() === '') {
      problems.push(`environment variable ${opts.identityEnv} (identityEnv) is not set or empty`);
    } else {
      const parsed = parseIdentityText(value.replace(/\\n/g, '\n'), `environment variable ${opts.identityEnv}`);
      problems.push(...parsed.problems);
      keys.identities.push(...parsed.identities);
      keys.origins.push(`environment variable ${opts.identityEnv}`);
    }
  }

  if (opts.passphrase !== undefined || opts.passphraseEnv !== undefined) {
    keys.passphrases.push(readPassphrase(opts));
    keys.origins.push('passphrase');
  }

  if (problems.length > 0) {
    throw new BackupError('INVALID_KEY', `age: the decryption keys are unusable:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      component: 'age',
      hint: 'Identities are the AGE-SECRET-KEY-1... lines written by `age-keygen`; fix or remove the lines named above.',
    });
  }
  if (keys.identities.length === 0 && keys.passphrases.length === 0) {
    throw new BackupError(
      'DECRYPT_FAILED',
      `age: this codec has no identity to decrypt with; the artifact was encrypted to ${describeRecipients(encryptedTo)}`,
      {
        component: 'age',
        hint: "Give the codec the matching secret key through identityFile, identityEnv or identities (or the passphrase); for sets written with an older key, add createAgeCodec({ identityFile: 'old-key.txt' }) to the engine's decoders.",
      },
    );
  }
  return keys;
}

function decryptError(
  error: unknown,
  phase: StreamPhase,
  ctx: { encryptedTo: string[] | undefined; ownKeyIds: string[]; keys: DecryptionKeys },
): BackupError {
  if (BackupError.isInstance(error)) return error;
  const reason = messageOf(error);
  const base = { component: 'age', cause: error } as const;
  if (phase === 'data') {
    return new BackupError('DECRYPT_FAILED', `age: the encrypted data failed authentication (corrupted or truncated ciphertext): ${reason}`, {
      ...base,
      hint: CORRUPT_HINT,
    });
  }
  if (/no identity matched/.test(reason)) {
    const to = describeRecipients(ctx.encryptedTo);
    const expected = ctx.encryptedTo?.filter((id) => ctx.ownKeyIds.includes(id)) ?? [];
    if (expected.length > 0) {
      // The manifest says our key should open it, so the header itself must be damaged.
      return new BackupError(
        'DECRYPT_FAILED',
        `age: the artifact header is damaged: it was encrypted to ${to}, the identity for ${expected.join(', ')} is configured, but it cannot unwrap the file key`,
        { ...base, hint: CORRUPT_HINT },
      );
    }
    const have = [
      ...(ctx.ownKeyIds.length ? [`identities with key ids ${ctx.ownKeyIds.join(', ')}`] : []),
      ...(ctx.keys.passphrases.length ? ['a passphrase'] : []),
    ].join(' and ');
    const passphraseSet = ctx.encryptedTo?.length === 1 && ctx.encryptedTo[0] === PASSPHRASE_KEY_ID;
    return new BackupError(
      'DECRYPT_FAILED',
      `age: wrong key: the artifact was encrypted to ${to}, but the configured keys (${have}, from ${ctx.keys.origins.join(', ')}) do not match`,
      {
        ...base,
        hint: passphraseSet
          ? 'Set the passphrase these backups were made with (passphrase or passphraseEnv).'
          : "Use the secret key (AGE-SECRET-KEY-1...) of one of those recipients; for sets from before a key rotation, add createAgeCodec({ identityFile: 'old-key.txt' }) to the engine's decoders. A key file's id is x25519: followed by the output of `age-keygen -y key.txt | tr -d '\\n' | sha256sum | cut -c1-16`.",
      },
    );
  }
  if (/invalid header HMAC/.test(reason)) {
    return new BackupError('DECRYPT_FAILED', 'age: the artifact header failed authentication (it was modified)', { ...base, hint: CORRUPT_HINT });
  }
  if (/work factor is too high/.test(reason)) {
    return new BackupError('DECRYPT_FAILED', 'age: the passphrase-encrypted artifact uses a scrypt work factor above 20, which this library refuses', {
      ...base,
      hint: 'Decrypt it by hand with `age -d FILE.age`.',
    });
  }
  return new BackupError('DECRYPT_FAILED', `age: not a readable age file (damaged or truncated header): ${reason}`, { ...base, hint: CORRUPT_HINT });
}
