import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackupError, silentLogger, type Logger } from '@scholaria/backup-core';
import { makeTempDir, startQdrantCluster, type QdrantClusterSimulator, type TempDir } from '@scholaria/backup-testkit';
import { createQdrantSource, qdrantSourceEnv } from '../src/index.js';
import { peerRestUrl } from '../src/qdrant-cluster.js';
import { backupToDir, restoreFromDir } from './helpers/dir-context.js';
import { aliasMap, clientFor, readPoints } from './helpers/fixtures.js';

const API_KEY = 'cluster-secret-key-0b1c';
const fast = { retries: 1, retryDelayMs: 5 };

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** `docs`: 4 shards x 2 replicas, named vectors; `logs`: 3 shards x 1 replica, UUID ids; `tenants`: custom sharding. */
async function seedCluster(cluster: QdrantClusterSimulator): Promise<void> {
  const c = clientFor(cluster.url, API_KEY);
  const r = rng(7);
  await c.createCollection('docs', {
    vectors: { text: { size: 4, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } },
    shard_number: 4,
    replication_factor: 2,
  });
  await c.upsert('docs', {
    wait: true,
    points: Array.from({ length: 60 }, (_, i) => ({
      id: i + 1,
      vector: { text: [r(), r(), r(), r()], title: [r(), r(), r()] },
      payload: { title: `문서 ${i + 1}`, topic: ['math', 'physics'][i % 2], meta: { page: i, nested: [1, { x: null }] } },
    })),
  });
  await c.createCollection('logs', { vectors: { size: 8, distance: 'Euclid' }, shard_number: 3, replication_factor: 1 });
  await c.upsert('logs', {
    wait: true,
    points: Array.from({ length: 30 }, (_, i) => ({
      id: `${(i + 1).toString(16).padStart(8, '0')}-0000-4000-8000-${(i + 1).toString(16).padStart(12, '0')}`,
      vector: Array.from({ length: 8 }, () => r()),
      payload: { line: i },
    })),
  });
  await c.createCollection('tenants', { vectors: { size: 2, distance: 'Dot' }, sharding_method: 'custom', replication_factor: 2 });
  await c.createShardKey('tenants', { shard_key: 'eu', shards_number: 2 });
  await c.createShardKey('tenants', { shard_key: 'us', shards_number: 1 });
  for (const [key, base] of [['eu', 0], ['us', 100]] as const) {
    await c.upsert('tenants', {
      wait: true,
      shard_key: key,
      points: Array.from({ length: 12 }, (_, i) => ({ id: base + i + 1, vector: [r(), r()], payload: { tenant: key, n: i } })),
    } as never);
  }
  await c.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'docs', alias_name: 'docs_live' } }] });
}

function sourceFor(cluster: QdrantClusterSimulator, extra: Record<string, unknown> = {}) {
  return createQdrantSource({ url: cluster.url, apiKey: API_KEY, peerUrls: cluster.peerUrls(), ...fast, ...extra });
}

async function dump(cluster: QdrantClusterSimulator, collection: string) {
  return await readPoints(clientFor(cluster.url, API_KEY), collection);
}

