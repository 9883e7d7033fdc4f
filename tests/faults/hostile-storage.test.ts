// Hostile storage (issue 17 C, D, E, G and items 1-3): someone who can write under the backup
// root (an attacker, a broken disk, a careless operator) plants links, bad paths, oversized or
// tampered manifests. For every input, list / verify / restore / prune run against the real fs
// storage, and afterwards: nothing outside the root was read (its bytes appear in no result,
// log line, notification or audit record), written or deleted (the outside tree hashes the
// same), and the live data was not touched by a refused restore. The counts printed at the end
// are the figures in docs/reliability.md ("Hostile storage").
import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBackupEngine, createScheduler, type BackupEvent, type DrillTarget, type Notifier, type Storage } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createTestSource, makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { captureLogger, walk } from './helpers/common.js';

const SECRET = 'OUTSIDE-SECRET-7f3a9c-root:x:0:0:root:/root:/bin/bash';
const tally = { inputs: 0, escapes: 0, dataLost: 0 };

let dir: TempDir;
let root: string;
let outside: string;
beforeEach(async () => {
  dir = await makeTempDir('faults-hostile-');
  root = join(dir.path, 'backup');
  outside = join(dir.path, 'outside');
  await mkdir(join(outside, 'dir', 'test'), { recursive: true });
  await writeFile(join(outside, 'secret.txt'), SECRET);
  await writeFile(join(outside, 'dir', 'data.txt'), SECRET);
  await writeFile(join(outside, 'dir', 'test', 'data.txt'), SECRET);
});
afterEach(async () => {
  await dir.remove();
});
afterAll(() => {
  // The figures for docs/reliability.md.
  console.log(`hostile storage: ${tally.inputs} inputs tried, escapes: ${tally.escapes}, data lost: ${tally.dataLost}`);
});

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function outsideDigest(): Promise<string> {
  const files = await walk(outside);
  const parts: string[] = [];
  for (const f of files.sort((a, b) => a.path.localeCompare(b.path))) parts.push(`${f.path}:${f.isDir ? 'dir' : sha256(await readFile(f.path))}`);
  return sha256(parts.join('\n'));
}

function capture() {
  const events: BackupEvent[] = [];
  const notifier: Notifier = { specVersion: 'v1', name: 'capture', on: ['start', 'success', 'partial', 'failure'], notify: async (e) => void events.push(e) };
  return { events, notifier };
}

interface World {
  storage: Storage;
  live: ReturnType<typeof createTestSource>;
  setId: string;
  older: string;
  engine: (retain?: boolean) => ReturnType<typeof createBackupEngine>;
  logger: ReturnType<typeof captureLogger>;
  events: BackupEvent[];
}

/** Two complete sets of a test source (an older one and the newest), then live data v2. */
async function world(): Promise<World> {
  const storage = createFsStorage({ root });
  const live = createTestSource({ name: 'test', files: { 'data.txt': 'live v1' } });
  const logger = captureLogger();
  const { events, notifier } = capture();
  let t = Date.parse('2026-11-20T02:00:00Z');
  const engine = (retain = false) =>
    createBackupEngine({
      sources: [live],
      storage,
      logger,
      notifiers: [notifier],
      clock: () => new Date(t),
      ...(retain ? { retention: { tiers: { daily: { last: 1 } }, incompleteGracePeriod: '1s' } } : {}),
    });
  const older = (await engine().backup({ tier: 'daily' })).setId;
  t += 86_400_000;
  const setId = (await engine().backup({ tier: 'daily' })).setId;
  t += 3_600_000;
  live.data.set('data.txt', Buffer.from('live v2'));
  return { storage, live, setId, older, engine, logger, events };
}

const manifestPath = (id: string) => join(root, id, 'manifest.json');
async function editManifest(id: string, edit: (m: any) => void) {
  const m = JSON.parse(await readFile(manifestPath(id), 'utf8'));
  edit(m);
  await writeFile(manifestPath(id), JSON.stringify(m, null, 2));
}
async function editSums(id: string, edit: (text: string) => string) {
  const p = join(root, id, 'SHA256SUMS');
  await writeFile(p, edit(await readFile(p, 'utf8')));
}

/**
 * A drill target for the test source: the restore goes through the engine's own source (the path
 * a drill takes), so a drill that reaches the restore of a refused set would change the live data.
 */
