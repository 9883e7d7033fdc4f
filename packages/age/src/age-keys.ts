import { createHash } from 'node:crypto';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';

/**
 * Why a recipient string is unusable, or undefined when it is an X25519 recipient (`age1...`).
 * Messages never repeat the value: a secret key pasted into the wrong field must not end up in a log.
 */
export function recipientProblem(recipient: string): string | undefined {
  if (/^AGE-(SECRET-KEY|PLUGIN)-/i.test(recipient)) {
    return 'is a secret key, not a recipient; put its public recipient here (`age-keygen -y key.txt` prints it) and keep the secret key for decryption only';
  }
  if (/^age1(pq|tag|tagpq)1/.test(recipient)) {
    return 'is a post-quantum hybrid (or tag) recipient; the age 1.1 command cannot decrypt files encrypted to it, so the backups would not be recoverable by hand. Use an X25519 recipient (`age-keygen` writes one)';
  }
  if (/^(ssh-|ecdsa-)/.test(recipient)) {
    return 'is an SSH public key; this codec supports X25519 age recipients only (`age-keygen` writes one)';
  }
  if (!recipient.startsWith('age1')) {
    return 'is not an age recipient; X25519 recipients start with "age1" (`age-keygen -y key.txt` prints it)';
  }
  try {
    new Encrypter().addRecipient(recipient);
  } catch {
    // bech32 data never contains '1', so a second '1' means a plugin name in the prefix.
    if (/^age1[a-z0-9]+1/.test(recipient)) {
      return 'looks like an age plugin recipient; this codec supports X25519 age recipients only';
    }
    return 'is not a valid X25519 age recipient (wrong length or checksum)';
  }
  return undefined;
}

/** Why an identity string is unusable, or undefined when it is an X25519 identity. Never repeats the value. */
export function identityProblem(identity: string): string | undefined {
  if (identity.startsWith('AGE-SECRET-KEY-PQ-1')) {
    return 'is a post-quantum hybrid identity; this codec uses X25519 keys only so that every artifact stays readable with the age 1.1 command';
  }
  if (identity.startsWith('AGE-PLUGIN-')) {
    return 'is an age plugin identity; plugins are not supported, use an X25519 identity (`age-keygen` writes one)';
  }
  if (identity.startsWith('age1')) {
    return 'is a recipient (public key), not an identity; decryption needs the AGE-SECRET-KEY-1... line of the key file';
  }
  if (!identity.startsWith('AGE-SECRET-KEY-1')) {
    return 'is not an age identity; X25519 identities start with "AGE-SECRET-KEY-1"';
  }
  try {
    new Decrypter().addIdentity(identity);
  } catch {
    return 'is not a valid X25519 age identity (wrong length or checksum)';
  }
  return undefined;
}

/**
 * Reads identities from text in the format `age-keygen` writes: one key per line, blank lines
 * and `#` comments ignored. Problems name the line number, never the line.
 */
export function parseIdentityText(text: string, origin: string): { identities: string[]; problems: string[] } {
  const identities: string[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const problem = identityProblem(line);
    if (problem) problems.push(`${origin} line ${index + 1} ${problem}`);
    else identities.push(line);
  });
  return { identities, problems };
}

/**
 * Non-secret id of a recipient recorded in manifests: `x25519:` and the first 16 hex digits of
 * the SHA-256 of the recipient string. By hand:
 * `age-keygen -y key.txt | tr -d '\n' | sha256sum | cut -c1-16`.
 */
export function ageKeyId(recipient: string): string {
  return `x25519:${createHash('sha256').update(recipient, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The key id recorded for passphrase-encrypted artifacts (a passphrase has no public part to fingerprint). */
export const PASSPHRASE_KEY_ID = 'scrypt';

/** The recipient (public key) of an X25519 identity. */
export async function ageRecipientOf(identity: string): Promise<string> {
  return identityToRecipient(identity);
}

export interface AgeKeyPair {
  /** Secret: `AGE-SECRET-KEY-1...`. Store it like `age-keygen` does, outside the backups. */
  identity: string;
  /** Public: `age1...`, what the codec encrypts to. */
  recipient: string;
  /** What manifests record for this recipient. */
  keyId: string;
}

/** A new X25519 key pair, readable by the age 1.1 command (never a post-quantum hybrid key). */
export async function generateAgeIdentity(): Promise<AgeKeyPair> {
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  return { identity, recipient, keyId: ageKeyId(recipient) };
}

/** The file `age-keygen` would write for this key pair; `age -d -i <file>` reads it. */
export function formatAgeKeyFile(pair: { identity: string; recipient: string }, created = new Date()): string {
  return `# created: ${created.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n# public key: ${pair.recipient}\n${pair.identity}\n`;
}
