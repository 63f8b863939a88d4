/**
 * A small SVG line-chart writer: no DOM, no dependencies, output that any
 * browser or XML parser reads. Categorical x (the values given, evenly
 * spaced: thread counts 1, 2, 4 read best that way), linear or log y,
 * series as lines with markers, references as dashed horizontal lines, and a
 * legend on the right.
 */

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface LineSeries {
  readonly name: string;
  readonly points: readonly Point[];
}

/** A value drawn across the whole plot (a peer measured once, say). */
export interface ReferenceLine {
  readonly name: string;
  readonly y: number;
}

export interface LineChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly LineSeries[];
  readonly references?: readonly ReferenceLine[];
  readonly width?: number;
  readonly height?: number;
  /** 'auto' (the default) goes logarithmic when the values span more than 20×. */
  readonly yScale?: 'linear' | 'log' | 'auto';
}

/** Okabe–Ito: told apart by colour-blind readers too. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];
const REFERENCE_PALETTE = ['#666666', '#999999', '#444444', '#BBBBBB'];

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** 1.2M, 350k, 12k, 900, 0.5 */
export function compactNumber(n: number): string {
  const abs = Math.abs(n);
  const fmt = (v: number, suffix: string) => `${Number(v.toPrecision(3)).toString()}${suffix}`;
  if (abs >= 1e9) return fmt(n / 1e9, 'G');
  if (abs >= 1e6) return fmt(n / 1e6, 'M');
  if (abs >= 1e3) return fmt(n / 1e3, 'k');
  return fmt(n, '');
}

/** Round tick values from 0 to at least `max`: steps of 1, 2 or 5 × 10^k. */
export function linearTicks(max: number, target = 6): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** Powers of ten covering [min, max]. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  const ticks: number[] = [];
  for (let k = lo; k <= hi; k++) ticks.push(10 ** k);
  return ticks;
}

const fixed = (n: number) => (Math.round(n * 10) / 10).toString();

/** Legend text cut to fit (about 6.5 px a character at 12 px); the full text stays in a tooltip. */
function legendText(x: number, y: number, text: string, room: number): string {
  const max = Math.max(4, Math.floor(room / 6.5));
  const shown = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return `<text x="${x}" y="${y}">${shown === text ? '' : `<title>${escapeXml(text)}</title>`}${escapeXml(shown)}</text>`;
}

/**
 * A chart-sized SVG that says, in place of a plot, why there is none: a file
 * the user asked for stays where they asked, and reads as what it is.
 */
