// A swap-mode PostgreSQL restore SIGKILLed mid-way (while it verifies the artifact, while
// pg_restore fills the staging database, just after pg_restore): the live database keeps
// serving its old data every time; the leftover is named by the next restore, which succeeds
// once it is dropped, and only then does the live data change.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { makeTempDir, startPostgres, type PostgresServer, type TempDir } from '@scholaria/backup-testkit';
import { FAULT_SEED, descendants, seededRandom, sleep, spawnFixture, waitFor } from './helpers/common.js';
import { databaseNames, dropDatabase, pgDigest, seedPostgres } from './helpers/live-data.js';
import type { RestoreChildConfig } from './fixtures/restore-child.js';

let pg: PostgresServer;
let dir: TempDir;
let root: string;
let engine: BackupEngine;
let setId: string;
let backedUp: string;
const random = seededRandom(FAULT_SEED + 7);

beforeAll(async () => {
  pg = await startPostgres();
  await pg.createDatabase('app');
  await seedPostgres(pg, 'app', 60_000, 'backed-up');
  dir = await makeTempDir('faults-restore-kill-');
  root = join(dir.path, 'backup');
  engine = createBackupEngine({ sources: [createPostgresSource({ url: pg.url('app') })], storage: createFsStorage({ root }) });
  const result = await engine.backup({ tier: 'daily' });
  expect(result.status).toBe('complete');
  setId = result.setId;
  backedUp = await pgDigest(pg, 'app');
});

afterAll(async () => {
  await engine?.close();
  await Promise.all([pg?.stop(), dir?.remove()]);
});

/** Changes the live data so a restore would visibly replace it; returns its digest. */
async function newLiveVersion(tag: string): Promise<string> {
  await pg.query('app', `UPDATE chunks SET body = md5(id::text || '${tag}'), meta = jsonb_build_object('tag', '${tag}') WHERE id % 3 = 0`);
  return await pgDigest(pg, 'app');
}

type Point = 'verify' | 'pg_restore' | 'after pg_restore';

async function killRestoreAt(point: Point): Promise<string> {
  const artifact = (await engine.readManifest(setId)).components[0]!.artifacts.find((a) => a.name.endsWith('.dump'))!;
  const config: RestoreChildConfig = {
    root,
    postgresUrl: pg.url('app'),
    setId,
    ...(point === 'verify' ? { freeze: { at: 'get', key: artifact.path, afterBytes: Math.floor(artifact.size * (0.2 + 0.6 * random())) } } : {}),
  };
  const child = spawnFixture('restore-child.ts', [JSON.stringify(config)]);
  try {
    // The pg_restore that fills a database (not `--version` or `--list`) names it with --dbname.
    const restoring = () => descendants(child.pid).some((d) => d.comm === 'pg_restore' && d.cmdline.some((a) => a.startsWith('--dbname=')));
    if (point === 'verify') {
      await child.waitForLine(/^HOLD /);
    } else {
      await waitFor(restoring, 'pg_restore to fill the staging database', 120_000, 5);
      if (point === 'pg_restore') await sleep(Math.floor(random() * 250));
      else await waitFor(() => !restoring(), 'pg_restore to finish', 120_000, 2);
    }
    const early = child.lines.find((l) => /^(done|error) /.test(l));
    expect(early, 'the restore finished before it could be killed').toBeUndefined();
    await child.kill();
  } finally {
    child.killGroup();
  }
  expect((await child.exited).signal).toBe('SIGKILL');
  return child.lines.join(' | ');
}

describe('a swap-mode restore killed mid-way', () => {
  const points: Point[] = ['verify', 'pg_restore', 'after pg_restore'];
  it.each(points)('killed during %s: the live database still serves its old data', async (point) => {
    const live = await newLiveVersion(`live-before-${point}`);
    expect(live).not.toBe(backedUp);
    const before = await databaseNames(pg);
    const said = await killRestoreAt(point);

    // The live database is there, answers, and holds exactly what it held before.
    expect(await pgDigest(pg, 'app')).toBe(live);
    const leftovers = (await databaseNames(pg)).filter((d) => !before.includes(d));
    if (process.env.FAULT_VERBOSE) console.info(`killed during ${point}: leftovers ${JSON.stringify(leftovers)}; all ${JSON.stringify(await databaseNames(pg))}; child said ${said}`);
    // At most the staging copy is left, never a renamed live database.
    expect(leftovers.every((d) => d.startsWith('app_restoring_'))).toBe(true);
    expect((await databaseNames(pg)).some((d) => d.startsWith('app_before_'))).toBe(before.some((d) => d.startsWith('app_before_')));

    if (leftovers.length > 0) {
      // The next restore names the leftover and changes nothing; the dead run's lock is no obstacle.
      const refused = await engine.restore({ ref: setId, components: ['postgres'] });
      expect(refused.status).toBe('failed');
      expect(refused.components[0]!.error!.message).toMatch(new RegExp(`database "${leftovers[0]}" already exists \\(left by an interrupted restore\\?\\)`));
      expect(await pgDigest(pg, 'app')).toBe(live);
      for (const d of leftovers) await dropDatabase(pg, d);
    }
    // The set was never touched by the killed restore.
    expect((await engine.verify({ ref: setId })).ok).toBe(true);
  });

  it('afterwards a full swap restore succeeds: the live database has the backed-up data, the old one is kept aside', async () => {
    const live = await newLiveVersion('live-final');
    const result = await engine.restore({ ref: setId, components: ['postgres'] });
    expect(result.status, result.components[0]!.error?.message).toBe('ok');
    expect(await pgDigest(pg, 'app')).toBe(backedUp);
    const previous = (await databaseNames(pg)).filter((d) => d.startsWith('app_before_'));
    expect(previous).toHaveLength(1);
    expect(await pgDigest(pg, previous[0]!)).toBe(live);
    expect((await databaseNames(pg)).filter((d) => d.startsWith('app_restoring_'))).toEqual([]);
  });
});
