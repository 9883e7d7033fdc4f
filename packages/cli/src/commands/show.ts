import type { ComponentManifest, Manifest } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { formatBytes, formatDuration, formatTime, table } from '../format.js';

type Meta = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Rows, keys or points of a component, from what its source recorded in the manifest. */
export function componentCounts(c: ComponentManifest): { summary: string; counts: Record<string, unknown> } {
  const m = c.metadata as Meta;
  if (Array.isArray(m.databases) && m.databases.some((d) => d && typeof d === 'object' && Array.isArray((d as Meta).tables))) {
    const dbs = m.databases as { name: string; tables: { rows: number; exact: boolean }[] }[];
    const perDb = dbs.map((d) => ({ database: d.name, tables: d.tables.length, rows: d.tables.reduce((n, t) => n + (num(t.rows) ?? 0), 0), exact: d.tables.every((t) => t.exact) }));
    return {
      summary: perDb.map((d) => `${d.database}: ${d.tables} table${d.tables === 1 ? '' : 's'}, ${d.exact ? '' : '~'}${d.rows} rows`).join('; '),
      counts: { databases: perDb },
    };
  }
  if (m.keyCounts && typeof m.keyCounts === 'object') {
    const keyCounts = Object.entries(m.keyCounts as Record<string, number>).filter(([, n]) => n > 0);
    const keys = num(m.keys) ?? keyCounts.reduce((n, [, k]) => n + k, 0);
    return {
      summary: `${keys} key${keys === 1 ? '' : 's'}${keyCounts.length ? ` (${keyCounts.map(([db, n]) => `db${db}: ${n}`).join(', ')})` : ''}`,
      counts: { keys, keysPerDatabase: Object.fromEntries(keyCounts) },
    };
  }
  if (Array.isArray(m.collections)) {
    const cols = (m.collections as { name: string; pointsCount: number | null }[]).map((x) => ({ collection: x.name, points: x.pointsCount }));
    return {
      summary: cols.map((x) => `${x.collection}: ${x.points ?? '?'} points`).join('; '),
      counts: { collections: cols },
    };
  }
  return { summary: '-', counts: {} };
}

export function componentVersions(c: ComponentManifest): Record<string, string> {
  const m = c.metadata as Meta;
  const out: Record<string, string> = {};
  for (const [key, label] of [
    ['serverVersion', 'server'],
    ['pgDumpVersion', 'pg_dump'],
    ['qdrantVersion', 'qdrant'],
    ['rdbVersion', 'rdb'],
  ] as const) {
    const v = str(m[key]) ?? (num(m[key]) !== undefined ? String(m[key]) : undefined);
    if (v) out[label] = v;
  }
  return out;
}

export function showJson(manifest: Manifest, storage: string) {
  return {
    id: manifest.id,
    tier: manifest.tier,
    status: manifest.status,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    timeZone: manifest.timeZone,
    host: manifest.host,
    library: manifest.library,
    storage,
    encryption: manifest.encryption ?? null,
    bytes: manifest.components.reduce((n, c) => n + c.artifacts.reduce((m, a) => m + a.size, 0), 0),
    components: manifest.components.map((c) => ({
      name: c.name,
      status: c.status,
      durationMs: c.durationMs,
      versions: componentVersions(c),
      counts: componentCounts(c).counts,
      warnings: c.warnings,
      error: c.error ?? null,
      artifacts: c.artifacts.map((a) => ({ name: a.name, path: a.path, size: a.size, rawSize: a.rawSize, sha256: a.sha256, codecs: a.codecs.map((x) => x.name) })),
    })),
  };
}

/** One set in detail (restic `snapshots <id>`, pgBackRest `info --set`). */
export async function showCommand(ctx: CommandContext, ref: string): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const manifest = await rt.engine.readManifest(ref);
    const summary = (await rt.engine.list()).find((s) => s.id === manifest.id);
    const storage = summary?.storage ?? rt.storages[0]!.name;
    const doc = showJson(manifest, storage);
    if (ctx.json) {
      ctx.out.document(doc);
      return EXIT.OK;
    }
    const { out } = ctx;
    out.line(`set ${manifest.id} on ${storage}`);
    out.line(`  tier ${manifest.tier}, ${manifest.status.toUpperCase()}, ${formatBytes(doc.bytes)} stored`);
    out.line(`  started ${formatTime(manifest.startedAt, rt.timeZone)}, finished ${formatTime(manifest.finishedAt, rt.timeZone)} on ${manifest.host}`);
    out.line(`  written by ${manifest.library.name} ${manifest.library.version}${manifest.encryption ? `, encrypted (${manifest.encryption.codec})` : ''}`);
    out.line('');
    out.line(
      table(
        ['COMPONENT', 'STATUS', 'TIME', 'VERSIONS', 'CONTENTS'],
        manifest.components.map((c) => [
          c.name,
          c.status,
          formatDuration(c.durationMs),
          Object.entries(componentVersions(c)).map(([k, v]) => `${k} ${v}`).join(', ') || '-',
          c.status === 'ok' ? componentCounts(c).summary : `FAILED: ${c.error?.message ?? 'unknown error'}`,
        ]),
      ),
    );
    out.line('');
    out.line(
      table(
        ['ARTIFACT', 'SIZE', 'RAW', 'CODECS', 'SHA-256'],
        manifest.components.flatMap((c) =>
          c.artifacts.map((a) => [a.path, formatBytes(a.size), formatBytes(a.rawSize), a.codecs.map((x) => x.name).join('+') || 'none', `${a.sha256.slice(0, 16)}…`]),
        ),
      ),
    );
    for (const c of manifest.components) for (const w of c.warnings) out.line(`warning (${c.name}): ${w}`);
    return EXIT.OK;
  });
}
