import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BackupError, ConfigError } from '@scholaria/backup-core';
import { getFreePort, makeTempDir, signQdrantJwt, startQdrantSimulator, type QdrantSimulator, type TempDir } from '@scholaria/backup-testkit';
import { createQdrantSource } from '../src/index.js';
import { backupToDir, capturingLogger, fileExists, restoreFromDir } from './helpers/dir-context.js';
import { aliasMap, clientFor, dropAll, readPoints, seed, seedNames } from './helpers/fixtures.js';

const API_KEY = 'sim-secret-key-7f3a9c';
const names = seedNames();
const fast = { retries: 2, retryDelayMs: 5 };

async function expectBackupError(promise: Promise<unknown>): Promise<BackupError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(BackupError.isInstance(error), `expected a BackupError, got ${String(error)}`).toBe(true);
  return error as BackupError;
}

describe('createQdrantSource options', () => {
  it('validates options at factory time and names the field', () => {
    expect(() => createQdrantSource({} as never)).toThrow(ConfigError);
    expect(() => createQdrantSource({} as never)).toThrow(/url/);
    expect(() => createQdrantSource({ url: 'ftp://x:6333' })).toThrow(/url: must start with http/);
    expect(() => createQdrantSource({ url: 'http://u:p@x:6333' })).toThrow(/must not contain credentials/);
    expect(() => createQdrantSource({ url: 'http://x:6333', collections: ['a/b'] })).toThrow(/collections\.0/);
    expect(() => createQdrantSource({ url: 'http://x:6333', retries: -1 })).toThrow(/retries/);
    expect(() => createQdrantSource({ url: 'http://x:6333', bogus: 1 } as never)).toThrow(/bogus|Unrecognized/);
  });

  it('never echoes the API key in a config error', () => {
    try {
      createQdrantSource({ url: 'not a url', apiKey: API_KEY });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain(API_KEY);
    }
  });

  it('does no I/O in the factory and declares the v1 contract', () => {
    const source = createQdrantSource({ url: 'http://127.0.0.1:1' });
    expect(source.specVersion).toBe('v1');
    expect(source.name).toBe('qdrant');
    expect(createQdrantSource({ url: 'http://127.0.0.1:1', name: 'qdrant-eu' }).name).toBe('qdrant-eu');
  });
});