function testDrillTarget(): DrillTarget {
  return {
    specVersion: 'v1',
    component: 'test',
    describe: () => 'the test source',
    prepare: async () => ({}),
    check: async () => [],
    cleanup: async () => [],
    sweep: async () => [],
  };
}

/**
 * Runs list, verify, restore, drill, a scheduled run and prune (retention: last 1 daily) and checks the promises. With
 * `refused`, the set must not verify and its restore must change nothing.
 */
async function attack(w: World, what: string, options: { refused: boolean; target?: string; listable?: boolean } = { refused: true }) {
  tally.inputs++;
  const before = await outsideDigest();
  const ref = options.target ?? w.setId;
  const outputs: unknown[] = [];
  const engine = w.engine(true);
  const listed = await engine.list({ includeIncomplete: true });
  outputs.push(listed);
  const verify = await engine.verify({ ref }).catch((e: Error) => ({ ok: false, error: e.message }));
  outputs.push(verify);
  const restore = await engine.restore({ ref }).catch((e: Error) => ({ status: 'failed', error: e.message, components: [] }));
  outputs.push(restore);
  const drill = options.refused
    ? await engine.drill({ ref, targets: [testDrillTarget()] }).catch((e: Error) => ({ status: 'failed', error: e.message }))
    : undefined;
  if (drill) outputs.push(drill);
  if (options.refused) {
    expect(drill?.status, `${what}: the drill must fail`).toBe('failed');
    expect(verify.ok, `${what}: verify must fail`).toBe(false);
    expect(restore.status, `${what}: restore must be refused`).toBe('failed');
    const restoredLive = w.live.data.get('data.txt')!.toString();
    if (restoredLive !== 'live v2') tally.dataLost++;
    expect(restoredLive, `${what}: the live data must not change`).toBe('live v2');
    // list reads no artifact bytes: tampering with bytes or SHA256SUMS content shows in verify/restore.
    if (!options.listable) expect(listed.find((s) => s.id === ref)?.status, `${what}: never listed complete`).not.toBe('complete');
  }
  outputs.push(await engine.prune().catch((e: Error) => ({ error: e.message })));
  // The scheduler's run (a backup, then prune under the same retention) over the hostile root.
  // (Refused cases only: its new set would otherwise be the one retention keeps.)
  if (options.refused) {
    outputs.push(await createScheduler(engine, { tiers: { daily: '0 2 * * *' }, timeZone: 'UTC' }).runNow('daily').catch((e: Error) => ({ error: e.message })));
    expect(w.live.data.get('data.txt')!.toString(), `${what}: the live data must not change`).toBe('live v2');
  }
  outputs.push(await engine.verifyAudit());
  const auditFiles = (await walk(join(root, '.scholaria-backup'))).filter((f) => !f.isDir);
  for (const f of auditFiles) outputs.push(await readFile(f.path, 'utf8'));
  const text = JSON.stringify(outputs) + w.logger.lines.join('\n') + JSON.stringify(w.events);
  const leaked = text.includes('OUTSIDE-SECRET') || text.includes(sha256(SECRET));
  const changed = (await outsideDigest()) !== before;
  if (leaked || changed) tally.escapes++;
  expect(leaked, `${what}: outside bytes (or their SHA-256) appear in an output`).toBe(false);
  expect(changed, `${what}: something outside the root was written or deleted`).toBe(false);
  return { listed, verify, restore };
}