describe('Qdrant cluster capture (3-peer simulated cluster)', () => {
  const clusters: QdrantClusterSimulator[] = [];
  const dirs: TempDir[] = [];
  const start = async (options: Parameters<typeof startQdrantCluster>[0] = {}) => {
    const c = await startQdrantCluster({ apiKey: API_KEY, ...options });
    clusters.push(c);
    return c;
  };
  const tmp = async () => {
    const d = await makeTempDir('qdrant-cluster-test-');
    dirs.push(d);
    return d;
  };
  afterEach(async () => {
    for (const c of clusters.splice(0)) await c.stop();
    for (const d of dirs.splice(0)) await d.remove();
  });

  it('snapshots every shard on a peer holding it and records peers, shards and placement', async () => {
    const cluster = await start();
    await seedCluster(cluster);
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(cluster), dir.path);
    expect(backup.error).toBeUndefined();
    const meta = backup.component.metadata as {
      cluster: { enabled: boolean; peers: number; mode: string; members: { peerId: string; url: string }[] };
      collections: { name: string; artifact?: string; shards?: { shardId: number; shardKey?: string; artifact: string; peerId: string; replicas: { peerId: string; state: string }[]; sha256: string; pointsCount: number | null }[] }[];
    };
    expect(meta.cluster).toMatchObject({ enabled: true, peers: 3, mode: 'shards' });
    expect(meta.cluster.members.map((m) => m.peerId).sort()).toEqual(cluster.peers.map((p) => p.peerId).sort());
    const requests = cluster.requests();
    for (const name of ['docs', 'logs', 'tenants']) {
      const recorded = meta.collections.find((c) => c.name === name)!;
      expect(recorded.artifact).toBeUndefined();
      const placement = cluster.placement(name);
      expect(recorded.shards!.map((s) => s.shardId)).toEqual(placement.map((p) => p.shardId));
      for (const shard of recorded.shards!) {
        const real = placement.find((p) => p.shardId === shard.shardId)!;
        // The recorded placement is the real one, and the snapshot came from a peer holding the shard.
        expect(shard.replicas.map((r) => r.peerId).sort()).toEqual(real.replicas.map((r) => r.peerId).sort());
        expect(real.replicas.map((r) => r.peerId)).toContain(shard.peerId);
        expect(shard.pointsCount).toBe(real.replicas.find((r) => r.peerId === shard.peerId)!.points);
        const holder = cluster.peers.find((p) => p.peerId === shard.peerId)!;
        const created = requests.filter((q) => q.method === 'POST' && q.path === `/collections/${name}/shards/${shard.shardId}/snapshots`);
        expect(created.map((q) => q.peer)).toEqual([holder.index]);
        expect(created[0]!.status).toBe(200);
        // Checksummed like every artifact: the stored bytes hash to the recorded SHA-256.
        const stored = backup.component.artifacts.find((a) => a.name === shard.artifact)!;
        expect(stored.metadata).toMatchObject({ collection: name, shardId: shard.shardId, peerId: shard.peerId });
        const bytes = await readFile(join(dir.path, stored.path));
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(shard.sha256);
        expect(stored.sha256).toBe(shard.sha256);
      }
    }
    const tenants = meta.collections.find((c) => c.name === 'tenants')!;
    expect(tenants.shards!.map((s) => s.shardKey)).toEqual(['eu', 'eu', 'us']);
    // Every shard snapshot was deleted on its peer after the download.
    expect(cluster.snapshots()).toEqual([]);
    expect(backup.component.artifacts).toHaveLength(4 + 3 + 3);
  });

  it('restores into a fresh cluster of the same shape: every point, payload and vector, replicas re-synced', async () => {
    const from = await start();
    await seedCluster(from);
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(from), dir.path);
    expect(backup.error).toBeUndefined();
    const to = await start();
    const result = await restoreFromDir(sourceFor(to), dir.path, backup.component);
    expect(result.warnings ?? []).toEqual([]);
    for (const name of ['docs', 'logs', 'tenants']) {
      expect(await dump(to, name)).toEqual(await dump(from, name));
      const placement = to.placement(name);
      expect(placement.length).toBe(from.placement(name).length);
      for (const shard of placement) {
        for (const replica of shard.replicas) expect(replica).toMatchObject({ state: 'Active', points: from.placement(name).find((s) => s.shardId === shard.shardId)!.replicas[0]!.points });
      }
    }
    expect(to.placement('tenants').map((s) => s.shardKey)).toEqual(['eu', 'eu', 'us']);
    expect(await aliasMap(clientFor(to.url, API_KEY))).toEqual({ docs_live: 'docs' });
    // Each shard went to a peer holding it, with priority=snapshot and Qdrant's checksum.
    const uploads = to.requests().filter((q) => /\/shards\/\d+\/snapshots\/upload$/.test(q.path));
    expect(uploads).toHaveLength(10);
    for (const u of uploads) {
      expect(u.query).toMatchObject({ priority: 'snapshot', wait: 'true' });
      expect(u.query.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(u.status).toBe(200);
    }
    expect(to.snapshots()).toEqual([]);
  });

  it('restores into clusters of other peer counts (2 peers, and one standalone node) with every point', async () => {
    const from = await start();
    await seedCluster(from);
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(from), dir.path);
    expect(backup.error).toBeUndefined();
    for (const shape of [{ peers: 2 }, { peers: 1, distributed: false }]) {
      const to = await start(shape);
      const result = await restoreFromDir(sourceFor(to), dir.path, backup.component);
      expect(result.plan!.some((p) => p.includes('create collection "docs" (4 shards, replication factor 2)'))).toBe(true);
      for (const name of ['docs', 'logs', 'tenants']) {
        expect(await dump(to, name), `${name} into ${JSON.stringify(shape)}`).toEqual(await dump(from, name));
        expect(to.placement(name).length).toBe(from.placement(name).length);
      }
    }
  });

  it('replaces an existing collection of the same layout and refuses one with another shard count before changing anything', async () => {
    const from = await start();
    await seedCluster(from);
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(from, { collections: ['docs', 'logs'] }), dir.path);
    expect(backup.error).toBeUndefined();
    const to = await start({ peers: 2 });
    const c = clientFor(to.url, API_KEY);
    await c.createCollection('docs', { vectors: { text: { size: 4, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } }, shard_number: 4, replication_factor: 2 });
    await c.upsert('docs', { wait: true, points: [{ id: 999, vector: { text: [1, 0, 0, 0], title: [0, 1, 0] }, payload: { stale: true } }] });
    await c.createCollection('logs', { vectors: { size: 8, distance: 'Euclid' }, shard_number: 2 });
    const error = await restoreFromDir(sourceFor(to), dir.path, backup.component).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(BackupError.isInstance(error)).toBe(true);
    expect((error as BackupError).code).toBe('RESTORE_FAILED');
    expect((error as BackupError).message).toContain('collection "logs"');
    expect((error as BackupError).message).toContain('the backup has 3 shards, the target has 2');
    expect((error as BackupError).message).toContain('nothing was changed');
    expect(to.requests().some((q) => q.path.endsWith('/snapshots/upload'))).toBe(false);
    expect((await dump(to, 'docs')).map((p) => p.id)).toEqual([999]);

    const only = await restoreFromDir(sourceFor(to), dir.path, backup.component, { options: { collections: ['docs'] } });
    expect(only.plan![0]).toContain('replace the 4 shards, replication factor 2 of collection "docs"');
    expect(await dump(to, 'docs')).toEqual(await dump(from, 'docs'));
  });

  it('takes a shard from another replica when its first peer is down, with a warning', async () => {
    const cluster = await start();
    await seedCluster(cluster);
    // Shard 1 lives on peers 1 and 2 (round-robin), not on the peer the source talks to: the
    // source asks its holders in peer id order, so stop the first one.
    const holders = cluster.placement('docs').find((s) => s.shardId === 1)!.replicas.map((r) => r.peerId).sort((x, y) => x.localeCompare(y));
    expect(holders).not.toContain(cluster.peers[0]!.peerId);
    const down = cluster.peers.find((p) => p.peerId === holders[0])!;
    await down.stop();
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(cluster, { collections: ['docs'] }), dir.path);
    expect(backup.error).toBeUndefined();
    const shards = (backup.component.metadata as { collections: { shards: { shardId: number; peerId: string }[] }[] }).collections[0]!.shards;
    expect(shards).toHaveLength(4);
    expect(shards.every((s) => s.peerId !== down.peerId)).toBe(true);
    const warning = (backup.result!.warnings ?? []).find((w) => w.startsWith('shard 1 of "docs"'));
    expect(warning).toContain(`was captured from peer ${holders[1]}`);
    expect(warning).toContain(`because peer ${down.peerId}`);
    expect(shards.find((s) => s.shardId === 1)!.peerId).toBe(holders[1]);
  });

  it('fails clearly, writing no set, when a peer holding the only replica of a shard dies during the backup', async () => {
    const cluster = await start();
    await seedCluster(cluster);
    const victim = cluster.placement('logs').find((s) => s.shardId === 2)!.replicas[0]!.peerId;
    const peer = cluster.peers.find((p) => p.peerId === victim)!;
    // The peer dies once the backup reaches the second shard of "logs".
    const logger: Logger = {
      ...silentLogger,
      info(message: string) {
        if (message.includes('creating a snapshot of shard 1 of "logs"')) void peer.stop();
      },
    };
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(cluster, { collections: ['logs'] }), dir.path, { logger });
    expect(BackupError.isInstance(backup.error)).toBe(true);
    const e = backup.error as BackupError;
    expect(e.code).toBe('SOURCE_FAILED');
    expect(e.message).toContain('could not snapshot shard 2 of collection "logs" on any peer holding an Active replica');
    expect(e.message).toContain(`peer ${victim}`);
    expect(e.hint).toContain('No backup set was written');
    expect(e.message).not.toContain(API_KEY);
  });

  it('refuses a shard whose replicas are all dead', async () => {
    const cluster = await start();
    await seedCluster(cluster);
    const holder = cluster.peers.find((p) => p.peerId === cluster.placement('logs')[0]!.replicas[0]!.peerId)!;
    await holder.stop();
    // A failed write marks the replica Dead in the consensus state.
    await clientFor(cluster.peers.find((p) => p !== holder)!.url, API_KEY).upsert('logs', {
      wait: true,
      points: Array.from({ length: 30 }, (_, i) => ({ id: 5000 + i, vector: Array.from({ length: 8 }, () => 0.1) })),
    });
    const other = cluster.peers.find((p) => p !== holder)!;
    const source = createQdrantSource({ url: other.url, apiKey: API_KEY, peerUrls: cluster.peerUrls(), collections: ['logs'], ...fast });
    const backup = await backupToDir(source, (await tmp()).path);
    expect((backup.error as BackupError).message).toMatch(/shard \d of collection "logs" has no Active replica to snapshot \(peer \d+: Dead\)/);
  });

  it('resumes a shard download broken midway and still verifies it', async () => {
    const cluster = await start();
    await seedCluster(cluster);
    cluster.failNext({ method: 'GET', path: /\/collections\/docs\/shards\/1\/snapshots\/.+/, cutAfterBytes: 700 });
    const dir = await tmp();
    const backup = await backupToDir(sourceFor(cluster, { collections: ['docs'] }), dir.path);
    expect(backup.error).toBeUndefined();
    const downloads = cluster.requests().filter((q) => q.method === 'GET' && /\/collections\/docs\/shards\/1\/snapshots\/.+/.test(q.path));
    expect(downloads).toHaveLength(2);
    const to = await start();
    await restoreFromDir(sourceFor(to), dir.path, backup.component);
    expect(await dump(to, 'docs')).toEqual(await dump(cluster, 'docs'));
  });

  it('check() probes every peer and names one it cannot reach', async () => {
    const cluster = await start();
    expect(await sourceFor(cluster).check()).toMatchObject({ ok: true, problems: [] });
    await cluster.peers[2]!.stop();
    const res = await sourceFor(cluster).check();
    expect(res.ok).toBe(false);
    expect(res.problems!.join('\n')).toContain(`Qdrant peer ${cluster.peers[2]!.peerId}`);
    expect(res.problems!.join('\n')).toContain('QDRANT_PEER_URLS');
    // Without peer URLs the default (p2p host with the REST port) is not reachable from here: said so too.
    const bare = await createQdrantSource({ url: cluster.url, apiKey: API_KEY, ...fast }).check();
    expect(bare.problems!.length).toBe(2);
  });
});

