/**
 * The one check of age key strings (recipients `age1...`, identities `AGE-SECRET-KEY-1...`),
 * without the age-encryption library: a bech32 (BIP 173) decode with its checksum and the
 * 32-byte X25519 payload, exactly what age-encryption's X25519Recipient / X25519Identity
 * constructors accept. It is light so that reading the configuration (`./env`, wal-push once
 * per WAL segment) does not load the cipher code; age-keys.ts and the codec options reuse it.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

/**
 * Decodes a bech32 string (checksum constant 1, the original BIP 173 variant age uses) to its
 * human-readable prefix (lower case) and bytes; undefined when it is not valid bech32 or its
 * 5-bit groups do not make whole bytes (non-zero or excess padding). No length limit is
 * applied here: the callers' 32-byte payload check decides.
 */
export function decodeBech32(text: string): { prefix: string; bytes: Uint8Array } | undefined {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return undefined;
  const s = text.toLowerCase();
  const sep = s.lastIndexOf('1');
  if (sep < 1 || s.length - sep - 1 < 6) return undefined;
  const prefix = s.slice(0, sep);
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix.charCodeAt(i);
    if (c < 33 || c > 126) return undefined;
  }
  const words: number[] = [];
  for (const ch of s.slice(sep + 1)) {
    const v = CHARSET.indexOf(ch);
    if (v < 0) return undefined;
    words.push(v);
  }
  const expanded = [...[...prefix].map((c) => c.charCodeAt(0) >> 5), 0, ...[...prefix].map((c) => c.charCodeAt(0) & 31), ...words];
  if (polymod(expanded) !== 1) return undefined;
  const data = words.slice(0, -6);
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of data) {
    acc = (acc << 5) | w;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      bytes.push((acc >>> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits >= 5 || acc !== 0) return undefined;
  return { prefix, bytes: Uint8Array.from(bytes) };
}

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
  const decoded = decodeBech32(recipient);
  if (!decoded || decoded.prefix !== 'age' || decoded.bytes.length !== 32) {
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
  const decoded = decodeBech32(identity);
  if (!decoded || decoded.prefix !== 'age-secret-key-' || decoded.bytes.length !== 32) {
    return 'is not a valid X25519 age identity (wrong length or checksum)';
  }
  return undefined;
}

/** True for a usable age X25519 recipient (`age1...`, checksum verified): `recipientProblem` finds nothing. */
export function isAgeRecipient(text: string): boolean {
  return recipientProblem(text) === undefined;
}

/** True for a usable age X25519 identity (`AGE-SECRET-KEY-1...`): `identityProblem` finds nothing. */
export function isAgeIdentity(text: string): boolean {
  return identityProblem(text) === undefined;
}