describe('Qdrant source against the simulator', () => {
  let sim: QdrantSimulator;
  let tmp: TempDir;
  let client: ReturnType<typeof clientFor>;

  beforeEach(async () => {
    sim = await startQdrantSimulator({ apiKey: API_KEY });
    tmp = await makeTempDir('qdrant-source-test-');
    client = clientFor(sim.url, API_KEY);
    await seed(client, names);
  });
  afterEach(async () => {
    await sim.stop();
    await tmp.remove();
  });

  it('round trip: two collections with named vectors, payloads and aliases come back identical', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const docsBefore = await readPoints(client, names.docs);
    const chunksBefore = await readPoints(client, names.chunks);
    expect(docsBefore).toHaveLength(25);
    expect(chunksBefore).toHaveLength(15);

    const backup = await backupToDir(source, tmp.path);
    expect(backup.error).toBeUndefined();
    const meta = backup.component.metadata as { qdrantVersion: string; collections: Record<string, unknown>[] };
    expect(meta.qdrantVersion).toBe('1.13.2');
    expect(meta.collections.map((c) => c.name)).toEqual([names.chunks, names.docs]);
    const docsMeta = meta.collections.find((c) => c.name === names.docs)!;
    expect(docsMeta.pointsCount).toBe(25);
    expect(docsMeta.aliases).toEqual([names.docsAlias]);
    expect(docsMeta.vectors).toEqual({ text: { size: 4, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } });
    expect(meta.collections.find((c) => c.name === names.chunks)!.vectors).toEqual({ size: 8, distance: 'Euclid' });

    // One uncompressed artifact per collection, whose bytes hash to the checksum Qdrant reported.
    expect(backup.component.artifacts.map((a) => a.name).sort()).toEqual([`${names.chunks}.snapshot`, `${names.docs}.snapshot`]);
    expect(backup.compression).toEqual({ [`${names.chunks}.snapshot`]: false, [`${names.docs}.snapshot`]: false });
    for (const a of backup.component.artifacts) {
      const bytes = await readFile(join(tmp.path, a.path));
      const sha = createHash('sha256').update(bytes).digest('hex');
      expect(sha).toBe(a.sha256);
      expect(a.metadata?.checksum).toBe(sha);
      expect(a.manualRestore).toContain('priority=snapshot');
    }
    // Snapshots are deleted on the server after download by default.
    expect(sim.snapshots()).toEqual([]);

    await dropAll(client, [names.docs, names.chunks]);
    expect(await aliasMap(client)).toEqual({});

    const res = await restoreFromDir(source, tmp.path, backup.component);
    expect(res.warnings ?? []).toEqual([]);
    expect(await readPoints(client, names.docs)).toEqual(docsBefore);
    expect(await readPoints(client, names.chunks)).toEqual(chunksBefore);
    expect(await aliasMap(client)).toEqual({ [names.docsAlias]: names.docs, [names.chunksAlias]: names.chunks });

    // The upload used priority=snapshot and the recorded checksum.
    const uploads = sim.requests().filter((r) => r.path.endsWith('/snapshots/upload'));
    expect(uploads).toHaveLength(2);
    for (const u of uploads) {
      expect(u.query.priority).toBe('snapshot');
      expect(u.query.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(u.status).toBe(200);
    }

    const verified = await source.verify!({ component: backup.component, signal: new AbortController().signal, logger: capturingLogger() });
    expect(verified).toEqual({ ok: true, mismatches: [] });
  });

  it('restore replaces a damaged live collection and moves aliases back', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const before = await readPoints(client, names.docs);
    const backup = await backupToDir(source, tmp.path);
    expect(backup.error).toBeUndefined();

    await client.upsert(names.docs, { wait: true, points: [{ id: 1, vector: { text: [1, 0, 0, 0], title: [0, 0, 1] }, payload: { title: 'changed' } }] });
    await client.deleteCollection(names.chunks);
    await client.createCollection('other', { vectors: { size: 2, distance: 'Dot' } });
    await client.updateCollectionAliases({
      actions: [{ delete_alias: { alias_name: names.docsAlias } }, { create_alias: { collection_name: 'other', alias_name: names.docsAlias } }],
    });

    const res = await restoreFromDir(source, tmp.path, backup.component);
    expect(res.plan).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^replace collection "${names.docs}"`)),
        expect.stringMatching(new RegExp(`^create collection "${names.chunks}"`)),
        `point alias "${names.docsAlias}" at "${names.docs}" (now at "other")`,
      ]),
    );
    expect(await readPoints(client, names.docs)).toEqual(before);
    expect((await aliasMap(client))[names.docsAlias]).toBe(names.docs);
  });

  it('restores under another name (restore option), leaving the original and its aliases alone', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const before = await readPoints(client, names.docs);
    const backup = await backupToDir(source, tmp.path);
    await client.upsert(names.docs, { wait: true, points: [{ id: 2, vector: { text: [0, 1, 0, 0], title: [1, 0, 0] }, payload: { title: 'live edit' } }] });
    const liveNow = await readPoints(client, names.docs);

    const res = await restoreFromDir(source, tmp.path, backup.component, {
      options: { restoreAs: { [names.docs]: 'docs_restored' }, collections: [names.docs] },
    });
    expect(res.plan).toEqual(
      expect.arrayContaining([expect.stringMatching(/^create collection "docs_restored"/), expect.stringMatching(/^leave alias "docs_live" unchanged/)]),
    );
    expect(await readPoints(client, 'docs_restored')).toEqual(before);
    expect(await readPoints(client, names.docs)).toEqual(liveNow);
    expect(await aliasMap(client)).toEqual({ [names.docsAlias]: names.docs, [names.chunksAlias]: names.chunks });
    expect(sim.collections().map((c) => c.name)).toEqual([names.chunks, 'docs', 'docs_restored']);
  });

  it('collectionSuffix restores every collection next to the live one; restoreAs entries win', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const docs = await readPoints(client, names.docs);
    const chunks = await readPoints(client, names.chunks);
    const backup = await backupToDir(source, tmp.path);
    const res = await restoreFromDir(source, tmp.path, backup.component, {
      options: { collectionSuffix: '_drill', restoreAs: { [names.chunks]: 'chunks_elsewhere' } },
    });
    expect(res.metadata).toMatchObject({ targets: { [names.docs]: `${names.docs}_drill`, [names.chunks]: 'chunks_elsewhere' } });
    expect(await readPoints(client, `${names.docs}_drill`)).toEqual(docs);
    expect(await readPoints(client, 'chunks_elsewhere')).toEqual(chunks);
    // The live aliases stay where they were.
    expect(await aliasMap(client)).toEqual({ [names.docsAlias]: names.docs, [names.chunksAlias]: names.chunks });
    // targetCollections is the same map as restoreAs.
    const again = await restoreFromDir(source, tmp.path, backup.component, {
      dryRun: true,
      options: { targetCollections: { [names.docs]: 'docs_t' }, collectionSuffix: '_drill' },
    });
    expect(again.metadata).toMatchObject({ targets: { [names.docs]: 'docs_t', [names.chunks]: `${names.chunks}_drill` } });
    const clash = await expectBackupError(
      restoreFromDir(source, tmp.path, backup.component, { options: { targetCollections: { [names.docs]: 'a' }, restoreAs: { [names.docs]: 'b' } } }),
    );
    expect(clash.message).toContain(`give "${names.docs}" two targets`);
    const bad = await expectBackupError(restoreFromDir(source, tmp.path, backup.component, { options: { collectionSuffix: '/x' } }));
    expect(bad.code).toBe('USAGE');
    expect(bad.message).toContain(`restore target "${names.chunks}/x"`);
  });

  it('refuses a restore target that is an alias before anything changes (Qdrant would overwrite the collection behind it)', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    await client.upsert(names.docs, { wait: true, points: [{ id: 3, vector: { text: [0, 0, 1, 0], title: [0, 1, 0] }, payload: { title: 'live' } }] });
    const live = await readPoints(client, names.docs);
    const uploadsBefore = sim.requests().filter((r) => r.path.endsWith('/snapshots/upload')).length;
    for (const dryRun of [true, false]) {
      const error = await expectBackupError(
        restoreFromDir(source, tmp.path, backup.component, { dryRun, options: { restoreAs: { [names.docs]: names.docsAlias }, collections: [names.docs] } }),
      );
      expect(error.code).toBe('USAGE');
      expect(error.message).toContain(`restore target "${names.docsAlias}" (for "${names.docs}") is an alias of collection "${names.docs}"`);
      expect(error.hint).toContain("aliasTargets: 'resolve'");
    }
    expect(sim.requests().filter((r) => r.path.endsWith('/snapshots/upload')).length).toBe(uploadsBefore);
    expect(await readPoints(client, names.docs)).toEqual(live);
  });

  it("aliasTargets: 'resolve' restores into the collection behind the alias and says so in the plan", async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const before = await readPoints(client, names.docs);
    const backup = await backupToDir(source, tmp.path);
    await client.upsert(names.docs, { wait: true, points: [{ id: 3, vector: { text: [0, 0, 1, 0], title: [0, 1, 0] }, payload: { title: 'live' } }] });
    const res = await restoreFromDir(source, tmp.path, backup.component, {
      options: { restoreAs: { [names.docs]: names.docsAlias }, collections: [names.docs], aliasTargets: 'resolve' },
    });
    expect(res.plan).toEqual(
      expect.arrayContaining([expect.stringContaining(`replace collection "${names.docs}" (restore target "${names.docsAlias}" is an alias of "${names.docs}")`)]),
    );
    expect(res.metadata).toMatchObject({ targets: { [names.docs]: names.docs } });
    expect(await readPoints(client, names.docs)).toEqual(before);
    expect(sim.collections().map((c) => c.name)).toEqual([names.chunks, names.docs]);
  });

  it('restores under another name from the factory option (a function)', async () => {
    const backup = await backupToDir(createQdrantSource({ url: sim.url, apiKey: API_KEY }), tmp.path);
    const before = await readPoints(client, names.chunks);
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, restoreAs: (c) => `${c}_copy` });
    await restoreFromDir(source, tmp.path, backup.component);
    expect(await readPoints(client, `${names.chunks}_copy`)).toEqual(before);
    expect(await readPoints(client, `${names.docs}_copy`)).toHaveLength(25);
    // verify() looks at the restore targets of the factory option.
    const verified = await source.verify!({ component: backup.component, signal: new AbortController().signal, logger: capturingLogger() });
    expect(verified.mismatches).toEqual([]);
  });

  it('a corrupted download fails the component with CHECKSUM_MISMATCH naming the collection, storing nothing', async () => {
    sim.setCorruptDownloads(true);
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], ...fast });
    const backup = await backupToDir(source, tmp.path);
    const error = backup.error as BackupError;
    expect(BackupError.isInstance(error)).toBe(true);
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.message).toContain(`collection "${names.docs}"`);
    expect(error.hint).toMatch(/run the backup again/i);
    expect(backup.component.artifacts).toEqual([]);
    expect(await fileExists(join(tmp.path, 'qdrant', `${names.docs}.snapshot`))).toBe(false);
    expect(await fileExists(join(tmp.path, 'qdrant', `${names.docs}.snapshot.partial`))).toBe(false);
    // The server snapshot is cleaned up even when the download failed.
    expect(sim.snapshots()).toEqual([]);
  });

  it('a wrong API key gives AUTH_FAILED without the key in any message', async () => {
    const wrong = 'wrong-key-123456';
    const source = createQdrantSource({ url: sim.url, apiKey: wrong, ...fast });
    const backup = await backupToDir(source, tmp.path);
    const error = backup.error as BackupError;
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toMatch(/rejected the request .*HTTP 401: Invalid API key/);
    expect(error.hint).toMatch(/API key is wrong/);
    expect(`${error.message} ${error.hint}`).not.toContain(wrong);
    const check = await source.check();
    expect(check.ok).toBe(false);
    expect(check.problems?.join('\n')).toMatch(/401/);
    expect(JSON.stringify(check)).not.toContain(wrong);
    // Not retried: a wrong key does not heal.
    expect(sim.requests().filter((r) => r.path === '/collections' && r.status === 401)).toHaveLength(2);
  });

  it('a missing API key says to pass one', async () => {
    const source = createQdrantSource({ url: sim.url, ...fast });
    const error = await expectBackupError(source.restore({
      setId: 'x_20260101_000000',
      signal: new AbortController().signal,
      logger: capturingLogger(),
      dryRun: true,
      component: { name: 'qdrant', status: 'ok', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:00Z', durationMs: 0, artifacts: [], metadata: { qdrantVersion: '1.13.2', collections: [] }, warnings: [] },
      options: {},
      open: () => Promise.reject(new Error('not used')),
    }));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.hint).toMatch(/requires an API key: pass apiKey/);
  });

  it('a read-only key is refused for snapshots with a hint', async () => {
    await sim.stop();
    sim = await startQdrantSimulator({ apiKey: API_KEY, readOnlyApiKey: 'ro-key-000' });
    client = clientFor(sim.url, API_KEY);
    await seed(client, names);
    const backup = await backupToDir(createQdrantSource({ url: sim.url, apiKey: 'ro-key-000', ...fast }), tmp.path);
    const error = backup.error as BackupError;
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toMatch(/HTTP 403: Forbidden: Global manage access is required/);
    expect(error.message).toContain('needs global manage access and this key has read-only access');
    expect(error.hint).toMatch(/read-write key \(service\.api_key\), not the read-only key/);
  });

  it('a collection-scoped JWT backs up its collection but cannot restore: refused before anything, naming the permission', async () => {
    await sim.stop();
    sim = await startQdrantSimulator({ apiKey: API_KEY, jwtRbac: true });
    client = clientFor(sim.url, API_KEY);
    await seed(client, names);
    const token = signQdrantJwt(API_KEY, { access: [{ collection: names.docs, access: 'rw' }] });
    const scoped = createQdrantSource({ url: sim.url, apiKey: token, collections: [names.docs], ...fast });
    const backup = await backupToDir(scoped, tmp.path);
    expect(backup.error).toBeUndefined();
    for (const dryRun of [true, false]) {
      const error = await expectBackupError(restoreFromDir(scoped, tmp.path, backup.component, { dryRun, options: { collectionSuffix: '_copy' } }));
      expect(error.code).toBe('AUTH_FAILED');
      expect(error.message).toContain(`a Qdrant JWT with access to "${names.docs}" (rw) only; restoring a snapshot into Qdrant needs global manage access`);
      expect(error.message).not.toContain(token);
    }
    expect(sim.requests().filter((r) => r.path.endsWith('/snapshots/upload'))).toEqual([]);
    // The full key restores the same set.
    const full = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    await restoreFromDir(full, tmp.path, backup.component, { options: { collectionSuffix: '_copy' } });
    expect(await readPoints(client, `${names.docs}_copy`)).toHaveLength(25);
  });

  it('an unreachable server gives CONNECTION_FAILED after the retries', async () => {
    const port = await getFreePort();
    const source = createQdrantSource({ url: `http://127.0.0.1:${port}`, apiKey: API_KEY, retries: 1, retryDelayMs: 5 });
    const backup = await backupToDir(source, tmp.path);
    const error = backup.error as BackupError;
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(error.message).toContain(`Cannot reach Qdrant at http://127.0.0.1:${port}`);
    expect(error.message).toContain('gave up after 2 attempts');
    expect(error.hint).toMatch(/Qdrant is running/);
    const check = await source.check();
    expect(check.ok).toBe(false);
    expect(check.problems?.[0]).toMatch(/ECONNREFUSED/);
  });

  it('a configured collection that does not exist fails with NOT_FOUND naming it', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs, 'missing_one'], ...fast });
    const backup = await backupToDir(source, tmp.path);
    const error = backup.error as BackupError;
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('"missing_one" not found');
    expect(error.hint).toContain(`"${names.docs}"`);
    // Failed before any snapshot was made.
    expect(sim.requests().some((r) => r.method === 'POST' && r.path.endsWith('/snapshots'))).toBe(false);
    const check = await source.check();
    expect(check.problems).toEqual(['collection "missing_one" configured but not on the server']);
  });

  it('dry-run refuses a target of another minor version with a clear message, and writes nothing', async () => {
    const backup = await backupToDir(createQdrantSource({ url: sim.url, apiKey: API_KEY }), tmp.path);
    const older = await startQdrantSimulator({ apiKey: API_KEY, version: '1.12.5' });
    try {
      const source = createQdrantSource({ url: older.url, apiKey: API_KEY, ...fast });
      for (const dryRun of [true, false]) {
        const error = await expectBackupError(restoreFromDir(source, tmp.path, backup.component, { dryRun }));
        expect(error.code).toBe('UNSUPPORTED_VERSION');
        expect(error.message).toContain('taken from Qdrant 1.13.2 but the target runs 1.12.5');
        expect(error.message).toContain('same minor version (1.13.x)');
        expect(error.hint).toMatch(/1\.13\.2/);
      }
      expect(older.requests().filter((r) => r.method !== 'GET')).toEqual([]);
    } finally {
      await older.stop();
    }
  });

  it('dry-run on a reachable, compatible target lists what would be replaced and writes nothing', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    await client.deleteCollection(names.chunks);
    const requestsBefore = sim.requests().length;
    const opened: string[] = [];
    const res = await restoreFromDir(source, tmp.path, backup.component, { dryRun: true, opened });
    expect(res.plan).toEqual([
      `create collection "${names.chunks}" from qdrant/${names.chunks}.snapshot (15 points, 8-d Euclid, from Qdrant 1.13.2)`,
      `replace collection "${names.docs}" (exists, its data will be overwritten) with qdrant/${names.docs}.snapshot (25 points, text: 4-d Cosine, title: 3-d Dot, from Qdrant 1.13.2)`,
      `point alias "${names.chunksAlias}" at "${names.chunks}"`,
      `alias "${names.docsAlias}" already points at "${names.docs}"`,
    ]);
    expect(opened).toEqual([]);
    expect(sim.requests().slice(requestsBefore).every((r) => r.method === 'GET')).toBe(true);
    expect(sim.collections().map((c) => c.name)).toEqual([names.docs]);
  });

  it('retries transient failures (503 on snapshot creation, reset before the download)', async () => {
    const logger = capturingLogger();
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.chunks], retries: 3, retryDelayMs: 5 });
    sim.failNext({ count: 2, status: 503, method: 'POST', path: /\/snapshots$/ });
    sim.failNext({ count: 1, reset: true, method: 'GET', path: /\/snapshots\/.+\.snapshot$/ });
    const backup = await backupToDir(source, tmp.path, { logger });
    expect(backup.error).toBeUndefined();
    expect(backup.component.artifacts).toHaveLength(1);
    const retries = logger.lines.filter((l) => l.level === 'warn' && /retrying/.test(l.message));
    expect(retries.map((l) => l.fields?.code)).toEqual(['SOURCE_FAILED', 'SOURCE_FAILED', 'CONNECTION_FAILED']);
  });

  it('resumes a snapshot download cut midway with Range, and stores exactly the snapshot bytes', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], keepSnapshots: true, ...fast });
    sim.failNext({ method: 'GET', path: /\/snapshots\/[^/]+\.snapshot$/, cutAfterBytes: 1000, count: 2 });
    const logger = capturingLogger();
    const backup = await backupToDir(source, tmp.path, { logger });
    expect(backup.error).toBeUndefined();
    const gets = sim.requests().filter((r) => r.method === 'GET' && /\/snapshots\/[^/]+\.snapshot$/.test(r.path));
    expect(gets.map((r) => r.range)).toEqual([undefined, 'bytes=1000-', 'bytes=2000-']);
    const [onServer] = sim.snapshots();
    const [artifact] = backup.component.artifacts;
    expect(artifact!.sha256).toBe(onServer!.checksum);
    expect(artifact!.size).toBe(onServer!.size);
    expect(logger.lines.some((l) => l.level === 'warn' && /broke after 1000 bytes; resuming/.test(l.message))).toBe(true);
  });

  it('a download that keeps breaking fails after the retries, storing nothing', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], ...fast });
    sim.failNext({ method: 'GET', path: /\/snapshots\/[^/]+\.snapshot$/, cutAfterBytes: 500, count: 10 });
    const backup = await backupToDir(source, tmp.path);
    expect(BackupError.isInstance(backup.error)).toBe(true);
    expect((backup.error as BackupError).code).toBe('CONNECTION_FAILED');
    expect(await fileExists(join(tmp.path, 'qdrant', `${names.docs}.snapshot`))).toBe(false);
    expect(sim.requests().filter((r) => r.method === 'GET' && /\.snapshot$/.test(r.path))).toHaveLength(3);
  });

  it('a snapshot Qdrant finished although its creation request failed (proxy timeout) is adopted, not created again', async () => {
    const logger = capturingLogger();
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], ...fast });
    sim.failNext({ method: 'POST', path: new RegExp(`^/collections/${names.docs}/snapshots$`), processAnyway: true, status: 504 });
    const backup = await backupToDir(source, tmp.path, { logger });
    expect(backup.error).toBeUndefined();
    const creates = sim.requests().filter((r) => r.method === 'POST' && r.path === `/collections/${names.docs}/snapshots`);
    expect(creates.map((r) => r.status)).toEqual([504]);
    expect(logger.lines.some((l) => l.level === 'warn' && /was finished by Qdrant; using it instead of creating another/.test(l.message))).toBe(true);
    // The adopted snapshot is stored (its checksum is the one Qdrant reported) and then deleted.
    const [artifact] = backup.component.artifacts;
    expect(artifact!.metadata?.checksum).toBe(artifact!.sha256);
    expect(sim.snapshots()).toEqual([]);
  });

  it('snapshotTimeoutMs is an idle timeout: a download trickling longer than it in total succeeds', async () => {
    // One byte every 300 ms for 4 s: more than twice the 1500 ms limit in total, never idle for it.
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.chunks], snapshotTimeoutMs: 1500, retries: 0 });
    sim.failNext({ method: 'GET', path: /\/snapshots\/[^/]+\.snapshot$/, trickleEveryMs: 300, trickleForMs: 4000 });
    const started = Date.now();
    const backup = await backupToDir(source, tmp.path);
    expect(backup.error).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    const gets = sim.requests().filter((r) => r.method === 'GET' && /\/snapshots\/[^/]+\.snapshot$/.test(r.path));
    expect(gets.map((r) => r.range)).toEqual([undefined]);
    const [artifact] = backup.component.artifacts;
    expect(artifact!.metadata?.checksum).toBe(artifact!.sha256);
    expect(artifact!.size).toBe(artifact!.metadata?.size);
  });

  it('snapshotTimeoutMs is an idle timeout: a download silent for longer than it fails with TIMEOUT naming the limit', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.chunks], snapshotTimeoutMs: 1500, retries: 0 });
    sim.failNext({ method: 'GET', path: /\/snapshots\/[^/]+\.snapshot$/, stallAfterBytes: 100, stallMs: 4000 });
    const backup = await backupToDir(source, tmp.path);
    const error = backup.error as BackupError;
    expect(BackupError.isInstance(error)).toBe(true);
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toMatch(/did not answer in time while downloading snapshot .* \(no data for 1500 ms\)/);
    expect(error.hint).toMatch(/snapshotTimeoutMs/);
    expect(await fileExists(join(tmp.path, 'qdrant', `${names.chunks}.snapshot`))).toBe(false);
  });

  it('deletes the snapshot a failed creation attempt left behind once Qdrant finished it (proxy timeout while it was still writing)', async () => {
    const logger = capturingLogger();
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], retries: 2, retryDelayMs: 1100 });
    // Attempt 1: the proxy answers 504 after 100 ms while Qdrant writes the snapshot for 3 s.
    // The retry (after 1.1 s) finds nothing finished yet and creates a second snapshot, whose
    // download trickles for 4 s: by then the first one is done and must be swept.
    sim.failNext({ method: 'POST', path: new RegExp(`^/collections/${names.docs}/snapshots$`), processAnyway: true, answerAfterMs: 100, workMs: 3000 });
    sim.failNext({ method: 'GET', path: /\/snapshots\/[^/]+\.snapshot$/, trickleEveryMs: 200, trickleForMs: 4000 });
    const backup = await backupToDir(source, tmp.path, { logger });
    expect(backup.error).toBeUndefined();
    const creates = sim.requests().filter((r) => r.method === 'POST' && r.path === `/collections/${names.docs}/snapshots`);
    expect(creates.map((r) => r.status)).toEqual([504, 200]);
    const [artifact] = backup.component.artifacts;
    const used = artifact!.metadata?.snapshot as string;
    expect(artifact!.metadata?.checksum).toBe(artifact!.sha256);
    const deleted = sim
      .requests()
      .filter((r) => r.method === 'DELETE' && r.path.startsWith(`/collections/${names.docs}/snapshots/`))
      .map((r) => decodeURIComponent(r.path.split('/').pop()!));
    // Two snapshots appeared; both are gone: the orphan swept, the used one deleted after the download.
    expect(new Set(deleted).size).toBe(2);
    expect(deleted).toContain(used);
    expect(logger.lines.some((l) => /left by a failed creation attempt/.test(l.message))).toBe(true);
    expect(sim.snapshots().filter((s) => s.collection === names.docs)).toEqual([]);
  });

  it('a snapshot somebody else takes during a run without failed attempts is left alone', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], ...fast });
    // Our creation takes 3 s (slow, not failed); meanwhile, over a second later (Qdrant's names
    // have a resolution of one second), the user takes a snapshot of their own.
    sim.failNext({ method: 'POST', path: new RegExp(`^/collections/${names.docs}/snapshots$`), workMs: 3000 });
    const running = backupToDir(source, tmp.path);
    await expect.poll(() => sim.requests().some((r) => r.method === 'POST' && r.path === `/collections/${names.docs}/snapshots`), { timeout: 10_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const theirs = await client.createSnapshot(names.docs);
    const backup = await running;
    expect(backup.error).toBeUndefined();
    expect(backup.component.artifacts[0]!.metadata?.snapshot).not.toBe(theirs!.name);
    expect(sim.snapshots().filter((s) => s.collection === names.docs).map((s) => s.name)).toEqual([theirs!.name]);
  });

  it('gives up when the failures outlast the retries', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, retries: 1, retryDelayMs: 5 });
    sim.failNext({ count: 5, status: 502, method: 'POST', path: /\/snapshots$/ });
    const backup = await backupToDir(source, tmp.path);
    const error = backup.error as BackupError;
    expect(error.code).toBe('SOURCE_FAILED');
    expect(error.message).toMatch(/creating a snapshot of collection .*HTTP 502.*gave up after 2 attempts/);
    expect(error.retryable).toBe(true);
  });

  it('retries a failed upload with a freshly opened artifact', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, retries: 2, retryDelayMs: 5 });
    const backup = await backupToDir(source, tmp.path);
    const before = await readPoints(client, names.chunks);
    await client.deleteCollection(names.chunks);
    sim.failNext({ count: 1, status: 503, path: /\/snapshots\/upload$/ });
    const opened: string[] = [];
    await restoreFromDir(source, tmp.path, backup.component, { options: { collections: [names.chunks] }, opened });
    expect(opened).toEqual([`${names.chunks}.snapshot`, `${names.chunks}.snapshot`]);
    expect(await readPoints(client, names.chunks)).toEqual(before);
  });

  it('a server that accepts but never answers gives TIMEOUT', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const source = createQdrantSource({ url: `http://127.0.0.1:${port}`, timeoutMs: 150, retries: 0 });
      const backup = await backupToDir(source, tmp.path);
      const error = backup.error as BackupError;
      expect(error.code).toBe('TIMEOUT');
      expect(error.message).toContain('did not answer in time while reading the server version');
      expect(error.hint).toMatch(/timeoutMs/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('handles collection names that need URL encoding', async () => {
    const odd = '논문 chunks #1';
    await client.createCollection(odd, { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert(odd, { wait: true, points: [{ id: 7, vector: [0.25, -1], payload: { q: 'a&b=c' } }] });
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: odd, alias_name: 'odd alias' } }] });
    const before = await readPoints(client, odd);
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [odd], ...fast });
    const backup = await backupToDir(source, tmp.path);
    expect(backup.error).toBeUndefined();
    expect(backup.component.artifacts.map((a) => a.name)).toEqual([`${odd}.snapshot`]);
    await client.deleteCollection(odd);
    await restoreFromDir(source, tmp.path, backup.component);
    expect(await readPoints(client, odd)).toEqual(before);
    expect((await aliasMap(client))['odd alias']).toBe(odd);
  });

  it('keepSnapshots leaves the snapshots on the server', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, keepSnapshots: true, compress: true });
    const backup = await backupToDir(source, tmp.path);
    expect(backup.error).toBeUndefined();
    expect(sim.snapshots().map((s) => s.collection).sort()).toEqual([names.chunks, names.docs]);
    // compress: true hands the artifact to the engine's compression codecs.
    expect(Object.values(backup.compression)).toEqual(['engine-default', 'engine-default']);
  });

  it('post-restore points_count differing from the manifest fails the restore', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    const tampered = structuredClone(backup.component);
    const c = (tampered.metadata.collections as { name: string; pointsCount: number }[]).find((x) => x.name === names.docs)!;
    c.pointsCount = 26;
    const error = await expectBackupError(restoreFromDir(source, tmp.path, tampered));
    expect(error.code).toBe('RESTORE_FAILED');
    expect(error.message).toContain(`"${names.docs}" has 25 points, the backup recorded 26`);
  });

  it('deletes the uploaded snapshot Qdrant keeps after a restore, also when the check after it fails (qdrant#10207)', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    expect(sim.snapshots()).toEqual([]);
    await restoreFromDir(source, tmp.path, backup.component);
    expect(sim.snapshots()).toEqual([]);
    const deletes = sim.requests().filter((r) => r.method === 'DELETE' && /\/snapshots\/[^/]+$/.test(r.path) && r.status === 200);
    expect(deletes.map((r) => decodeURIComponent(r.path.split('/')[2]!)).sort()).toEqual(expect.arrayContaining([names.chunks, names.docs]));

    const tampered = structuredClone(backup.component);
    (tampered.metadata.collections as { name: string; pointsCount: number }[]).find((x) => x.name === names.docs)!.pointsCount = 26;
    const error = await expectBackupError(restoreFromDir(source, tmp.path, tampered, { options: { collections: [names.docs] } }));
    expect(error.code).toBe('RESTORE_FAILED');
    expect(sim.snapshots()).toEqual([]);
  });

  it('refuses the whole restore before any upload when a live collection has another vectors config or shard number', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    await client.deleteCollection(names.chunks);
    await client.deleteCollection(names.docs);
    await client.createCollection(names.docs, { vectors: { text: { size: 5, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } } });
    for (const dryRun of [true, false]) {
      const error = await expectBackupError(restoreFromDir(source, tmp.path, backup.component, { dryRun }));
      expect(error.code).toBe('RESTORE_FAILED');
      expect(error.message).toContain(`collection "${names.docs}" on ${sim.url} has vectors text: 5-d Cosine, title: 3-d Dot, the backup recorded text: 4-d Cosine, title: 3-d Dot`);
      expect(error.hint).toMatch(/restoreAs|collectionSuffix/);
    }
    // chunks (restored first, alphabetically) was not created: nothing changed.
    expect(sim.requests().filter((r) => r.path.endsWith('/snapshots/upload'))).toEqual([]);
    expect(sim.collections().map((c) => c.name)).toEqual([names.docs]);

    await client.deleteCollection(names.docs);
    await client.createCollection(names.docs, { vectors: { text: { size: 4, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } }, shard_number: 3 });
    const shards = await expectBackupError(restoreFromDir(source, tmp.path, backup.component));
    expect(shards.message).toContain(`collection "${names.docs}" on ${sim.url} has 3 shards, the backup recorded 1`);
    expect(sim.collections().map((c) => c.name)).toEqual([names.docs]);

    // A fresh target is fine.
    const res = await restoreFromDir(source, tmp.path, backup.component, { options: { collectionSuffix: '_new' } });
    expect(res.plan).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^create collection "${names.docs}_new"`))]));
  });

  it('after an upload it waits while the collection is yellow and compares the exact count, not the estimate', async () => {
    await sim.stop();
    sim = await startQdrantSimulator({ apiKey: API_KEY, indexingReadsAfterRecovery: 3 });
    client = clientFor(sim.url, API_KEY);
    await seed(client, names);
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    await dropAll(client, [names.docs, names.chunks]);
    const res = await restoreFromDir(source, tmp.path, backup.component);
    expect((res.metadata as { restored: { pointsCount: number }[] }).restored.map((r) => r.pointsCount).sort()).toEqual([15, 25]);
    const reads = sim.requests().filter((r) => r.method === 'GET' && r.path === `/collections/${names.docs}`);
    expect(reads.length).toBeGreaterThanOrEqual(4);
    expect(sim.requests().some((r) => r.method === 'POST' && r.path === `/collections/${names.docs}/points/count`)).toBe(true);
  });

  it('Qdrant before 1.8 reports no checksum and ignores one on upload: the backup and restore say so and do not send it', async () => {
    await sim.stop();
    sim = await startQdrantSimulator({ apiKey: API_KEY, version: '1.7.4' });
    client = clientFor(sim.url, API_KEY);
    await seed(client, names);
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, collections: [names.docs], ...fast });
    const backup = await backupToDir(source, tmp.path);
    expect(backup.error).toBeUndefined();
    expect(backup.result?.warnings).toEqual([expect.stringContaining(`Qdrant 1.7.4 did not report a checksum for the snapshot of "${names.docs}" (Qdrant reports one from 1.8 on)`)]);
    const res = await restoreFromDir(source, tmp.path, backup.component, { options: { collectionSuffix: '_old' } });
    expect(res.warnings).toEqual([expect.stringContaining('Qdrant 1.7.4 does not verify an uploaded snapshot\'s checksum (from 1.8 on it does)')]);
    const uploads = sim.requests().filter((r) => r.path.endsWith('/snapshots/upload'));
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.query.checksum).toBeUndefined();
    expect(await readPoints(client, `${names.docs}_old`)).toHaveLength(25);
  });

  it('Qdrant enforces the recorded checksum on upload', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    const tampered = structuredClone(backup.component);
    const artifact = tampered.artifacts.find((a) => a.name === `${names.docs}.snapshot`)!;
    artifact.metadata = { ...artifact.metadata, checksum: 'ab'.repeat(32) };
    const error = await expectBackupError(restoreFromDir(source, tmp.path, tampered, { options: { collections: [names.docs] } }));
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.message).toMatch(/Checksum mismatch/);
  });

  it('verify() reports a collection that lost points, a missing alias and a missing collection', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    await client.delete(names.docs, { wait: true, points: [1, 2] }).catch(async () => {
      // The simulator has no point deletion; recreate the collection with fewer points instead.
      const pts = (await readPoints(client, names.docs)).slice(2);
      await client.deleteCollection(names.docs);
      await client.createCollection(names.docs, { vectors: { text: { size: 4, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } } });
      await client.upsert(names.docs, { wait: true, points: pts.map((p) => ({ id: p.id, vector: p.vector as never, payload: p.payload as never })) });
    });
    await client.deleteCollection(names.chunks);
    const res = await source.verify!({ component: backup.component, signal: new AbortController().signal, logger: capturingLogger() });
    expect(res.ok).toBe(false);
    expect(res.mismatches).toEqual([
      `collection "${names.chunks}" does not exist`,
      `collection "${names.docs}" has 23 points, the backup recorded 25`,
      `alias "${names.docsAlias}" is missing, the backup had it on "${names.docs}"`,
    ]);
  });

  it('rejects restore options that do not fit', async () => {
    const source = createQdrantSource({ url: sim.url, apiKey: API_KEY, ...fast });
    const backup = await backupToDir(source, tmp.path);
    let error = await expectBackupError(restoreFromDir(source, tmp.path, backup.component, { options: { collections: ['nope'] } }));
    expect(error.code).toBe('USAGE');
    expect(error.message).toContain('"nope" is not in this backup set');
    error = await expectBackupError(restoreFromDir(source, tmp.path, backup.component, { options: { restoreAs: { [names.docs]: 'a/b' } } }));
    expect(error.code).toBe('USAGE');
    error = await expectBackupError(
      restoreFromDir(source, tmp.path, backup.component, { options: { restoreAs: { [names.docs]: 'same', [names.chunks]: 'same' } } }),
    );
    expect(error.message).toContain('two collections would be restored into "same"');
  });

  it('check() reports version and collections', async () => {
    const res = await createQdrantSource({ url: sim.url, apiKey: API_KEY }).check();
    expect(res).toMatchObject({ ok: true, problems: [], details: { version: '1.13.2', collections: [names.chunks, names.docs], cluster: { enabled: false } } });
  });
});
