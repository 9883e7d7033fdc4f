/**
 * The round trip of qdrant-source.test.ts against a REAL Qdrant, opt-in: it runs only when
 * QDRANT_URL is set (e.g. QDRANT_URL=http://127.0.0.1:6333, plus QDRANT_API_KEY if the server
 * has one), because no Qdrant can be installed on the CI machines. `describe.runIf` is the
 * switch, not a forgotten skip. It works on collections named scholaria_backup_test_<random>_*
 * and deletes them afterwards; it never touches other collections. It covers issue 19 items 1-3
 * (uploaded snapshots deleted, alias targets refused, incompatible live collections refused).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { createQdrantSource } from '../src/index.js';
import { backupToDir, restoreFromDir } from './helpers/dir-context.js';
import { aliasMap, clientFor, dropAll, readPoints, seed, seedNames } from './helpers/fixtures.js';

const url = process.env.QDRANT_URL;
const apiKey = process.env.QDRANT_API_KEY || undefined;

describe.runIf(url)('Qdrant source against a real Qdrant (QDRANT_URL)', () => {
  const prefix = `scholaria_backup_test_${randomBytes(4).toString('hex')}_`;
  const names = seedNames(prefix);
  const copy = `${prefix}docs_copy`;
  const fresh = `${prefix}_fresh`;
  let tmp: TempDir;
  let client: ReturnType<typeof clientFor>;
  const source = () => createQdrantSource({ url: url!, ...(apiKey ? { apiKey } : {}), collections: [names.docs, names.chunks] });

  beforeAll(async () => {
    tmp = await makeTempDir('qdrant-real-test-');
    client = clientFor(url!, apiKey);
    await seed(client, names);
  });
  afterAll(async () => {
    if (client) {
      await dropAll(client, [names.docs, names.chunks, copy, `${names.docs}${fresh}`, `${names.chunks}${fresh}`]).catch(() => undefined);
    }
    await tmp?.remove();
  });

  it('check() reaches the server', async () => {
    const res = await source().check();
    expect(res.problems).toEqual([]);
    expect(res.ok).toBe(true);
  });

  it('backs up, restores after loss with identical points, payloads and aliases, and restores under another name', async () => {
    const docsBefore = await readPoints(client, names.docs);
    const chunksBefore = await readPoints(client, names.chunks);
    const src = source();

    const backup = await backupToDir(src, tmp.path);
    expect(backup.error).toBeUndefined();
    expect(backup.component.artifacts).toHaveLength(2);
    for (const a of backup.component.artifacts) expect(a.metadata?.checksum ?? a.sha256).toBe(a.sha256);
    const serverSnapshots = await client.listSnapshots(names.docs);
    expect(serverSnapshots).toEqual([]);

    const dry = await restoreFromDir(src, tmp.path, backup.component, { dryRun: true });
    expect(dry.plan?.some((l) => l.startsWith(`replace collection "${names.docs}"`))).toBe(true);

    await dropAll(client, [names.docs, names.chunks]);
    await restoreFromDir(src, tmp.path, backup.component);
    expect(await readPoints(client, names.docs)).toEqual(docsBefore);
    expect(await readPoints(client, names.chunks)).toEqual(chunksBefore);
    const aliases = await aliasMap(client);
    expect(aliases[names.docsAlias]).toBe(names.docs);
    expect(aliases[names.chunksAlias]).toBe(names.chunks);

    await restoreFromDir(src, tmp.path, backup.component, { options: { restoreAs: { [names.docs]: copy }, collections: [names.docs] } });
    expect(await readPoints(client, copy)).toEqual(docsBefore);
    expect((await aliasMap(client))[names.docsAlias]).toBe(names.docs);

    const verified = await src.verify!({ component: backup.component, signal: new AbortController().signal, logger: console as never });
    expect(verified.mismatches).toEqual([]);

    // Issue 19, item 1: Qdrant keeps every uploaded snapshot in snapshots/<collection>/; the
    // restores above deleted theirs.
    for (const c of [names.docs, names.chunks, copy]) expect(await client.listSnapshots(c)).toEqual([]);
  });

  it('refuses a restore target that is an alias (Qdrant would overwrite the collection behind it), changing nothing', async () => {
    const src = source();
    const backup = await backupToDir(src, tmp.path);
    await client.upsert(names.docs, { wait: true, points: [{ id: 3, vector: { text: [0, 0, 1, 0], title: [0, 1, 0] }, payload: { title: 'live edit' } }] });
    const live = await readPoints(client, names.docs);
    for (const dryRun of [true, false]) {
      const error = await restoreFromDir(src, tmp.path, backup.component, {
        dryRun,
        options: { restoreAs: { [names.docs]: names.docsAlias }, collections: [names.docs] },
      }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(error?.code).toBe('USAGE');
      expect(error?.message).toContain(`is an alias of collection "${names.docs}"`);
    }
    expect(await readPoints(client, names.docs)).toEqual(live);
    expect(await client.listSnapshots(names.docs)).toEqual([]);
  });

  it('refuses the whole restore before any upload when a live collection has another vectors config', async () => {
    const src = source();
    const backup = await backupToDir(src, tmp.path);
    const target = `${names.chunks}${fresh}`;
    // The chunks copy is restored first; the docs copy exists with another vector size.
    await client.createCollection(`${names.docs}${fresh}`, { vectors: { text: { size: 5, distance: 'Cosine' }, title: { size: 3, distance: 'Dot' } } });
    const error = await restoreFromDir(src, tmp.path, backup.component, { options: { collectionSuffix: fresh } }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(error?.code).toBe('RESTORE_FAILED');
    expect(error?.message).toContain(`collection "${names.docs}${fresh}"`);
    expect(error?.message).toContain('has vectors text: 5-d Cosine, title: 3-d Dot, the backup recorded text: 4-d Cosine, title: 3-d Dot');
    const { collections } = await client.getCollections();
    expect(collections.map((c) => c.name)).not.toContain(target);
  });
});

/**
 * Cluster mode against a REAL Qdrant cluster, opt-in like the suite above: QDRANT_CLUSTER_URL
 * is the REST URL of one peer of a cluster of two or more peers, QDRANT_PEER_URLS (peer=url
 * pairs) or QDRANT_PEER_URL_TEMPLATE reach the others when the default (the peer's p2p host with
 * QDRANT_CLUSTER_URL's port) does not; QDRANT_API_KEY as above. It creates
 * scholaria_backup_test_<random>_sharded with 4 shards and 2 replicas, backs it up shard by
 * shard, restores it under another name and compares every point, then deletes both.
 */
