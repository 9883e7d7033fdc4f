import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startQdrantSimulator, type QdrantSimulator, type TempDir } from '@scholaria/backup-testkit';
import { runQuickstart } from '../src/quickstart.js';
import { SMALL_SIZE } from '../src/seed.js';
import { DEMO_COLLECTION } from '../src/qdrant-demo.js';

const exec = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
// Each test starts its own PostgreSQL and Redis; on a loaded CI machine that takes a while.
const SLOW = 180_000;

describe('quickstart demo', () => {
  let temp: TempDir;
  let qdrant: QdrantSimulator;

  beforeAll(async () => {
    [temp, qdrant] = await Promise.all([makeTempDir('scholaria-quickstart-'), startQdrantSimulator()]);
  });
  afterAll(async () => {
    await Promise.all([temp?.remove(), qdrant?.stop()]);
  }, SLOW);

  it('backs up, survives the disaster and gets every table, key and point back (with Qdrant)', async () => {
    const backupDir = join(temp.path, 'full');
    const result = await runQuickstart({ backupDir, size: SMALL_SIZE, qdrant: { url: qdrant.url }, qdrantPoints: 100 });
    expect(result.problems).toEqual([]);
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.checks.map((c) => `${c.component} ${c.item}`)).toEqual([
      'postgres table users',
      'postgres table topics',
      'postgres table contexts',
      'postgres table chunks',
      'redis db0 keys',
      'redis db1 keys',
      'redis values, types and TTLs',
      `qdrant collection ${DEMO_COLLECTION}`,
    ]);
    expect(result.checks.find((c) => c.item === 'table chunks')?.actual).toMatch(/^400 rows, md5 [0-9a-f]{12}$/);
    expect(result.ok).toBe(true);
    expect(result.components).toEqual(['postgres', 'redis', 'qdrant']);
    expect(result.artifacts.map((a) => a.path).sort()).toEqual(
      ['postgres/globals.sql.zst', 'postgres/scholaria.dump.zst', `qdrant/${DEMO_COLLECTION}.snapshot`, 'redis/dump.resp.zst'].sort(),
    );
    // The set on disk is checkable with the standard tool, and the demo removed its collection.
    const { stdout } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(backupDir, result.setId) });
    expect(stdout.trim().split('\n')).toHaveLength(4);
    expect(stdout).not.toMatch(/FAILED/);
    expect(qdrant.collections().map((c) => c.name)).not.toContain(DEMO_COLLECTION);
  }, SLOW);

  it('the integrity check fails when data is not restored', async () => {
    const result = await runQuickstart({ backupDir: join(temp.path, 'skip'), size: SMALL_SIZE, skipRestore: true });
    expect(result.ok).toBe(false);
    expect(result.restored).toBe(false);
    const failed = Object.fromEntries(result.checks.filter((c) => !c.ok).map((c) => [`${c.component} ${c.item}`, c.actual]));
    expect(failed).toEqual({
      'postgres table chunks': 'missing',
      'redis db0 keys': '0',
      'redis db1 keys': '0',
      'redis values, types and TTLs': expect.stringMatching(/^\d+ missing, 0 changed, 0 unexpected \(e\.g\. /),
    });
    expect(result.checks.find((c) => c.item === 'table users')?.ok).toBe(true);
  }, SLOW);

  it('restoring only postgres leaves the Redis check failing', async () => {
    const result = await runQuickstart({ backupDir: join(temp.path, 'pg-only'), size: SMALL_SIZE, restoreComponents: ['postgres'] });
    expect(result.ok).toBe(false);
    expect(result.checks.filter((c) => c.component === 'postgres').every((c) => c.ok)).toBe(true);
    expect(result.checks.filter((c) => c.component === 'redis').some((c) => c.ok)).toBe(false);
  }, SLOW);

  it('the demo command exits 1 and says so when the check fails', async () => {
    const backupDir = join(temp.path, 'cli');
    const run = exec(process.execPath, ['--import', 'tsx', 'examples/quickstart/src/main.ts', '--small', '--skip-restore'], {
      cwd: repoRoot,
      env: { ...process.env, BACKUP_DIR: backupDir, QDRANT_URL: '', TSX_TSCONFIG_PATH: 'examples/quickstart/tsconfig.json' },
    });
    const error = (await run.then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: number; stdout?: string } | undefined;
    expect(error?.code).toBe(1);
    expect(error?.stdout).toMatch(/FAIL postgres +table chunks +expected 400 rows.*got missing/);
    expect(error?.stdout).toContain('INTEGRITY CHECK FAILED');
    expect((await readdir(backupDir)).filter((d) => d.startsWith('scholaria_backup_'))).toHaveLength(1);
  }, SLOW);
});
