import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { CollectionConfig, StoredPoint } from './state.js';

/**
 * The simulator's snapshot format: a tar archive (as Qdrant's snapshots are) holding
 * `snapshot.json` (format marker, Qdrant version, collection name and config) and
 * `points.jsonl` (one point per line). It is NOT Qdrant's segment format: a snapshot made by
 * the simulator restores only into the simulator.
 */
export const SIM_SNAPSHOT_FORMAT = 'scholaria-qdrant-simulator-snapshot';

export interface SnapshotMeta {
  format: typeof SIM_SNAPSHOT_FORMAT;
  formatVersion: 1;
  qdrantVersion: string;
  collection: string;
  createdAt: string;
  config: CollectionConfig;
  /** Set in shard snapshots of the cluster simulator (../qdrant-cluster-simulator.ts). */
  shardId?: number;
}

export interface SnapshotContent {
  meta: SnapshotMeta;
  points: StoredPoint[];
}

export async function writeSnapshotFile(path: string, content: SnapshotContent): Promise<{ size: number; checksum: string }> {
  const pack = tar.pack();
  const meta = Buffer.from(`${JSON.stringify(content.meta, null, 2)}\n`);
  const lines = Buffer.from(content.points.map((p) => `${JSON.stringify(p)}\n`).join(''));
  const mtime = new Date(content.meta.createdAt);
  pack.entry({ name: 'snapshot.json', size: meta.length, mtime, mode: 0o644 }, meta);
  pack.entry({ name: 'points.jsonl', size: lines.length, mtime, mode: 0o644 }, lines);
  pack.finalize();
  await pipeline(pack, createWriteStream(path, { mode: 0o600 }));
  return { size: (await stat(path)).size, checksum: await sha256File(path) };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Reads a snapshot file; throws an Error with a readable reason when it is not one. */
export async function readSnapshotFile(path: string): Promise<SnapshotContent> {
  const extract = tar.extract();
  const source = createReadStream(path);
  source.on('error', (e) => extract.destroy(e));
  source.pipe(extract);
  let meta: SnapshotMeta | undefined;
  let pointsText: string | undefined;
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (entry.header.name === 'snapshot.json') meta = JSON.parse(text) as SnapshotMeta;
    else if (entry.header.name === 'points.jsonl') pointsText = text;
  }
  if (!meta || meta.format !== SIM_SNAPSHOT_FORMAT || pointsText === undefined) {
    throw new Error('the file is not a snapshot archive (snapshot.json or points.jsonl missing)');
  }
  const points = pointsText
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as StoredPoint);
  return { meta, points };
}
