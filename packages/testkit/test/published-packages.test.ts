import { access, readFile, readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Imports each package the way a user gets it: the built dist/ through its exports map.
const packagesDir = fileURLToPath(new URL('../../', import.meta.url));

const expectedExports: Record<string, string[]> = {
  core: ['createBackupEngine', 'planRetention', 'createScheduler', 'loadEnvConfig', 'defineConfig', 'createGzipCodec', 'createZstdCodec', 'BackupError'],
  postgres: ['createPostgresSource'],
  redis: ['createRedisSource'],
  qdrant: ['createQdrantSource'],
  fs: ['createFsStorage'],
  s3: ['createS3Storage'],
  age: ['createAgeCodec'],
  slack: ['createSlackNotifier'],
  webhook: ['createWebhookNotifier', 'createDiscordNotifier'],
  email: ['createEmailNotifier'],
  cli: ['runCli'],
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
});
