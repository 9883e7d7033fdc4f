import { z } from 'zod';
import { ConfigError } from '@scholaria/backup-core';
import { identityProblem, recipientProblem } from './age-key-format.js';

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name such as BACKUP_AGE_IDENTITY' });

export const ageCodecOptionsSchema = z
  .object({
    /** X25519 recipients (`age1...`) every artifact is encrypted to; each one alone can decrypt. */
    recipients: z.array(z.string().trim().min(1)).default([]),
    /** X25519 identities (`AGE-SECRET-KEY-1...`) tried when decrypting. Secret. */
    identities: z.array(z.string().trim().min(1)).default([]),
    /** Path of an identity file as `age-keygen` writes it; read when decoding, not at construction. */
    identityFile: z.string().min(1).optional(),
    /** Name of an environment variable holding identities (one per line); read when decoding. */
    identityEnv: envName.optional(),
    /** Passphrase for scrypt encryption/decryption instead of recipients. Secret. */
    passphrase: z.string().min(1).optional(),
    /** Name of an environment variable holding the passphrase; read at call time. */
    passphraseEnv: envName.optional(),
    /** log2 of the scrypt work factor used when encrypting with a passphrase (age's default is 18). */
    scryptWorkFactor: z.number().int().min(10).max(20).default(18),
    /**
     * Who encrypts to recipients: 'auto' runs the `age` program where it works here (Go, several
     * times faster than JavaScript) and falls back to JavaScript; 'js' never runs a program;
     * 'binary' requires it. Passphrase encryption is always JavaScript (the age program reads a
     * passphrase only from a terminal). Decryption is JavaScript. Either way the files are the same format.
     */
    implementation: z.enum(['auto', 'js', 'binary']).default('auto'),
    /** The `age` program used by the binary implementation. */
    binary: z.string().min(1).default('age'),
  })
  .strict()
  .superRefine((o, ctx) => {
    o.recipients.forEach((r, i) => {
      const problem = recipientProblem(r);
      if (problem) ctx.addIssue({ code: 'custom', path: ['recipients', i], message: `recipient ${problem}` });
    });
    o.identities.forEach((id, i) => {
      const problem = identityProblem(id);
      if (problem) ctx.addIssue({ code: 'custom', path: ['identities', i], message: `identity ${problem}` });
    });
    const passphrase = o.passphrase !== undefined || o.passphraseEnv !== undefined;
    if (o.passphrase !== undefined && o.passphraseEnv !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['passphraseEnv'], message: 'set either passphrase or passphraseEnv, not both' });
    }
    if (passphrase && o.implementation === 'binary') {
      ctx.addIssue({
        code: 'custom',
        path: ['implementation'],
        message: "'binary' cannot encrypt with a passphrase (the age program reads one only from a terminal); use 'auto' or 'js'",
      });
    }
    if (passphrase && o.recipients.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['passphrase'],
        message: 'age encrypts either to recipients or to one passphrase, not both; drop one of them',
      });
    }
    if (!passphrase && o.recipients.length === 0 && o.identities.length === 0 && !o.identityFile && !o.identityEnv) {
      ctx.addIssue({
        code: 'custom',
        path: ['recipients'],
        message: 'give recipients (to encrypt), identities/identityFile/identityEnv (to decrypt), or a passphrase',
      });
    }
  });

export type AgeCodecOptions = z.input<typeof ageCodecOptionsSchema>;
export type ResolvedAgeCodecOptions = z.output<typeof ageCodecOptionsSchema>;

function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

export function parseAgeCodecOptions(options: unknown): ResolvedAgeCodecOptions {
  const parsed = ageCodecOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  // zod's own messages never include the input value, so secrets stay out of the error.
  const issues = parsed.error.issues.map((i) => `${issuePath(i.path) || 'options'}: ${i.message}`);
  throw new ConfigError('age codec options are invalid', issues, {
    component: 'age',
    hint: 'Create a key with `age-keygen -o key.txt`; pass its public "age1..." line as recipients and the key file as identityFile.',
  });
}
