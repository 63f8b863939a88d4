/**
 * The bench's chart (`--chart FILE.svg`): events/s against threads, one line
 * per batch size (and lane count, when several were swept), with the peers
 * measured in the same run as dashed reference lines. A run with nothing to
 * plot (only codec, store or memory; a sweep whose combinations all failed)
 * still gets its file: an SVG that says why there is no chart.
 */
import type { BenchReport } from './results.js';
import { lineChartSvg, messageSvg, type LineSeries, type ReferenceLine } from './svg.js';

/** Peers worth a line (one thread each), with short legend labels. */
const REFERENCES: ReadonlyArray<readonly [id: string, label: string]> = [
  ['durable.literal', 'put + run() per event'],
  ['durable.literal-tuned', 'put + run(), 16 tasks/worker'],
  ['peers.bullmq-bulk', 'BullMQ addBulk, no fsync'],
];

/** The chart's lines: the sweep's (or eventrail's own scenarios'), and the peers as references. */
function linesOf(report: BenchReport): { series: LineSeries[]; references: ReferenceLine[] } {
  const ok = report.sweep.filter((r) => r.status === 'ok');
  const manyLanes = new Set(ok.map((r) => r.lanes)).size > 1;
  const groups = new Map<string, LineSeries & { points: { x: number; y: number }[] }>();
  for (const r of ok) {
    const name = manyLanes ? `maxBatch ${r.maxBatch}, ${r.lanes} lanes` : `maxBatch ${r.maxBatch}`;
    let group = groups.get(name);
    if (group === undefined) groups.set(name, (group = { name, points: [] }));
    group.points.push({ x: r.threads, y: r.eventsPerSec });
  }
  const series: LineSeries[] = [...groups.values()];
  // Without a sweep, eventrail's own scenarios stand in, each as a point at its thread count (1).
  if (series.length === 0) {
    for (const s of report.scenarios)
      if (s.status === 'ok' && s.role === 'eventrail' && s.suite !== 'codec' && s.suite !== 'store')
        series.push({ name: s.name, points: [{ x: 1, y: s.eventsPerSec }] });
  }
  const references: ReferenceLine[] = [];
  for (const [id, label] of REFERENCES) {
    const s = report.scenarios.find((x) => x.id === id);
    if (s?.status === 'ok') references.push({ name: label, y: s.eventsPerSec });
  }
  return { series, references };
}

/**
 * Why the report has nothing to chart, or null. The chart plots events/s
 * against pool threads: the codec, store and memory suites have no such
 * figure, and a sweep whose combinations all failed has none either.
 */
export function nothingToChart(report: BenchReport): string | null {
  const { series, references } = linesOf(report);
  if (series.length > 0 || references.length > 0) return null;
  if (report.sweep.length > 0) return 'nothing to chart: every combination of the sweep failed';
  return 'nothing to chart: no sweep, and no dispatch, durable or peers scenario measured events/s';
}

/** The chart as SVG; with nothing to chart, an SVG of the same size that says so (see nothingToChart). */
export function benchChartSvg(report: BenchReport): string {
  const m = report.machine;
  const title = `eventrail: events/s against pool threads${report.config.quick ? ' (--quick)' : ''}`;
  const subtitle = `${m.cores} cores, ${m.cpuModel}, Node ${m.node}, load average ${m.loadAverage.start[0]} → ${m.loadAverage.end[0]}; store ${report.config.store.split(',')[0]}; median of each setting`;
  const empty = nothingToChart(report);
  if (empty !== null) return messageSvg(title, subtitle, `${empty} (suites run: ${report.config.suites.join(', ')})`);
  const { series, references } = linesOf(report);
  return lineChartSvg({ title, subtitle, xLabel: 'pool.maxThreads', yLabel: 'events/s (median)', series, references });
}