describe('links under the root are never followed (issue 17 C, item 1)', () => {
  it('an artifact that is a link to an outside file, manifest and SHA256SUMS rewritten to match it: damaged, never read', async () => {
    const w = await world();
    const artifact = join(root, w.setId, 'test', 'data.txt');
    await rm(artifact);
    await symlink(join(outside, 'secret.txt'), artifact);
    await editManifest(w.setId, (m) => {
      m.components[0].artifacts[0].sha256 = sha256(SECRET);
      m.components[0].artifacts[0].size = SECRET.length;
    });
    await editSums(w.setId, (t) => t.replace(/^[0-9a-f]{64}(\s+\*?test\/data\.txt)$/m, `${sha256(SECRET)}$1`));
    const { listed, verify } = await attack(w, 'artifact link');
    expect(listed.find((s) => s.id === w.setId)).toMatchObject({ status: 'incomplete', problem: expect.stringMatching(/artifact test\/data\.txt is not in the storage listing/) });
    expect(JSON.stringify(verify)).not.toMatch(new RegExp(String(SECRET.length)));
    // The link is still there (prune kept the damaged set for inspection), its target intact.
    expect((await lstat(artifact)).isSymbolicLink()).toBe(true);
  });

  it('an artifact link with the manifest untouched, a component folder linked outside, manifest.json and SHA256SUMS as links', async () => {
    const cases: [string, (w: World) => Promise<void>][] = [
      ['artifact link, manifest untouched', async (w) => {
        const a = join(root, w.setId, 'test', 'data.txt');
        await rm(a);
        await symlink(join(outside, 'dir', 'data.txt'), a);
      }],
      ['component folder link', async (w) => {
        const c = join(root, w.setId, 'test');
        await rm(c, { recursive: true });
        await symlink(join(outside, 'dir'), c);
        await editManifest(w.setId, (m) => {
          m.components[0].artifacts[0].sha256 = sha256(SECRET);
          m.components[0].artifacts[0].size = SECRET.length;
        });
      }],
      ['manifest.json link', async (w) => {
        await writeFile(join(outside, 'manifest.json'), await readFile(manifestPath(w.setId)));
        await rm(manifestPath(w.setId));
        await symlink(join(outside, 'manifest.json'), manifestPath(w.setId));
      }],
      ['SHA256SUMS link', async (w) => {
        const s = join(root, w.setId, 'SHA256SUMS');
        await writeFile(join(outside, 'SHA256SUMS'), await readFile(s));
        await rm(s);
        await symlink(join(outside, 'SHA256SUMS'), s);
      }],
    ];
    for (const [what, plant] of cases) {
      await rm(root, { recursive: true, force: true });
      const w = await world();
      await plant(w);
      await attack(w, what);
    }
  });

  it('a set folder that is itself a link to an outside copy of a set is not a set here: not listed, not restored, not pruned', async () => {
    const w = await world();
    const fake = 'scholaria_backup_20261201_020000';
    await cp(join(root, w.setId), join(outside, 'copy'), { recursive: true });
    await editManifest(w.setId, () => {}); // unchanged set stays good
    await symlink(join(outside, 'copy'), join(root, fake));
    const { listed } = await attack(w, 'set folder link', { refused: true, target: fake });
    expect(listed.map((s) => s.id)).not.toContain(fake);
    await expect(w.engine().restore({ ref: fake })).rejects.toMatchObject({ code: 'SET_NOT_FOUND' });
    expect((await lstat(join(root, fake))).isSymbolicLink()).toBe(true);
  });

  it('prune of an old set and of an incomplete set holding links to outside files and folders deletes the links, never their targets', async () => {
    const w = await world();
    // The older set becomes prunable (last: 1) and holds links; an incomplete set too.
    await symlink(join(outside, 'secret.txt'), join(root, w.older, 'test', 'evil-file'));
    await symlink(join(outside, 'dir'), join(root, w.older, 'evil-dir'));
    const incomplete = 'scholaria_backup_20261101_020000';
    await mkdir(join(root, incomplete, 'test'), { recursive: true });
    await writeFile(join(root, incomplete, 'test', 'part.bin'), 'x');
    await symlink(join(outside, 'dir'), join(root, incomplete, 'test', 'evil-dir'));
    await symlink(join(outside, 'secret.txt'), join(root, incomplete, 'evil-file'));
    const { utimes } = await import('node:fs/promises');
    await utimes(join(root, incomplete, 'test', 'part.bin'), new Date('2026-11-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z'));
    await attack(w, 'links in prunable sets', { refused: false, target: w.setId });
    const left = await readdir(root);
    expect(left).not.toContain(w.older);
    expect(left).not.toContain(incomplete);
    expect(left).toContain(w.setId);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
    expect((await readdir(join(outside, 'dir'))).sort()).toEqual(['data.txt', 'test']);
  });
});

