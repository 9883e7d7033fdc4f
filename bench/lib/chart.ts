/**
 * Two small line charts (backup time and peak RSS against database size) as a hand-built SVG,
 * rendered to PNG by @resvg/resvg-js when it is installed.
 */

export interface Series {
  label: string;
  color: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Horizontal reference lines, e.g. a target. */
  lines?: { y: number; label: string; color: string }[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(0);
  return Number(v.toFixed(2)).toString();
}

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number): string {
  const m = { l: 62, r: 16, t: 34, b: 64 };
  const pw = w - m.l - m.r;
  const ph = h - m.t - m.b;
  const all = p.series.flatMap((s) => s.points);
  const xMax = niceMax(Math.max(...all.map((pt) => pt.x), 0.1) * 1.05);
  const yMax = niceMax(Math.max(...all.map((pt) => pt.y), ...(p.lines ?? []).map((l) => l.y), 1) * 1.1);
  const sx = (x: number) => x0 + m.l + (x / xMax) * pw;
  const sy = (y: number) => y0 + m.t + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<text x="${x0 + m.l}" y="${y0 + 20}" font-size="15" font-weight="bold" fill="#222">${esc(p.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const yv = (yMax / 5) * i;
    const y = sy(yv);
    out.push(`<line x1="${x0 + m.l}" x2="${x0 + m.l + pw}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${x0 + m.l - 6}" y="${y + 4}" font-size="11" text-anchor="end" fill="#555">${fmtTick(yv)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const xv = (xMax / 4) * i;
    const x = sx(xv);
    out.push(`<line x1="${x}" x2="${x}" y1="${y0 + m.t + ph}" y2="${y0 + m.t + ph + 4}" stroke="#777"/>`);
    out.push(`<text x="${x}" y="${y0 + m.t + ph + 17}" font-size="11" text-anchor="middle" fill="#555">${fmtTick(xv)}</text>`);
  }
  out.push(`<rect x="${x0 + m.l}" y="${y0 + m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${x0 + m.l + pw / 2}" y="${y0 + h - 30}" font-size="12" text-anchor="middle" fill="#333">${esc(p.xLabel)}</text>`);
  out.push(
    `<text transform="translate(${x0 + 16} ${y0 + m.t + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle" fill="#333">${esc(p.yLabel)}</text>`,
  );
  for (const l of p.lines ?? []) {
    const y = sy(l.y);
    out.push(`<line x1="${x0 + m.l}" x2="${x0 + m.l + pw}" y1="${y}" y2="${y}" stroke="${l.color}" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${x0 + m.l + pw - 4}" y="${y - 5}" font-size="11" text-anchor="end" fill="${l.color}">${esc(l.label)}</text>`);
  }
  for (const s of p.series) {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="5 4"' : ''} points="${pts.map((pt) => `${sx(pt.x).toFixed(1)},${sy(pt.y).toFixed(1)}`).join(' ')}"/>`,
      );
    }
    for (const pt of pts) out.push(`<circle cx="${sx(pt.x).toFixed(1)}" cy="${sy(pt.y).toFixed(1)}" r="3.6" fill="${s.color}"/>`);
  }
  // Legend under the axis label.
  let lx = x0 + m.l;
  for (const s of p.series) {
    const ly = y0 + h - 10;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    out.push(`<text x="${lx + 23}" y="${ly}" font-size="11" fill="#333">${esc(s.label)}</text>`);
    lx += 30 + s.label.length * 6.2;
  }
  return out.join('\n');
}

export function chartSvg(panels: Panel[], title: string): string {
  const w = 480;
  const h = 340;
  const width = w * panels.length;
  const height = h + 30;
  const body = panels.map((p, i) => panelSvg(p, i * w, 30, w, h)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" font-size="14" text-anchor="middle" fill="#444">${esc(title)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}

/** PNG bytes of an SVG, or undefined (with the reason) when no renderer is available. */
export async function svgToPng(svg: string): Promise<{ png?: Buffer; problem?: string }> {
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    const r = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
    return { png: r.render().asPng() };
  } catch (error) {
    return { problem: `PNG not rendered (${(error as Error).message}); the SVG beside it has the same chart` };
  }
}
