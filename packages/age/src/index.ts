export * from './age-codec.js';
export * from './age-options.js';
export { ageKeyId, generateAgeIdentity, formatAgeKeyFile, PASSPHRASE_KEY_ID, type AgeKeyPair } from './age-keys.js';
export { ageCodecEnv, isAgeRecipient, isAgeIdentity, type AgeEnvConfig } from './env.js';