export function messageSvg(title: string, subtitle: string | undefined, message: string, width = 820, height = 480): string {
  const top = subtitle ? 64 : 48;
  return (
    [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
      `<title>${escapeXml(title)}</title>`,
      `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
      `<text x="72" y="24" font-size="16" font-weight="600" fill="#111">${escapeXml(title)}</text>`,
      ...(subtitle ? [`<text x="72" y="44" fill="#555">${escapeXml(subtitle)}</text>`] : []),
      `<rect x="72" y="${top}" width="${width - 144}" height="${height - top - 56}" fill="none" stroke="#ddd"/>`,
      `<text class="message" x="${width / 2}" y="${fixed(top + (height - top - 56) / 2)}" text-anchor="middle" font-size="14" fill="#333">${escapeXml(message)}</text>`,
      '</svg>',
    ].join('\n') + '\n'
  );
}

export function lineChartSvg(chart: LineChart): string {
  const width = chart.width ?? 820;
  const height = chart.height ?? 480;
  const series = chart.series.filter((s) => s.points.length > 0);
  const references = chart.references ?? [];
  const values = [...series.flatMap((s) => s.points.map((p) => p.y)), ...references.map((r) => r.y)];
  if (values.length === 0) throw new RangeError('a chart needs at least one point or reference line');
  for (const v of [...values, ...series.flatMap((s) => s.points.map((p) => p.x))]) {
    if (!Number.isFinite(v)) throw new RangeError(`chart values must be finite numbers, got ${v}`);
  }
  const positive = values.filter((v) => v > 0);
  const maxY = Math.max(...values);
  const minPositive = positive.length > 0 ? Math.min(...positive) : 1;
  const log =
    chart.yScale === 'log' || ((chart.yScale ?? 'auto') === 'auto' && positive.length === values.length && maxY / minPositive > 20);

  const legendWidth = 270;
  const margin = { top: chart.subtitle ? 64 : 48, right: legendWidth + 16, bottom: 56, left: 72 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  if (plotW < 50 || plotH < 50) throw new RangeError(`a chart of ${width}×${height} leaves no room to plot`);

  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  if (xs.length === 0) xs.push(1);
  const xAt = (x: number) => {
    const i = xs.indexOf(x);
    return margin.left + (xs.length === 1 ? plotW / 2 : (plotW * (i + 0.5)) / xs.length);
  };

  const yTicks = log ? logTicks(minPositive, maxY) : linearTicks(maxY);
  const yLo = log ? yTicks[0]! : 0;
  const yHi = yTicks[yTicks.length - 1]!;
  const yAt = (y: number) => {
    const f = log ? (Math.log10(y) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo)) : (y - yLo) / (yHi - yLo || 1);
    return margin.top + plotH * (1 - f);
  };

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="24" font-size="16" font-weight="600" fill="#111">${escapeXml(chart.title)}</text>`,
  );
  if (chart.subtitle) parts.push(`<text x="${margin.left}" y="44" fill="#555">${escapeXml(chart.subtitle)}</text>`);

  // Grid and axes.
  parts.push('<g class="axes" stroke="#ddd" stroke-width="1">');
  for (const t of yTicks) parts.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${fixed(yAt(t))}" y2="${fixed(yAt(t))}"/>`);
  parts.push('</g>');
  parts.push(`<g class="y-ticks" fill="#333" text-anchor="end">`);
  for (const t of yTicks) parts.push(`<text x="${margin.left - 8}" y="${fixed(yAt(t) + 4)}">${escapeXml(compactNumber(t))}</text>`);
  parts.push('</g>');
  parts.push(`<g class="x-ticks" fill="#333" text-anchor="middle">`);
  for (const x of xs) parts.push(`<text x="${fixed(xAt(x))}" y="${margin.top + plotH + 18}">${escapeXml(String(x))}</text>`);
  parts.push('</g>');
  parts.push(
    `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<text x="${fixed(margin.left + plotW / 2)}" y="${height - 14}" text-anchor="middle" fill="#111">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(18 ${fixed(margin.top + plotH / 2)}) rotate(-90)" text-anchor="middle" fill="#111">${escapeXml(chart.yLabel + (log ? ' (log scale)' : ''))}</text>`,
  );

  // References first, so that series draw over them.
  references.forEach((r, i) => {
    const color = REFERENCE_PALETTE[i % REFERENCE_PALETTE.length]!;
    if (log && r.y <= 0) return;
    parts.push(
      `<line class="reference" x1="${margin.left}" x2="${margin.left + plotW}" y1="${fixed(yAt(r.y))}" y2="${fixed(yAt(r.y))}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"><title>${escapeXml(`${r.name}: ${compactNumber(r.y)}`)}</title></line>`,
    );
  });
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const points = [...s.points].sort((a, b) => a.x - b.x).filter((p) => !log || p.y > 0);
    parts.push(`<g class="series" stroke="${color}" fill="${color}">`);
    if (points.length > 1) {
      parts.push(
        `<polyline fill="none" stroke-width="2.5" points="${points.map((p) => `${fixed(xAt(p.x))},${fixed(yAt(p.y))}`).join(' ')}"/>`,
      );
    }
    for (const p of points) {
      parts.push(
        `<circle cx="${fixed(xAt(p.x))}" cy="${fixed(yAt(p.y))}" r="4"><title>${escapeXml(`${s.name}, ${p.x}: ${compactNumber(p.y)}`)}</title></circle>`,
      );
    }
    parts.push('</g>');
  });

  // Legend.
  const lx = width - legendWidth;
  let ly = margin.top + 6;
  parts.push('<g class="legend" fill="#111">');
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2.5"/>`,
      `<circle cx="${lx + 11}" cy="${ly}" r="3.5" fill="${color}"/>`,
      legendText(lx + 30, ly + 4, s.name, legendWidth - 36),
    );
    ly += 20;
  });
  references.forEach((r, i) => {
    const color = REFERENCE_PALETTE[i % REFERENCE_PALETTE.length]!;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
      legendText(lx + 30, ly + 4, `${r.name} (${compactNumber(r.y)})`, legendWidth - 36),
    );
    ly += 20;
  });
  parts.push('</g>', '</svg>');
  return `${parts.join('\n')}\n`;
}