describe('artifact keys and SHA256SUMS lines that point outside (item 1)', () => {
  const bad = ['../outside/secret.txt', '../../outside/secret.txt', '/etc/passwd', join('/', 'tmp', 'x'), 'test/\u0000data.txt', 'test\\..\\..\\outside\\secret.txt', 'test/../../outside/secret.txt', './test/data.txt', 'test//data.txt', ''];
  it('in the manifest: the set is damaged by name (the field is named), nothing read or restored', async () => {
    for (const path of bad) {
      await rm(root, { recursive: true, force: true });
      const w = await world();
      await editManifest(w.setId, (m) => {
        m.components[0].artifacts[0].path = path;
      });
      const { listed } = await attack(w, `manifest path ${JSON.stringify(path)}`);
      expect(listed.find((s) => s.id === w.setId)?.problem).toMatch(/components\.0\.artifacts\.0\.path/);
    }
  });
  it('in SHA256SUMS: verify names the line, restore is refused before anything is touched', async () => {
    for (const path of bad.filter(Boolean)) {
      await rm(root, { recursive: true, force: true });
      const w = await world();
      await editSums(w.setId, (t) => `${t}${sha256(SECRET)}  ${path}\n`);
      const { verify, restore } = await attack(w, `SHA256SUMS path ${JSON.stringify(path)}`, { refused: true, listable: true });
      expect(JSON.stringify(verify)).toMatch(/SHA256SUMS/);
      expect(JSON.stringify(restore)).toMatch(/SHA256SUMS/);
    }
  });
});

