import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantSimulator, startS3, type QdrantSimulator, type S3TestServer } from '@scholaria/backup-testkit';
import { createVectorBackup } from '../src/vector-backup.js';

async function qdrantCall(url: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${url}/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
}

async function seedCollection(url: string, name: string, n: number): Promise<void> {
  await qdrantCall(url, 'PUT', `collections/${name}`, { vectors: { size: 8, distance: 'Dot' } });
  const points = Array.from({ length: n }, (_, i) => ({ id: i + 1, vector: Array.from({ length: 8 }, (_, d) => i + d), payload: { n: i } }));
  await qdrantCall(url, 'PUT', `collections/${name}/points?wait=true`, { points });
}

describe('examples/custom-script: Qdrant to S3 every hour, custom notifier, one collection restored', () => {
  let qdrant: QdrantSimulator;
  let s3: S3TestServer;
  const lines: string[] = [];
  // 2026-11-26 09:59:30 in Seoul.
  let now = new Date('2026-11-26T00:59:30Z');
  let vb: ReturnType<typeof createVectorBackup>;
  const pointsOf = (name: string) => qdrant.collections().find((c) => c.name === name)?.points.length;

  beforeAll(async () => {
    [qdrant, s3] = await Promise.all([startQdrantSimulator(), startS3()]);
    await seedCollection(qdrant.url, 'chunks', 30);
    await seedCollection(qdrant.url, 'faq', 10);
    vb = createVectorBackup({
      qdrant: { url: qdrant.url },
      s3: { bucket: s3.bucket, prefix: 'vectors', endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true },
      report: (line) => lines.push(line),
      clock: () => now,
    });
  });
  afterAll(async () => {
    await vb?.engine.close();
    await Promise.all([qdrant?.stop(), s3?.stop()]);
  });

  it('the hourly tier fires at :00 Seoul time and stores the set on S3', async () => {
    expect(await vb.scheduler.tick()).toEqual([]);
    now = new Date('2026-11-26T01:00:05Z');
    const runs = await vb.scheduler.tick();
    expect(runs.map((r) => [r.tier, r.scheduledFor.toISOString(), r.result?.status])).toEqual([['hourly', '2026-11-26T01:00:00.000Z', 'complete']]);
    const setId = runs[0]!.result!.setId;
    expect(setId).toBe('scholaria_vectors_20261126_100005');
    const client = new S3Client(s3.clientConfig);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vectors/${setId}/` }));
    expect((listed.Contents ?? []).map((o) => o.Key!.slice(`vectors/${setId}/`.length)).sort()).toEqual([
      'SHA256SUMS',
      'manifest.json',
      'qdrant/chunks.snapshot',
      'qdrant/faq.snapshot',
    ]);
    client.destroy();
    // The custom notifier got the outcome; onEvent saw every event, including the start.
    expect(lines).toContain('event backup.started');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[success\\] backup\\.succeeded ${setId} qdrant=ok$`)));
    expect(lines.some((l) => l.startsWith('[start]'))).toBe(false);
  });

  it('restores one collection; the other keeps its newer data', async () => {
    await qdrantCall(qdrant.url, 'DELETE', 'collections/chunks');
    await qdrantCall(qdrant.url, 'PUT', 'collections/faq/points?wait=true', { points: [{ id: 99, vector: [1, 1, 1, 1, 1, 1, 1, 1], payload: {} }] });
    const result = await vb.restoreCollection('chunks');
    expect(result.components.map((c) => [c.name, c.status])).toEqual([['qdrant', 'ok']]);
    expect(pointsOf('chunks')).toBe(30);
    expect(pointsOf('faq')).toBe(11);
  });

  it('restores a copy beside the live collection', async () => {
    const result = await vb.restoreCollection('faq', 'faq_restored');
    expect(result.status).toBe('ok');
    expect(pointsOf('faq_restored')).toBe(10);
    expect(pointsOf('faq')).toBe(11);
  });
});
