/**
 * The sweep as a table, with the lines around it: the terminal output of
 * `eventrail bench` and the repository's full report (bench/tables.ts) render
 * the same table, so they always say the same thing.
 */
import type { SweepReport } from './results.js';
import { formatMs, formatRate } from './sweep.js';

export interface Table {
  readonly title: string;
  readonly headers: readonly string[];
  /** 'r' right-aligns a column (numbers). */
  readonly align: readonly ('l' | 'r')[];
  readonly rows: readonly (readonly string[])[];
}

export const rate = formatRate;

/** The sweep's table, or null when the report has no sweep. */
export function sweepTable(report: SweepReport): Table | null {
  if (report.sweep.length === 0) return null;
  const best = report.best;
  const types = report.config.eventTypes;
  return {
    title: `Sweep: ${report.config.consumers.length} consumer module(s), ${report.config.source} events (${types.slice(0, 4).join(', ')}${types.length > 4 ? ', …' : ''}), store ${report.config.store}`,
    headers: ['threads', 'maxBatch', 'lanes', 'events/s (median)', 'events/s (p99 iteration)', 'emit→handled p50', 'emit→handled p99', ''],
    align: ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    rows: report.sweep.map((r) => [
      String(r.threads),
      String(r.maxBatch),
      String(r.lanes),
      r.status === 'ok' ? rate(r.eventsPerSec) : 'failed',
      r.status === 'ok' ? rate(r.eventsPerSecP99) : '',
      formatMs(r.latency?.p50Ms),
      formatMs(r.latency?.p99Ms),
      r.status !== 'ok'
        ? (r.error ?? '')
        : [
            best && best.threads === r.threads && best.maxBatch === r.maxBatch && best.lanes === r.lanes ? 'best' : '',
            r.failedDeliveries > 0 ? `${r.failedDeliveries} failed deliveries` : '',
          ]
            .filter(Boolean)
            .join('; '),
    ]),
  };
}

/** A table for a terminal: aligned columns under a title. */
export function formatTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (t.align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [t.title, `  ${line(t.headers)}`, `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`, ...t.rows.map((r) => `  ${line(r)}`)].join(
    '\n',
  );
}

/** The best setting as the JSON to paste into a config file. */
export function configSnippet(report: SweepReport): string | null {
  return report.best === null ? null : JSON.stringify(report.best.config, null, 2);
}

export function machineLine(report: SweepReport): string {
  const m = report.machine;
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; load average ${m.loadAverage.start[0]} at the start, ${m.loadAverage.end[0]} at the end`;
}

export function packagesLine(report: SweepReport): string {
  return Object.entries(report.packages)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** The best setting's lines for a terminal: what it measured and the snippet to paste. */
export function bestLines(report: SweepReport): string[] {
  const snippet = configSnippet(report);
  if (report.best === null || snippet === null) return [];
  return [
    `Best setting: ${report.best.threads} thread(s), maxBatch ${report.best.maxBatch}, ${report.best.lanes} lanes: ${rate(report.best.eventsPerSec)} events/s (${report.best.why}).`,
    'Paste into your config file:',
    snippet,
  ];
}
