/**
 * The cluster simulator's answers, checked against what qdrant/qdrant's source answers (see the
 * header of packages/testkit/src/qdrant-cluster-simulator.ts for the files): shapes, status
 * codes and messages a client depends on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantCluster, type QdrantClusterSimulator } from '@scholaria/backup-testkit';
import { multipartFileBody } from '../src/index.js';
import { Readable } from 'node:stream';

let cluster: QdrantClusterSimulator;

async function call(peer: number, method: string, path: string, body?: unknown) {
  const res = await fetch(`${cluster.peers[peer]!.url}${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as { result?: unknown; status?: unknown } };
}

async function download(peer: number, path: string): Promise<Buffer> {
  const res = await fetch(`${cluster.peers[peer]!.url}${path}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function upload(peer: number, path: string, bytes: Buffer) {
  const m = multipartFileBody('snapshot', 'x.snapshot', Readable.from([bytes]), bytes.length);
  const chunks: Buffer[] = [];
  for await (const c of m.body) chunks.push(c as Buffer);
  const res = await fetch(`${cluster.peers[peer]!.url}${path}`, { method: 'POST', body: Buffer.concat(chunks), headers: { 'content-type': m.contentType } });
  return { status: res.status, json: (await res.json()) as { result?: unknown; status?: unknown } };
}

const holders = (shard: number) => cluster.placement('c').find((s) => s.shardId === shard)!.replicas.map((r) => r.peerId);
const indexOf = (peerId: string) => cluster.peers.find((p) => p.peerId === peerId)!.index;

describe('Qdrant cluster simulator', () => {
  beforeAll(async () => {
    cluster = await startQdrantCluster({ peers: 3, transferDelayMs: 1500 });
    expect((await call(0, 'PUT', '/collections/c', { vectors: { size: 2, distance: 'Dot' }, shard_number: 3, replication_factor: 2 })).status).toBe(200);
    expect(
      (await call(1, 'PUT', '/collections/c/points?wait=true', { points: Array.from({ length: 30 }, (_, i) => ({ id: i + 1, vector: [i, 1], payload: { i } })) })).status,
    ).toBe(200);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('GET /cluster: every peer by u64 id with its p2p URI, the answering peer in peer_id', async () => {
    const res = await call(1, 'GET', '/cluster');
    expect(res.text).toContain(`"peer_id":${cluster.peers[1]!.peerId}`);
    const result = res.json.result as { status: string; peers: Record<string, { uri: string }>; raft_info: { role: string } };
    expect(result.status).toBe('enabled');
    expect(Object.keys(result.peers).sort()).toEqual(cluster.peers.map((p) => p.peerId).sort());
    expect(Object.values(result.peers).map((p) => p.uri)).toContain('http://qdrant-1.qdrant-headless:6335/');
    expect(result.raft_info.role).toBe('Follower');
  });

  it('GET /collections/{c}/cluster: local and remote replicas from the asking peer, Active', async () => {
    const res = await call(0, 'GET', '/collections/c/cluster');
    const r = res.json.result as { shard_count: number; local_shards: { shard_id: number; points_count: number; state: string }[]; remote_shards: { shard_id: number; state: string }[]; shard_transfers: unknown[] };
    expect(r.shard_count).toBe(3);
    expect(r.local_shards.length + r.remote_shards.length).toBe(6);
    expect([...r.local_shards, ...r.remote_shards].every((s) => s.state === 'Active')).toBe(true);
    expect(r.local_shards.reduce((n, s) => n + s.points_count, 0)).toBeGreaterThan(0);
    expect(r.shard_transfers).toEqual([]);
    expect(res.text).toMatch(/"peer_id":\d{16,}/);
  });

  it('shard snapshots: named <c>-shard-<s>-<time>, 404 for a shard the collection lacks, 400 on a peer without a replica', async () => {
    const holder = indexOf(holders(0)[0]!);
    const other = cluster.peers.find((p) => !holders(0).includes(p.peerId))!.index;
    const created = await call(holder, 'POST', '/collections/c/shards/0/snapshots');
    expect(created.status).toBe(200);
    const desc = created.json.result as { name: string; checksum: string; size: number };
    expect(desc.name).toMatch(/^c-shard-0-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.snapshot$/);
    expect(desc.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(await call(holder, 'POST', '/collections/c/shards/9/snapshots')).toMatchObject({ status: 404, json: { status: { error: 'Not found: shard 9 not found' } } });
    expect(await call(other, 'POST', '/collections/c/shards/0/snapshots')).toMatchObject({ status: 400, json: { status: { error: 'Wrong input: Shard 0 is not a local or queue proxy shard' } } });
    expect(await call(other, 'GET', '/collections/c/shards/0/snapshots')).toMatchObject({ status: 400, json: { status: { error: 'Wrong input: Shard 0 is not a local shard' } } });
    expect((await call(holder, 'GET', '/collections/c/shards/0/snapshots')).json.result).toEqual([expect.objectContaining({ name: desc.name, size: desc.size })]);
    expect((await call(holder, 'DELETE', `/collections/c/shards/0/snapshots/${desc.name}`)).json.result).toBe(true);
    expect(cluster.snapshots()).toEqual([]);
  });

  it('shard upload: keeps no copy; priority=snapshot sets the other replicas Dead until Qdrant re-syncs them; bad priority is 400', async () => {
    const [first, second] = holders(1).map(indexOf) as [number, number];
    const desc = (await call(first, 'POST', '/collections/c/shards/1/snapshots')).json.result as { name: string };
    const bytes = await download(first, `/collections/c/shards/1/snapshots/${desc.name}`);
    await call(first, 'DELETE', `/collections/c/shards/1/snapshots/${desc.name}`);
    expect((await upload(second, '/collections/c/shards/1/snapshots/upload?priority=fast', bytes)).status).toBe(400);
    const res = await upload(second, '/collections/c/shards/1/snapshots/upload?priority=snapshot', bytes);
    expect(res).toMatchObject({ status: 200, json: { result: null, status: 'ok' } });
    const states = Object.fromEntries(cluster.placement('c').find((s) => s.shardId === 1)!.replicas.map((r) => [r.peerId, r.state]));
    expect(states[cluster.peers[second]!.peerId]).toBe('Active');
    expect(states[cluster.peers[first]!.peerId]).toBe('Dead');
    expect(cluster.snapshots()).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (cluster.placement('c')[1]!.replicas.some((r) => r.state !== 'Active') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(cluster.placement('c')[1]!.replicas.map((r) => r.state)).toEqual(['Active', 'Active']);
    // A shard upload never creates the collection.
    expect((await upload(0, '/collections/nope/shards/0/snapshots/upload', bytes)).status).toBe(404);
  });

  it('a stopped peer refuses connections; the others still answer and list its replicas', async () => {
    const peer = cluster.peers[2]!;
    await peer.stop();
    await expect(fetch(`${peer.url}/`)).rejects.toThrow();
    const r = (await call(0, 'GET', '/collections/c/cluster')).json.result as { remote_shards: { peer_id: number }[] };
    expect(r.remote_shards.length).toBeGreaterThan(0);
    await peer.start();
    expect((await fetch(`${peer.url}/`)).status).toBe(200);
  });
});
