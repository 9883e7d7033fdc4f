import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBackupEngine, createZstdCodec, type BackupEngine, type BackupSource, type Manifest } from '@scholaria/backup-core';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createQdrantSource } from '@scholaria/backup-qdrant';
import { createRedisSource } from '@scholaria/backup-redis';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '@scholaria/backup-testkit';
import { DEMO_COLLECTION, deleteDemoCollection, qdrantFingerprint, seedQdrant, type QdrantTarget } from './qdrant-demo.js';
import {
  DEMO_SIZE,
  TABLES,
  dropTable,
  flushRedis,
  postgresFingerprint,
  redisFingerprint,
  seedPostgres,
  seedRedis,
  type SeedSize,
} from './seed.js';

export interface QuickstartOptions {
  /** Where backup sets are written; default `./backups` (relative to the working directory). */
  backupDir?: string;
  /** Also back up, break and restore a demo collection on this Qdrant (e.g. from `QDRANT_URL`). */
  qdrant?: QdrantTarget;
  /** Data volume; default DEMO_SIZE (4000 chunks with 384-dim embeddings). */
  size?: Partial<SeedSize>;
  /** Points in the Qdrant demo collection; default 1000. */
  qdrantPoints?: number;
  /**
   * Skip the restore, so the integrity check sees the disaster. Exists to prove that the check
   * can fail (the test uses it); the demo never sets it.
   */
  skipRestore?: boolean;
  /** Restore only these components (default: all of the set). */
  restoreComponents?: string[];
  /** How many manual sets `prune` keeps in backupDir after the run; default 3. */
  keepLast?: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

export interface IntegrityCheck {
  component: 'postgres' | 'redis' | 'qdrant';
  item: string;
  expected: string;
  actual: string;
  ok: boolean;
}

export interface QuickstartResult {
  /** True when the backup is complete, verified, and every table, key and point is back. */
  ok: boolean;
  setId: string;
  backupDir: string;
  /** False when `skipRestore` was set. */
  restored: boolean;
  components: string[];
  artifacts: { path: string; size: number; rawSize: number }[];
  bytes: number;
  /** Per step, in run order. */
  timings: { step: string; ms: number }[];
  checks: IntegrityCheck[];
  /** Sets kept and removed by the final prune. */
  prune: { kept: string[]; removed: string[] };
  problems: string[];
}

const DB = 'scholaria';

/**
 * The whole Quick start: throwaway PostgreSQL and Redis, Scholaria-like data, backup, list,
 * verify, a disaster (a dropped table, FLUSHALL, a deleted collection), restore of `latest`, and
 * a check that every table (row count and checksum), every key (type, value, TTL presence) and
 * every point is back. Servers are always stopped; the backup sets stay in `backupDir`.
 */
export async function runQuickstart(options: QuickstartOptions = {}): Promise<QuickstartResult> {
  const log = options.log ?? (() => undefined);
  const size: SeedSize = { ...DEMO_SIZE, ...options.size };
  const backupDir = resolve(options.backupDir ?? 'backups');
  const timings: QuickstartResult['timings'] = [];
  const problems: string[] = [];
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    log(`- ${name}...`);
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings.push({ step: name, ms: performance.now() - t0 });
    }
  };

  let pgServer: PostgresServer | undefined;
  let redisServer: RedisServer | undefined;
  let engine: BackupEngine | undefined;
  let qdrantSeeded = false;
  try {
    [pgServer, redisServer] = await step('start throwaway PostgreSQL and Redis', () => Promise.all([startPostgres(), startRedis()]));
    const pgUrl = pgServer.url(DB);
    const redisUrl = redisServer.url();

    await step('seed Scholaria-like data', async () => {
      await pgServer!.createDatabase(DB);
      await Promise.all([
        seedPostgres(pgUrl, size),
        seedRedis(redisUrl, size),
        options.qdrant ? seedQdrant(options.qdrant, options.qdrantPoints ?? 1000).then(() => void (qdrantSeeded = true)) : undefined,
      ]);
    });
    const before = await step('fingerprint the data', async () => ({
      pg: await postgresFingerprint(pgUrl),
      redis: await redisFingerprint(redisUrl),
      qdrant: options.qdrant ? await qdrantFingerprint(options.qdrant) : undefined,
    }));

    const sources: BackupSource[] = [createPostgresSource({ url: pgUrl }), createRedisSource({ url: redisUrl })];
    if (options.qdrant) {
      sources.push(
        createQdrantSource({ url: options.qdrant.url, ...(options.qdrant.apiKey ? { apiKey: options.qdrant.apiKey } : {}), collections: [DEMO_COLLECTION] }),
      );
    }
    engine = createBackupEngine({
      sources,
      storage: createFsStorage({ root: backupDir }),
      // zstd for artifacts whose source does not compress itself (Redis); PostgreSQL uses zstd anyway.
      codecs: [createZstdCodec()],
      retention: { tiers: { manual: { last: options.keepLast ?? 3 } } },
      secrets: [pgServer.password, ...(options.qdrant?.apiKey ? [options.qdrant.apiKey] : [])],
    });

    const backup = await step('back up', () => engine!.backup({ tier: 'manual' }));
    if (backup.status !== 'complete' || !backup.manifest) {
      const why = backup.components.filter((c) => c.error).map((c) => `${c.name}: ${c.error!.message}`);
      throw new Error(`backup ${backup.setId} is ${backup.status}: ${why.join('; ') || backup.error?.message}`);
    }
    const manifest: Manifest = backup.manifest;
    log(`  set ${backup.setId}: ${manifest.components.map((c) => c.name).join(', ')}`);

    const sets = await step('list', () => engine!.list());
    if (!sets.some((s) => s.id === backup.setId && s.status === 'complete')) problems.push(`list does not show ${backup.setId} as complete`);

    const verify = await step('verify checksums', () => engine!.verify({ ref: backup.setId }));
    if (!verify.ok) problems.push(`verify failed: ${verify.sets.flatMap((s) => s.problems).join('; ')}`);

    await step('disaster: DROP TABLE chunks, FLUSHALL' + (options.qdrant ? `, delete ${DEMO_COLLECTION}` : ''), async () => {
      await dropTable(pgUrl, 'chunks');
      await flushRedis(redisUrl);
      if (options.qdrant) await deleteDemoCollection(options.qdrant);
    });

    if (!options.skipRestore) {
      const restore = await step('restore latest', () =>
        engine!.restore({ ref: 'latest', ...(options.restoreComponents ? { components: options.restoreComponents } : {}) }),
      );
      if (restore.status !== 'ok') {
        problems.push(`restore failed: ${restore.components.filter((c) => c.error).map((c) => `${c.name}: ${c.error!.message}`).join('; ')}`);
      }
    }

    const checks = await step('check every row, key and point', async () => {
      const out: IntegrityCheck[] = [];
      const pgAfter = await postgresFingerprint(pgUrl);
      for (const table of TABLES) {
        const b = before.pg[table];
        const a = pgAfter[table];
        const show = (f: typeof a) => (f === 'missing' || f === undefined ? 'missing' : `${f.rows} rows, md5 ${f.checksum.slice(0, 12)}`);
        out.push({ component: 'postgres', item: `table ${table}`, expected: show(b), actual: show(a), ok: show(a) === show(b) && b !== 'missing' });
      }
      const redisAfter = await redisFingerprint(redisUrl);
      const missing: string[] = [];
      const changed: string[] = [];
      for (const [key, fp] of before.redis) {
        const got = redisAfter.get(key);
        if (!got) missing.push(key);
        else if (got.type !== fp.type) changed.push(`${key} (type ${fp.type} became ${got.type})`);
        else if (got.sha256 !== fp.sha256) changed.push(`${key} (value differs)`);
        else if (got.expires !== fp.expires) changed.push(`${key} (${fp.expires ? 'lost its TTL' : 'gained a TTL'})`);
      }
      const extra = [...redisAfter.keys()].filter((k) => !before.redis.has(k));
      for (const db of ['0', '1']) {
        const n = [...before.redis.keys()].filter((k) => k.startsWith(`${db}/`)).length;
        const back = [...redisAfter.keys()].filter((k) => k.startsWith(`${db}/`) && before.redis.has(k)).length;
        out.push({ component: 'redis', item: `db${db} keys`, expected: `${n}`, actual: `${back}`, ok: n === back && n > 0 });
      }
      out.push({
        component: 'redis',
        item: 'values, types and TTLs',
        expected: 'identical',
        actual:
          missing.length + changed.length + extra.length === 0
            ? 'identical'
            : `${missing.length} missing, ${changed.length} changed, ${extra.length} unexpected` +
              ` (e.g. ${[...missing.map((k) => `${k} (missing)`), ...changed, ...extra.map((k) => `${k} (unexpected)`)].slice(0, 3).join(', ')})`,
        ok: missing.length + changed.length + extra.length === 0,
      });
      if (options.qdrant && before.qdrant) {
        const a = await qdrantFingerprint(options.qdrant);
        const show = (f: typeof a) => (f === 'missing' ? 'missing' : `${f.points} points, sha256 ${f.checksum.slice(0, 12)}`);
        out.push({ component: 'qdrant', item: `collection ${DEMO_COLLECTION}`, expected: show(before.qdrant), actual: show(a), ok: show(a) === show(before.qdrant) });
      }
      return out;
    });

    const prune = await step(`prune (keep the last ${options.keepLast ?? 3} manual sets)`, () => engine!.prune());

    const artifacts = manifest.components.flatMap((c) => c.artifacts.map((a) => ({ path: a.path, size: a.size, rawSize: a.rawSize })));
    return {
      ok: problems.length === 0 && checks.every((c) => c.ok),
      setId: backup.setId,
      backupDir,
      restored: !options.skipRestore,
      components: manifest.components.map((c) => c.name),
      artifacts,
      bytes: backup.bytes,
      timings,
      checks,
      prune: { kept: prune.keep.map((k) => k.id), removed: prune.remove.map((r) => r.id) },
      problems,
    };
  } finally {
    await engine?.close().catch(() => undefined);
    if (qdrantSeeded && options.qdrant) await deleteDemoCollection(options.qdrant).catch(() => undefined);
    await Promise.all([pgServer?.stop(), redisServer?.stop()]);
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The summary the demo prints. */
export function formatSummary(result: QuickstartResult): string {
  const lines: string[] = [];
  lines.push('', `Backup set ${result.setId} in ${result.backupDir}`);
  for (const a of result.artifacts) {
    lines.push(`  ${a.path.padEnd(34)} ${formatBytes(a.size).padStart(10)}  (${formatBytes(a.rawSize)} before compression)`);
  }
  lines.push(`  total stored: ${formatBytes(result.bytes)}`, '', 'Timings');
  for (const t of result.timings) lines.push(`  ${t.step.padEnd(58)} ${formatMs(t.ms).padStart(8)}`);
  lines.push(`  ${'total'.padEnd(58)} ${formatMs(result.timings.reduce((s, t) => s + t.ms, 0)).padStart(8)}`, '', result.restored ? 'Integrity check after restore' : 'Integrity check (restore SKIPPED on purpose)');
  for (const c of result.checks) {
    lines.push(`  ${c.ok ? 'OK  ' : 'FAIL'} ${c.component.padEnd(8)} ${c.item.padEnd(34)} ${c.ok ? c.actual : `expected ${c.expected}, got ${c.actual}`}`);
  }
  for (const p of result.problems) lines.push(`  FAIL ${p}`);
  if (result.prune.removed.length > 0) lines.push('', `Pruned older demo sets: ${result.prune.removed.join(', ')}`);
  lines.push(
    '',
    result.ok
      ? `All data is back. Check the set by hand: (cd ${result.backupDir}/${result.setId} && sha256sum -c SHA256SUMS)`
      : 'INTEGRITY CHECK FAILED: some data is not back (see FAIL above).',
  );
  return lines.join('\n');
}
