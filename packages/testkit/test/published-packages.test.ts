import { access, readFile, readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Imports each package the way a user gets it: the built dist/ through its exports map.
const packagesDir = fileURLToPath(new URL('../../', import.meta.url));

const expectedExports: Record<string, string[]> = {
  core: ['createBackupEngine', 'planRetention', 'createScheduler', 'loadEnv', 'defineAdapter', 'cronProblem', 'defineConfig', 'createGzipCodec', 'createZstdCodec', 'BackupError'],
  postgres: ['createPostgresSource'],
  redis: ['createRedisSource'],
  qdrant: ['createQdrantSource'],
  fs: ['createFsStorage'],
  s3: ['createS3Storage'],
  age: ['createAgeCodec', 'isAgeRecipient'],
  slack: ['createSlackNotifier'],
  webhook: ['createWebhookNotifier', 'createDiscordNotifier'],
  email: ['createEmailNotifier'],
  cli: ['runCli', 'loadEnvConfig'],
  testkit: ['storageConformance', 'sourceConformance', 'notifierConformance', 'startPostgres', 'startRedis', 'startS3', 'startQdrantSimulator'],
};

describe('published packages', async () => {
  const dirs = (await readdir(packagesDir)).sort();
  it('every package folder is covered', () => {
    expect(dirs).toEqual(Object.keys(expectedExports).sort());
  });
  for (const dir of dirs) {
    it(`@scholaria/backup-${dir} exposes its API from dist/ with types`, async () => {
      const pkg = JSON.parse(await readFile(join(packagesDir, dir, 'package.json'), 'utf8'));
      expect(pkg.name).toBe(`@scholaria/backup-${dir}`);
      const entry = pkg.exports['.'];
      await access(join(packagesDir, dir, entry.types));
      const mod = await import(pathToFileURL(join(packagesDir, dir, entry.import)).href);
      for (const name of expectedExports[dir]!) expect(typeof mod[name], `${dir}: ${name}`).toBe('function');
    });
  }

  // Each adapter's `.env` descriptor, from the light `./env` entry the CLI loads at start.
  const descriptors: Record<string, [string, string]> = {
    fs: ['fsStorageEnv', 'storage'],
    s3: ['s3StorageEnv', 'storage'],
    postgres: ['postgresSourceEnv', 'source'],
    redis: ['redisSourceEnv', 'source'],
    qdrant: ['qdrantSourceEnv', 'source'],
    age: ['ageCodecEnv', 'codec'],
    email: ['emailNotifierEnv', 'notifier'],
    webhook: ['webhookNotifierEnv', 'notifier'],
  };
  for (const [dir, [name, kind]] of Object.entries(descriptors)) {
    it(`@scholaria/backup-${dir}/env exposes its descriptor ${name}`, async () => {
      const pkg = JSON.parse(await readFile(join(packagesDir, dir, 'package.json'), 'utf8'));
      const entry = pkg.exports['./env'];
      await access(join(packagesDir, dir, entry.types));
      const mod = await import(pathToFileURL(join(packagesDir, dir, entry.import)).href);
      expect(mod[name].kind).toBe(kind);
      expect(typeof mod[name].create).toBe('function');
      expect(Object.keys(mod[name].env).length).toBeGreaterThan(0);
      const main = await import(pathToFileURL(join(packagesDir, dir, pkg.exports['.'].import)).href);
      expect(main[name]).toBe(mod[name]);
    });
  }
});
