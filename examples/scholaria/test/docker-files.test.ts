import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exampleDir, repoRoot } from './helpers.js';

/**
 * No Docker engine runs where these tests run, so the Dockerfile and the compose snippet are
 * never built or started here. What can be checked without one is checked: the compose file is
 * valid YAML with the service the strategy document uses, and every path the image relies on
 * exists in the repository at the place the Dockerfile expects.
 */
describe('examples/scholaria Docker files (static checks; not run: no Docker engine here)', () => {
  const dockerfile = readFileSync(join(exampleDir, 'Dockerfile'), 'utf8');
  const compose = parse(readFileSync(join(exampleDir, 'docker-compose.backup.yml'), 'utf8')) as {
    services: Record<string, Record<string, unknown>>;
  };

  it('the compose snippet defines the backup service under the backup profile', () => {
    const backup = compose.services.backup!;
    expect(backup.profiles).toEqual(['backup']);
    expect(backup.build).toMatchObject({ dockerfile: 'examples/scholaria/Dockerfile' });
    expect(backup.volumes).toEqual(['/backup:/backup', '/var/log/scholaria:/var/log/scholaria']);
    expect(backup.environment).toMatchObject({ BACKUP_DIR: '/backup', BACKUP_LOG_DIR: '/var/log/scholaria', REDIS_URL: 'redis://redis:6379', QDRANT_URL: 'http://qdrant:6333' });
    expect(backup.env_file).toEqual(['.env']);
  });

  it('the image runs the scheduler script and finds the CLI, the config and the scripts where the Dockerfile puts them', () => {
    expect(dockerfile).toMatch(/^CMD \["\/scripts\/backup-scheduler\.sh", "run"\]$/m);
    const root = '/opt/scholaria-backup/';
    const paths = [...dockerfile.matchAll(/\/opt\/scholaria-backup\/([\w./-]+)/g)].map((m) => m[1]!);
    expect(paths).toEqual(expect.arrayContaining(['packages/cli/dist/bin.js', 'examples/scholaria/backup.config.ts', 'examples/scholaria/scripts']));
    for (const path of new Set(paths)) {
      // dist/ exists after the build step of the image (pnpm build), not in a fresh checkout.
      const inRepo = path.replace('packages/cli/dist/bin.js', 'packages/cli/src/bin.ts');
      expect({ path: `${root}${path}`, exists: existsSync(join(repoRoot, inRepo)) }).toEqual({ path: `${root}${path}`, exists: true });
    }
    for (const script of ['backup.sh', 'restore.sh', 'backup-scheduler.sh']) {
      expect(statSync(join(exampleDir, 'scripts', script)).mode & 0o111).not.toBe(0);
    }
  });

  it('the image pins the pnpm of the workspace and installs from the committed lockfile', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { packageManager: string };
    expect(dockerfile).toContain(`ARG PNPM_VERSION=${pkg.packageManager.replace('pnpm@', '')}`);
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile/);
  });
});