describe('peer REST URLs', () => {
  const peer = { id: '4611686018427387904', uri: 'http://qdrant-1.qdrant-headless:6335/' };
  it('defaults to the configured scheme, port and path with the peer host; the answering peer keeps the configured URL', () => {
    expect(peerRestUrl({ url: 'https://qdrant:6333/db' }, '1', peer)).toBe('https://qdrant-1.qdrant-headless:6333/db');
    expect(peerRestUrl({ url: 'http://lb:6333' }, peer.id, peer)).toBe('http://lb:6333');
  });
  it('uses peerUrls by peer id or p2p host, then the template', () => {
    expect(peerRestUrl({ url: 'http://x:6333', peerUrls: { [peer.id]: 'http://10.0.0.2:6333' } }, '1', peer)).toBe('http://10.0.0.2:6333');
    expect(peerRestUrl({ url: 'http://x:6333', peerUrls: { 'qdrant-1.qdrant-headless': 'http://a:1' } }, '1', peer)).toBe('http://a:1');
    expect(peerRestUrl({ url: 'http://x:6333', peerUrlTemplate: 'https://{host}.example.com:443' }, '1', peer)).toBe('https://qdrant-1.qdrant-headless.example.com:443');
    expect(peerRestUrl({ url: 'http://x:6333', peerUrlTemplate: 'http://gw/{peer_id}' }, '1', peer)).toBe(`http://gw/${peer.id}`);
  });
  it('reads QDRANT_PEER_URLS and QDRANT_PEER_URL_TEMPLATE from the env, refusing bad values by name', () => {
    const env = qdrantSourceEnv.env;
    expect(env.QDRANT_PEER_URLS.schema.parse('1=http://a:6333, qdrant-2.h=https://b:6333')).toEqual({ '1': 'http://a:6333', 'qdrant-2.h': 'https://b:6333' });
    expect(env.QDRANT_PEER_URLS.schema.safeParse('http://a:6333').success).toBe(false);
    expect(env.QDRANT_PEER_URLS.schema.safeParse('1=ftp://a').success).toBe(false);
    expect(env.QDRANT_PEER_URL_TEMPLATE.schema.parse('https://{host}:6333')).toBe('https://{host}:6333');
    expect(env.QDRANT_PEER_URL_TEMPLATE.schema.safeParse('https://fixed:6333').success).toBe(false);
    expect(() => createQdrantSource({ url: 'http://x:6333', peerUrlTemplate: 'nope' })).toThrow(/peerUrlTemplate/);
  });
});
