export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent. */
  spreadPct: number;
  n: number;
}

export function summarize(values: number[]): Summary | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  const m = median(v);
  const min = Math.min(...v);
  const max = Math.max(...v);
  return { median: m, min, max, spreadPct: m > 0 ? ((max - min) / m) * 100 : 0, n: v.length };
}

export const MB = 1024 * 1024;
export const GB = 1024 * MB;

export const fmtSeconds = (ms: number): string => (ms >= 100_000 ? (ms / 1000).toFixed(0) : (ms / 1000).toFixed(1));
export const fmtMB = (bytes: number): string => (bytes / MB).toFixed(bytes >= 100 * MB ? 0 : 1);
export const fmtGB = (bytes: number): string => (bytes / GB).toFixed(2);
