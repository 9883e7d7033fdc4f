import { createHash } from 'node:crypto';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { identityProblem } from './age-key-format.js';

export { identityProblem, recipientProblem } from './age-key-format.js';

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
