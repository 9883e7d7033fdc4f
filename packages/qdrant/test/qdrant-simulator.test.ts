/**
 * The simulator's own contract: Qdrant's request and response shapes for the endpoints the
 * source uses, exercised with plain fetch (not the source) so a simulator bug cannot hide
 * behind a matching source bug.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantSimulator, type QdrantSimulator } from '@scholaria/backup-testkit';

const KEY = 'simulator-test-key';

describe('Qdrant simulator', () => {
  let sim: QdrantSimulator;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = { 'api-key': KEY }) => {
    const res = await fetch(`${sim.url}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json: json as Record<string, any>, headers: res.headers };
  };
  const upload = async (collection: string, bytes: Buffer, query: string) => {
    const form = new FormData();
    form.append('snapshot', new Blob([bytes]), 'upload.snapshot');
    const res = await fetch(`${sim.url}/collections/${collection}/snapshots/upload${query}`, { method: 'POST', headers: { 'api-key': KEY }, body: form });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    sim = await startQdrantSimulator({ apiKey: KEY, version: '1.13.4' });
    await call('PUT', '/collections/c1', { vectors: { a: { size: 2, distance: 'Dot' }, b: { size: 3, distance: 'Euclid' } } });
    await call('PUT', '/collections/c1/points?wait=true', {
      points: [
        { id: 2, vector: { a: [0.1, 0.2], b: [1, 2, 3] }, payload: { k: 'two' } },
        { id: 1, vector: { a: [0.5, 0.5] }, payload: { k: 'one', n: [1, { x: true }] } },
        { id: '6F9619FF8B86D011B42D00C04FC964FF', vector: { b: [0, 0, 1] } },
      ],
    });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('serves the version at / without a key, like Qdrant', async () => {
    const res = await call('GET', '/', undefined, {});
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ title: 'qdrant - vector search engine', version: '1.13.4', commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
  });

  it('answers 401 with Qdrant\'s plain-text bodies for a missing or wrong key, and accepts a bearer token', async () => {
    const missing = await call('GET', '/collections', undefined, {});
    expect(missing).toMatchObject({ status: 401, text: 'Must provide an API key or an Authorization bearer token' });
    const wrong = await call('GET', '/collections', undefined, { 'api-key': 'nope' });
    expect(wrong).toMatchObject({ status: 401, text: 'Invalid API key or JWT' });
    const bearer = await call('GET', '/collections', undefined, { authorization: `Bearer ${KEY}` });
    expect(bearer.status).toBe(200);
  });

  it('wraps results in { result, status, time } and errors in { status: { error }, time }', async () => {
    const list = await call('GET', '/collections');
    expect(list.json).toEqual({ result: { collections: [{ name: 'c1' }] }, status: 'ok', time: expect.any(Number) });
    const missing = await call('GET', '/collections/nope');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ status: { error: 'Not found: Collection `nope` doesn\'t exist!' }, time: expect.any(Number) });
    const dup = await call('PUT', '/collections/c1', { vectors: { size: 2, distance: 'Dot' } });
    expect(dup.status).toBe(409);
    const dim = await call('PUT', '/collections/c1/points', { points: [{ id: 9, vector: { a: [1, 2, 3] } }] });
    expect(dim.status).toBe(400);
    expect(dim.json.status.error).toBe('Wrong input: Vector dimension error: expected dim: 2, got 3');
  });

  it('returns CollectionInfo with config.params.vectors and points_count', async () => {
    const info = await call('GET', '/collections/c1');
    expect(info.json.result).toMatchObject({
      status: 'green',
      points_count: 3,
      config: { params: { vectors: { a: { size: 2, distance: 'Dot' }, b: { size: 3, distance: 'Euclid' } }, shard_number: 1 } },
    });
  });

  it('scrolls in id order (integers, then UUIDs normalised) with float32 vectors', async () => {
    const page = await call('POST', '/collections/c1/points/scroll', { limit: 2, with_vector: true });
    expect(page.json.result.points.map((p: { id: unknown }) => p.id)).toEqual([1, 2]);
    expect(page.json.result.points[1].vector.a).toEqual([Math.fround(0.1), Math.fround(0.2)]);
    expect(page.json.result.next_page_offset).toBe('6f9619ff-8b86-d011-b42d-00c04fc964ff');
    const rest = await call('POST', '/collections/c1/points/scroll', { offset: page.json.result.next_page_offset });
    expect(rest.json.result).toEqual({ points: [{ id: '6f9619ff-8b86-d011-b42d-00c04fc964ff', payload: {} }], next_page_offset: null });
  });

  it('creates, lists, downloads (sha256 = checksum) and deletes snapshots', async () => {
    const created = await call('POST', '/collections/c1/snapshots?wait=true');
    const desc = created.json.result;
    expect(desc).toEqual({
      name: expect.stringMatching(new RegExp(`^c1-${sim.peerId}-\\d{4}-\\d{2}-\\d{2}-\\d{2}-\\d{2}-\\d{2}\\.snapshot$`)),
      creation_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/),
      size: expect.any(Number),
      checksum: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect((await call('GET', '/collections/c1/snapshots')).json.result).toEqual([desc]);
    const res = await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } });
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(desc.size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(desc.checksum);
    expect(bytes.subarray(257, 262).toString()).toBe('ustar');

    sim.setCorruptDownloads(true);
    const bad = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());
    sim.setCorruptDownloads(false);
    expect(bad.length).toBe(bytes.length);
    expect(createHash('sha256').update(bad).digest('hex')).not.toBe(desc.checksum);

    expect((await call('DELETE', `/collections/c1/snapshots/${desc.name}?wait=true`)).json.result).toBe(true);
    expect((await call('GET', '/collections/c1/snapshots')).json.result).toEqual([]);
    expect((await call('GET', `/collections/c1/snapshots/${desc.name}`)).status).toBe(404);
  });

  it('upload restore: every priority restores on a single node (default snapshot), checksum is enforced', async () => {
    const desc = (await call('POST', '/collections/c1/snapshots')).json.result;
    const bytes = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());

    // Qdrant's default priority is `snapshot`, and without another active replica every
    // priority activates the snapshot's data.
    expect(await upload('r_default', bytes, '')).toMatchObject({ status: 200, json: { result: true, status: 'ok' } });
    expect((await call('POST', '/collections/r_default/points/count', { exact: true })).json.result.count).toBe(3);
    expect((await upload('r_replica', bytes, '?priority=replica')).status).toBe(200);
    expect((await call('POST', '/collections/r_replica/points/count', {})).json.result.count).toBe(3);

    expect((await upload('r_snap', bytes, `?priority=snapshot&checksum=${desc.checksum}`)).status).toBe(200);
    const restored = sim.collections().find((c) => c.name === 'r_snap')!;
    const original = sim.collections().find((c) => c.name === 'c1')!;
    expect(restored.points).toEqual(original.points);
    expect(restored.vectors).toEqual(original.vectors);

    const mismatch = await upload('r_bad', bytes, `?priority=snapshot&checksum=${'0'.repeat(64)}`);
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.status.error).toMatch(/^Checksum mismatch: expected [0-9a-f]{64}, actual 0{64}$/);
    expect((await call('GET', '/collections/r_bad')).status).toBe(404);

    const accepted = await upload('r_async', bytes, '?priority=snapshot&wait=false');
    expect(accepted).toMatchObject({ status: 202, json: { status: 'accepted' } });
    expect(accepted.json).not.toHaveProperty('result');
    await expect.poll(async () => (await call('GET', '/collections/r_async')).json.result?.points_count).toBe(3);
  });

  it('keeps an uploaded snapshot under snapshots/<path name>/<file name>, also when the recovery fails (qdrant#10207)', async () => {
    const desc = (await call('POST', '/collections/c1/snapshots')).json.result;
    const bytes = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());
    expect((await upload('kept', bytes, '')).status).toBe(200);
    const listed = (await call('GET', '/collections/kept/snapshots')).json.result as { name: string; size: number; checksum: string }[];
    expect(listed).toEqual([expect.objectContaining({ name: 'upload.snapshot', size: bytes.length, checksum: desc.checksum })]);
    // A mismatching checksum is refused before the file is moved: nothing is kept.
    expect((await upload('kept_bad', bytes, `?checksum=${'1'.repeat(64)}`)).status).toBe(400);
    expect(sim.snapshots().filter((x) => x.collection === 'kept_bad')).toEqual([]);
    expect((await call('DELETE', '/collections/kept/snapshots/upload.snapshot')).json.result).toBe(true);
    expect((await call('GET', '/collections/kept/snapshots')).json.result).toEqual([]);
    await call('DELETE', '/collections/kept');
  });

  it('resolves an alias in the upload path: the collection behind it is overwritten', async () => {
    const desc = (await call('POST', '/collections/c1/snapshots')).json.result;
    const bytes = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());
    await call('PUT', '/collections/behind', { vectors: { a: { size: 2, distance: 'Dot' }, b: { size: 3, distance: 'Euclid' } } });
    await call('POST', '/collections/aliases', { actions: [{ create_alias: { collection_name: 'behind', alias_name: 'front' } }] });
    expect((await upload('front', bytes, '')).status).toBe(200);
    expect((await call('GET', '/collections')).json.result.collections.map((c: { name: string }) => c.name)).not.toContain('front');
    expect((await call('POST', '/collections/behind/points/count', { exact: true })).json.result.count).toBe(3);
    await call('DELETE', '/collections/behind');
  });

  it('refuses a snapshot whose vectors or shard number differ from the existing collection', async () => {
    const desc = (await call('POST', '/collections/c1/snapshots')).json.result;
    const bytes = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());
    await call('PUT', '/collections/other_dim', { vectors: { a: { size: 4, distance: 'Dot' }, b: { size: 3, distance: 'Euclid' } } });
    const dim = await upload('other_dim', bytes, '');
    expect(dim.status).toBe(400);
    expect(dim.json.status.error).toMatch(/^Wrong input: Snapshot is not compatible with existing collection: Collection vectors: /);
    expect((await call('GET', '/collections/other_dim')).json.result.points_count).toBe(0);
    await call('PUT', '/collections/other_shards', { vectors: { a: { size: 2, distance: 'Dot' }, b: { size: 3, distance: 'Euclid' } }, shard_number: 2 });
    const shards = await upload('other_shards', bytes, '');
    expect(shards.status).toBe(400);
    expect(shards.json.status.error).toContain('Collection shard number: 2 Snapshot shard number: 1');
    await call('DELETE', '/collections/other_dim');
    await call('DELETE', '/collections/other_shards');
  });

  it('a recovered collection is yellow with an unreliable points_count for a while; the exact count is right', async () => {
    const desc = (await call('POST', '/collections/c1/snapshots')).json.result;
    const bytes = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());
    expect((await upload('indexing', bytes, '')).status).toBe(200);
    expect((await call('POST', '/collections/indexing/points/count', { exact: false })).json.result.count).not.toBe(3);
    for (let i = 0; i < 2; i++) {
      const info = (await call('GET', '/collections/indexing')).json.result;
      expect(info.status).toBe('yellow');
      expect(info.points_count).not.toBe(3);
      expect((await call('POST', '/collections/indexing/points/count', { exact: true })).json.result.count).toBe(3);
    }
    expect((await call('GET', '/collections/indexing')).json.result).toMatchObject({ status: 'green', points_count: 3 });
    await call('DELETE', '/collections/indexing');
  });

  it('refuses a snapshot of another minor version', async () => {
    const desc = (await call('POST', '/collections/c1/snapshots')).json.result;
    const bytes = Buffer.from(await (await fetch(`${sim.url}/collections/c1/snapshots/${desc.name}`, { headers: { 'api-key': KEY } })).arrayBuffer());
    const other = await startQdrantSimulator({ version: '1.14.0' });
    try {
      const form = new FormData();
      form.append('snapshot', new Blob([bytes]), 'x.snapshot');
      const res = await fetch(`${other.url}/collections/x/snapshots/upload?priority=snapshot`, { method: 'POST', body: form });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { status: { error: string } }).status.error).toMatch(/Qdrant 1\.13\.4 is not compatible with Qdrant 1\.14\.0/);
    } finally {
      await other.stop();
    }
  });

  it('applies alias actions atomically and lists them at GET /aliases and per collection', async () => {
    expect((await call('POST', '/collections/aliases', { actions: [{ create_alias: { collection_name: 'c1', alias_name: 'live' } }] })).json.result).toBe(true);
    const failed = await call('POST', '/collections/aliases', {
      actions: [{ create_alias: { collection_name: 'c1', alias_name: 'other' } }, { delete_alias: { alias_name: 'ghost' } }],
    });
    expect(failed.status).toBe(404);
    expect(failed.json.status.error).toBe('Not found: Alias ghost does not exists!');
    expect((await call('GET', '/aliases')).json.result).toEqual({ aliases: [{ alias_name: 'live', collection_name: 'c1' }] });
    expect((await call('GET', '/collections/c1/aliases')).json.result).toEqual({ aliases: [{ alias_name: 'live', collection_name: 'c1' }] });
    expect((await call('GET', '/collections/aliases')).status).toBe(404);
  });

  it('reports the cluster with u64 peer ids written as plain JSON numbers', async () => {
    expect((await call('GET', '/cluster')).json.result).toEqual({ status: 'disabled' });
    const clustered = await startQdrantSimulator({ peers: 2 });
    try {
      const text = await (await fetch(`${clustered.url}/cluster`)).text();
      expect(text).toContain(`"peer_id":${clustered.peerId}`);
      expect(BigInt(clustered.peerId) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
      expect(Object.keys((JSON.parse(text) as { result: { peers: object } }).result.peers)).toHaveLength(2);
    } finally {
      await clustered.stop();
    }
  });

  it('injects failures on request', async () => {
    sim.failNext({ status: 500, path: '/collections' });
    expect((await call('GET', '/collections')).status).toBe(500);
    expect((await call('GET', '/collections')).status).toBe(200);
  });
});
