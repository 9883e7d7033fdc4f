import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { makeTempDir, startQdrantCluster, startQdrantSimulator, type QdrantClusterSimulator, type QdrantSimulator, type TempDir } from '@scholaria/backup-testkit';
import { createQdrantSource } from '../src/index.js';
import { aliasMap, clientFor, dropAll, readPoints, seed, seedNames } from './helpers/fixtures.js';

const run = promisify(execFile);
const API_KEY = 'engine-qdrant-key-91b2';
const names = seedNames();

describe('Qdrant source through the engine and fs storage', () => {
  let sim: QdrantSimulator;
  let root: TempDir;
  let engine: BackupEngine;
  let client: ReturnType<typeof clientFor>;

  beforeEach(async () => {
    sim = await startQdrantSimulator({ apiKey: API_KEY });
    root = await makeTempDir('qdrant-engine-test-');
    client = clientFor(sim.url, API_KEY);
    await seed(client, names);
    engine = createBackupEngine({
      sources: [createQdrantSource({ url: sim.url, apiKey: API_KEY, retries: 1, retryDelayMs: 5 })],
      storage: createFsStorage({ root: root.path, fsync: false }),
      secrets: [API_KEY],
    });
  });
  afterEach(async () => {
    await engine.close();
    await sim.stop();
    await root.remove();
  });

  it('backs up into <set>/qdrant/<collection>.snapshot that sha256sum -c accepts, and restores it exactly', async () => {
    const docs = await readPoints(client, names.docs);
    const chunks = await readPoints(client, names.chunks);
    const result = await engine.backup({ tier: 'daily' });
    expect(result.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
    expect(result.status).toBe('complete');
    const setDir = join(root.path, result.setId);
    expect((await readdir(join(setDir, 'qdrant'))).sort()).toEqual([`${names.chunks}.snapshot`, `${names.docs}.snapshot`]);
    const sums = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: setDir });
    expect(sums.stdout).toContain(`qdrant/${names.docs}.snapshot: OK`);
    // The snapshot file is Qdrant's bytes as they are: a tar archive.
    const tar = await run('tar', ['-tf', join(setDir, 'qdrant', `${names.docs}.snapshot`)]);
    expect(tar.stdout.split('\n').filter(Boolean)).toEqual(['snapshot.json', 'points.jsonl']);
    const manifest = await engine.readManifest('latest');
    expect(JSON.stringify(manifest)).not.toContain(API_KEY);
    const qdrant = manifest.components.find((c) => c.name === 'qdrant')!;
    expect(qdrant.metadata).toMatchObject({ qdrantVersion: '1.13.2', collections: [{ name: names.chunks }, { name: names.docs }] });

    await dropAll(client, [names.docs, names.chunks]);
    const dry = await engine.restore({ ref: 'latest', dryRun: true });
    expect(dry.components[0]!.status).toBe('planned');
    expect(dry.components[0]!.plan.filter((l) => l.startsWith('create collection'))).toHaveLength(2);
    expect(sim.collections()).toEqual([]);

    const restored = await engine.restore({ ref: 'latest' });
    expect(restored.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
    expect(await readPoints(client, names.docs)).toEqual(docs);
    expect(await readPoints(client, names.chunks)).toEqual(chunks);
    expect(await aliasMap(client)).toEqual({ [names.docsAlias]: names.docs, [names.chunksAlias]: names.chunks });

    const copy = await engine.restore({ ref: 'latest', componentOptions: { qdrant: { restoreAs: { [names.docs]: 'docs_copy' }, collections: [names.docs] } } });
    expect(copy.status).toBe('ok');
    expect(await readPoints(client, 'docs_copy')).toEqual(docs);
  });

  it('a corrupted download makes the qdrant component fail with CHECKSUM_MISMATCH and stores no snapshot', async () => {
    sim.setCorruptDownloads(true);
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).not.toBe('complete');
    const component = result.components.find((c) => c.name === 'qdrant')!;
    expect(component.status).toBe('failed');
    expect((component.error as { code?: string }).code).toBe('CHECKSUM_MISMATCH');
    expect(component.error?.message).toMatch(/collection "(chunks|docs)"/);
    const files = await readdir(join(root.path, result.setId, 'qdrant')).catch(() => [] as string[]);
    expect(files.filter((f) => f.endsWith('.snapshot'))).toEqual([]);
  });
});

describe('Qdrant cluster capture through the engine and fs storage', () => {
  const clusters: QdrantClusterSimulator[] = [];
  const engines: BackupEngine[] = [];
  let root: TempDir;
  const engineFor = (cluster: QdrantClusterSimulator) => {
    const e = createBackupEngine({
      sources: [createQdrantSource({ url: cluster.url, apiKey: API_KEY, peerUrls: cluster.peerUrls(), retries: 1, retryDelayMs: 5 })],
      storage: createFsStorage({ root: root.path, fsync: false }),
      secrets: [API_KEY],
    });
    engines.push(e);
    return e;
  };
  beforeEach(async () => {
    root = await makeTempDir('qdrant-engine-cluster-test-');
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const c of clusters.splice(0)) await c.stop();
    await root.remove();
  });
  const start = async (peers: number) => {
    const c = await startQdrantCluster({ peers, apiKey: API_KEY });
    clusters.push(c);
    return c;
  };

  it('stores one artifact per shard that sha256sum -c accepts and restores it into a 2-peer cluster; a dead sole holder fails the component', async () => {
    const from = await start(3);
    const client = clientFor(from.url, API_KEY);
    await client.createCollection('docs', { vectors: { size: 3, distance: 'Dot' }, shard_number: 3, replication_factor: 1 });
    await client.upsert('docs', { wait: true, points: Array.from({ length: 40 }, (_, i) => ({ id: i + 1, vector: [i, 1, -i], payload: { i } })) });
    const engine = engineFor(from);
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('complete');
    const setDir = join(root.path, result.setId);
    expect((await readdir(join(setDir, 'qdrant'))).sort()).toEqual(['docs.shard-0.snapshot', 'docs.shard-1.snapshot', 'docs.shard-2.snapshot']);
    const sums = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: setDir });
    for (const s of [0, 1, 2]) expect(sums.stdout).toContain(`qdrant/docs.shard-${s}.snapshot: OK`);

    const to = await start(2);
    const restored = await engineFor(to).restore({ ref: result.setId });
    expect(restored.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
    expect(await readPoints(clientFor(to.url, API_KEY), 'docs')).toEqual(await readPoints(client, 'docs'));

    await from.peers[2]!.stop();
    const failed = await engine.backup({ tier: 'daily' });
    expect(failed.status).not.toBe('complete');
    const component = failed.components.find((c) => c.name === 'qdrant')!;
    expect(component.status).toBe('failed');
    expect(component.error?.message).toContain(`could not snapshot shard 2 of collection "docs" on any peer holding an Active replica`);
  });
});