const clusterUrl = process.env.QDRANT_CLUSTER_URL;
describe.runIf(clusterUrl)('Qdrant source against a real Qdrant cluster (QDRANT_CLUSTER_URL)', () => {
  const prefix = `scholaria_backup_test_${randomBytes(4).toString('hex')}_`;
  const sharded = `${prefix}sharded`;
  const restored = `${sharded}_restored`;
  let tmp: TempDir;
  let client: ReturnType<typeof clientFor>;
  const peerUrls = process.env.QDRANT_PEER_URLS
    ? Object.fromEntries(process.env.QDRANT_PEER_URLS.split(',').map((pair) => pair.trim().split(/=(.*)/s).slice(0, 2) as [string, string]))
    : undefined;
  const source = () =>
    createQdrantSource({
      url: clusterUrl!,
      ...(apiKey ? { apiKey } : {}),
      ...(peerUrls ? { peerUrls } : {}),
      ...(process.env.QDRANT_PEER_URL_TEMPLATE ? { peerUrlTemplate: process.env.QDRANT_PEER_URL_TEMPLATE } : {}),
      collections: [sharded],
    });

  beforeAll(async () => {
    tmp = await makeTempDir('qdrant-real-cluster-test-');
    client = clientFor(clusterUrl!, apiKey);
    await client.createCollection(sharded, { vectors: { size: 4, distance: 'Cosine' }, shard_number: 4, replication_factor: 2 });
    await client.upsert(sharded, {
      wait: true,
      points: Array.from({ length: 200 }, (_, i) => ({ id: i + 1, vector: [Math.sin(i), Math.cos(i), i % 7, 1], payload: { n: i, tag: `t${i % 5}` } })),
    });
  });
  afterAll(async () => {
    if (client) await dropAll(client, [sharded, restored]).catch(() => undefined);
    await tmp?.remove();
  });

  it('captures every shard from a peer holding it and restores them into a new collection with every point', async () => {
    const src = source();
    const check = await src.check();
    expect(check.problems).toEqual([]);
    const before = await readPoints(client, sharded);
    const backup = await backupToDir(src, tmp.path);
    expect(backup.error).toBeUndefined();
    const meta = backup.component.metadata as { cluster: { mode: string }; collections: { shards: { shardId: number; peerId: string; replicas: { peerId: string }[] }[] }[] };
    expect(meta.cluster.mode).toBe('shards');
    const shards = meta.collections[0]!.shards;
    expect(shards.map((s) => s.shardId)).toEqual([0, 1, 2, 3]);
    for (const s of shards) expect(s.replicas.map((r) => r.peerId)).toContain(s.peerId);

    await restoreFromDir(src, tmp.path, backup.component, { options: { restoreAs: { [sharded]: restored } } });
    expect(await readPoints(client, restored)).toEqual(before);
  });
});
