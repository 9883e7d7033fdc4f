import { z } from 'zod';
import { commaList, defineAdapter, envIssue, envPath } from '@scholaria/backup-core';
import { isAgeIdentity, isAgeRecipient } from './age-key-format.js';

export { isAgeIdentity, isAgeRecipient };

export interface AgeEnvConfig {
  recipients: string[];
  identityFile?: string;
  identity?: string;
  passphrase?: string;
}

const recipients = z.string().transform((s, ctx) => {
  const list = commaList(s);
  const bad = list.filter((r) => !isAgeRecipient(r));
  if (bad.length > 0) {
    return envIssue(
      ctx,
      `not an age X25519 recipient (age1... with a valid checksum, as printed by age-keygen): ${bad.map((b) => JSON.stringify(b.length > 70 ? `${b.slice(0, 67)}...` : b)).join(', ')}`,
    );
  }
  if (list.length === 0) return envIssue(ctx, 'expected a comma list of age recipients');
  return list;
});

const identity = z.string().transform((s, ctx) =>
  isAgeIdentity(s) ? s : envIssue(ctx, 'expected an age identity: AGE-SECRET-KEY-1 followed by 58 characters, as written by age-keygen'),
);

/**
 * The age codec's `.env` descriptor: recipients or a passphrase encrypt new artifacts; an
 * identity alone only decrypts older sets (`decodeOnly`).
 */
export const ageCodecEnv = defineAdapter({
  kind: 'codec',
  name: 'age',
  title: 'Encryption (`@scholaria/backup-age`)',
  label: 'BACKUP_ENCRYPTION_*',
  env: {
    BACKUP_ENCRYPTION_RECIPIENTS: {
      schema: recipients,
      doc: 'comma list of age X25519 recipients (`age1...`, checksum verified): every artifact is encrypted to each',
    },
    BACKUP_ENCRYPTION_IDENTITY_FILE: { schema: envPath, path: true, doc: 'path of an age identity file (`age-keygen -o key.txt`), for restores' },
    BACKUP_ENCRYPTION_IDENTITY: { schema: identity, secret: true, doc: '*secret*: an age identity (`AGE-SECRET-KEY-1...`), for restores' },
    BACKUP_ENCRYPTION_PASSPHRASE: {
      schema: z.string(),
      secret: true,
      untrimmed: true,
      doc: '*secret*: encrypt with a passphrase instead of recipients (not both); not trimmed',
    },
  },
  configure({ values, isSet, problem, warn }): AgeEnvConfig | undefined {
    if (isSet('BACKUP_ENCRYPTION_RECIPIENTS') && isSet('BACKUP_ENCRYPTION_PASSPHRASE')) {
      problem(
        'BACKUP_ENCRYPTION_PASSPHRASE',
        'cannot be combined with BACKUP_ENCRYPTION_RECIPIENTS (age encrypts to recipients or to a passphrase, not both); unset one',
      );
    }
    const any = ['BACKUP_ENCRYPTION_RECIPIENTS', 'BACKUP_ENCRYPTION_PASSPHRASE', 'BACKUP_ENCRYPTION_IDENTITY', 'BACKUP_ENCRYPTION_IDENTITY_FILE'] as const;
    if (!any.some(isSet)) return undefined;
    if (!isSet('BACKUP_ENCRYPTION_RECIPIENTS') && !isSet('BACKUP_ENCRYPTION_PASSPHRASE')) {
      warn('An age identity is set but no BACKUP_ENCRYPTION_RECIPIENTS or passphrase: new backups will not be encrypted (the identity is used for restores).');
    }
    return {
      recipients: values.BACKUP_ENCRYPTION_RECIPIENTS ?? [],
      ...(values.BACKUP_ENCRYPTION_IDENTITY_FILE !== undefined ? { identityFile: values.BACKUP_ENCRYPTION_IDENTITY_FILE } : {}),
      ...(values.BACKUP_ENCRYPTION_IDENTITY !== undefined ? { identity: values.BACKUP_ENCRYPTION_IDENTITY } : {}),
      ...(values.BACKUP_ENCRYPTION_PASSPHRASE !== undefined ? { passphrase: values.BACKUP_ENCRYPTION_PASSPHRASE } : {}),
    };
  },
  decodeOnly: (config) => config.recipients.length === 0 && config.passphrase === undefined,
  async create(config) {
    const { createAgeCodec } = await import('./age-codec.js');
    return createAgeCodec({
      ...(config.recipients.length > 0 ? { recipients: config.recipients } : {}),
      ...(config.identity ? { identities: [config.identity] } : {}),
      ...(config.identityFile ? { identityFile: config.identityFile } : {}),
      ...(config.passphrase !== undefined ? { passphrase: config.passphrase } : {}),
    });
  },
});
