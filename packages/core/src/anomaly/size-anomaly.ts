import type { ComponentManifest, Manifest } from '../manifest/manifest-schema.js';

/** Default: a drop of more than half from the previous set of the same tier is an anomaly. */
export const DEFAULT_ANOMALY_DROP = 0.5;

export interface SizeAnomaly {
  component: string;
  /** 'bytes', 'rows', 'keys' or 'points'. */
  measure: string;
  previous: number;
  current: number;
  previousSetId: string;
  message: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * The counts a component's manifest metadata carries, read by shape so core needs no adapter:
 * postgres `databases[].tables[].rows`, redis `keys`, qdrant `collections[].pointsCount`.
 */
export function componentCounts(component: Pick<ComponentManifest, 'metadata'>): Record<string, number> {
  const m = component.metadata ?? {};
  const out: Record<string, number> = {};
  if (Array.isArray(m.databases) && m.databases.some((d) => d && typeof d === 'object' && Array.isArray((d as { tables?: unknown }).tables))) {
    let rows = 0;
    for (const d of m.databases as { tables?: { rows?: unknown }[] }[]) for (const t of d.tables ?? []) rows += num(t?.rows) ?? 0;
    out.rows = rows;
  }
  if (num(m.keys) !== undefined) out.keys = num(m.keys)!;
  if (Array.isArray(m.collections)) {
    let points = 0;
    let known = false;
    for (const c of m.collections as { pointsCount?: unknown }[]) {
      const p = num(c?.pointsCount);
      if (p !== undefined) {
        points += p;
        known = true;
      }
    }
    if (known || m.collections.length === 0) out.points = points;
  }
  return out;
}

function measures(component: ComponentManifest): Record<string, number> {
  return { bytes: component.artifacts.reduce((n, a) => n + a.rawSize, 0), ...componentCounts(component) };
}

/**
 * Compares each component with the same component of the previous set of the tier. A drop by
 * more than `fraction` (bytes before compression, or a count) is an anomaly: a silent empty
 * dump is the classic way backups fail.
 */
export function detectSizeAnomalies(previous: Manifest | undefined, components: ComponentManifest[], fraction = DEFAULT_ANOMALY_DROP): SizeAnomaly[] {
  if (!previous || !(fraction > 0 && fraction <= 1)) return [];
  const out: SizeAnomaly[] = [];
  for (const c of components) {
    if (c.status !== 'ok') continue;
    const before = previous.components.find((p) => p.name === c.name && p.status === 'ok');
    if (!before) continue;
    const was = measures(before);
    const now = measures(c);
    for (const [measure, prev] of Object.entries(was)) {
      const cur = now[measure];
      if (cur === undefined || prev <= 0) continue;
      const drop = (prev - cur) / prev;
      if (drop > fraction) {
        out.push({
          component: c.name,
          measure,
          previous: prev,
          current: cur,
          previousSetId: previous.id,
          message: `size anomaly: ${measure} dropped ${Math.round(drop * 100)}% (${prev} -> ${cur}) since ${previous.id}, more than the ${Math.round(fraction * 100)}% allowed; check that the source is the right one and not empty`,
        });
      }
    }
  }
  return out;
}