describe('a manifest is untrusted input (issue 17 G, item 2)', () => {
  it('100 MB, deep nesting, __proto__, negative and absurd sizes: a clear error naming the set and the field, no restore', async () => {
    const cases: [string, (w: World) => Promise<void>, RegExp][] = [
      ['100 MB manifest', async (w) => {
        const m = await readFile(manifestPath(w.setId), 'utf8');
        await writeFile(manifestPath(w.setId), m.replace('"metadata": {', `"metadata": { "pad": "${'x'.repeat(100 * 1024 * 1024)}",`));
      }, /over the 8388608-byte limit for a manifest/],
      ['deep nesting', async (w) => {
        const m = await readFile(manifestPath(w.setId), 'utf8');
        await writeFile(manifestPath(w.setId), m.replace('"metadata": {', `"metadata": { "deep": ${'['.repeat(100_000)}${']'.repeat(100_000)},`));
      }, /nests objects or arrays deeper than 32 levels/],
      ['__proto__ key', async (w) => {
        const m = await readFile(manifestPath(w.setId), 'utf8');
        await writeFile(manifestPath(w.setId), m.replace('"metadata": {', '"metadata": { "__proto__": { "polluted": true },'));
      }, /__proto__: the key "__proto__" is not allowed/],
      ['negative size', (w) => editManifest(w.setId, (m) => void (m.components[0].artifacts[0].size = -1)), /components\.0\.artifacts\.0\.size/],
      ['absurd size', (w) => editManifest(w.setId, (m) => void (m.components[0].artifacts[0].size = 1e300)), /components\.0\.artifacts\.0\.size/],
      ['absurd rawSize', (w) => editManifest(w.setId, (m) => void (m.components[0].artifacts[0].rawSize = 2 ** 60)), /components\.0\.artifacts\.0\.rawSize/],
      ['not JSON', (w) => writeFile(manifestPath(w.setId), '{"formatVersion": 1, "id": '), /not valid JSON/],
    ];
    for (const [what, plant, message] of cases) {
      await rm(root, { recursive: true, force: true });
      const w = await world();
      await plant(w);
      const rssBefore = process.memoryUsage().rss;
      const { listed, restore } = await attack(w, what);
      const entry = listed.find((s) => s.id === w.setId)!;
      expect(entry.problem, what).toMatch(message);
      expect(entry.problem, what).toContain(w.setId);
      expect(JSON.stringify(restore), what).toMatch(/incomplete or damaged/);
      // list does not read a manifest over the limit (it is refused from its listed size).
      expect(process.memoryUsage().rss - rssBefore, `${what}: memory`).toBeLessThan(256 * 1024 * 1024);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});

describe('tampering is caught before any target is touched (issue 17 D, item 3)', () => {
  it('an artifact rewritten with its manifest checksum (SHA256SUMS left alone): verify and restore both refuse', async () => {
    const w = await world();
    const forged = 'forged bytes';
    await writeFile(join(root, w.setId, 'test', 'data.txt'), forged);
    await editManifest(w.setId, (m) => {
      m.components[0].artifacts[0].sha256 = sha256(forged);
      m.components[0].artifacts[0].size = forged.length;
      m.components[0].artifacts[0].rawSize = forged.length;
    });
    const { verify, restore } = await attack(w, 'artifact + manifest', { refused: true, listable: true });
    expect(JSON.stringify(verify)).toMatch(/SHA256SUMS and manifest.json disagree on the checksum of test\/data.txt/);
    expect(JSON.stringify(restore)).toMatch(/SHA256SUMS and manifest.json disagree on the checksum of test\/data.txt/);
  });

  it('an artifact rewritten with its SHA256SUMS line (manifest left alone), and a manifest copied from another set', async () => {
    const cases: [string, (w: World) => Promise<void>][] = [
      ['artifact + SHA256SUMS', async (w) => {
        await writeFile(join(root, w.setId, 'test', 'data.txt'), 'forged');
        await editSums(w.setId, (t) => t.replace(/^[0-9a-f]{64}(\s+\*?test\/data\.txt)$/m, `${sha256('forged')}$1`));
      }],
      ['manifest from another set', async (w) => {
        await writeFile(manifestPath(w.setId), await readFile(manifestPath(w.older)));
      }],
      ['manifest from another set, id edited', async (w) => {
        await writeFile(join(root, w.older, 'test', 'data.txt'), 'other set bytes');
        await editManifest(w.older, (m) => {
          m.components[0].artifacts[0].sha256 = sha256('other set bytes');
        });
        await writeFile(manifestPath(w.setId), await readFile(manifestPath(w.older)));
        await editManifest(w.setId, (m) => void (m.id = w.setId));
        await writeFile(join(root, w.setId, 'test', 'data.txt'), 'other set bytes');
      }],
    ];
    for (const [what, plant] of cases) {
      await rm(root, { recursive: true, force: true });
      const w = await world();
      await plant(w);
      await attack(w, what, { refused: true, listable: what !== 'manifest from another set' });
    }
  });

  it('an audit-log line edited or deleted: the hash chain names the first bad line', async () => {
    for (const how of ['edit', 'delete'] as const) {
      await rm(root, { recursive: true, force: true });
      const w = await world();
      await w.engine().verify({ ref: w.setId });
      const files = (await walk(join(root, '.scholaria-backup', 'audit'))).filter((f) => !f.isDir);
      expect(files).toHaveLength(1);
      const lines = (await readFile(files[0]!.path, 'utf8')).split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThanOrEqual(3);
      if (how === 'edit') lines[1] = lines[1]!.replace(/"result":"ok"/, '"result":"failed"');
      else lines.splice(1, 1);
      await writeFile(files[0]!.path, `${lines.join('\n')}\n`);
      tally.inputs++;
      const result = await w.engine().verifyAudit();
      expect(result.ok, how).toBe(false);
      expect(result.firstBroken, how).toMatchObject({ line: 2, reason: how === 'edit' ? expect.stringMatching(/edited/) : expect.stringMatching(/deleted/) });
    }
  });
});

describe('a set dated in the future (issue 17 E)', () => {
  it('does not take the protection away from the newest correctly dated set; prune warns about it', async () => {
    const w = await world();
    // A planted (or wrong-clock) complete set dated 2099.
    const future = 'scholaria_backup_20991231_000000';
    await cp(join(root, w.older), join(root, future), { recursive: true });
    await editManifest(future, (m) => {
      m.id = future;
      m.startedAt = '2099-12-31T00:00:00.000Z';
      m.finishedAt = '2099-12-31T00:00:01.000Z';
    });
    tally.inputs++;
    const result = await w.engine(true).prune();
    expect(result.keep.map((k) => k.id).sort()).toEqual([w.setId, future].sort());
    expect(result.keep.find((k) => k.id === w.setId)!.reasons.join(' ')).toMatch(/not dated in the future \(never removed\)/);
    expect(result.warnings.join(' ')).toMatch(new RegExp(`set ${future} on .* is dated in the future`));
    expect(w.logger.lines.some((l) => l.startsWith('warn') && l.includes(`${future}`) && l.includes('dated in the future'))).toBe(true);
    expect((await w.engine().verify({ ref: w.setId })).ok).toBe(true);
  });
});
