/**
 * The report as tables: the terminal output and the Markdown file render the
 * same tables, so they always say the same thing.
 */
import type {
  BenchReport,
  ClusterResult,
  MeasuredScenario,
  MemoryRange,
  MemoryTrace,
  OverloadResult,
  ScenarioResult,
  SuiteName,
} from './results.js';
import { rate, sweepTable, type Table } from '../src/cli/sweep/table.js';

export { configSnippet, formatTable, machineLine, packagesLine, rate, type Table } from '../src/cli/sweep/table.js';

const SUITE_TITLES: Record<SuiteName, string> = {
  codec: 'Codec: JSON vs msgpackr with records',
  dispatch: 'Dispatch: store none, two trivial consumers, one worker',
  store: 'Store: lmdb group commit vs one write per event',
  durable: 'Durable end to end: emit → lmdb commit → two trivial consumers, one worker',
  peers: 'Peers: BullMQ on a local redis-server',
  memory: 'Memory',
  cluster: 'Cluster: instance processes on one lmdb store, two consumer groups',
  sweep: 'Sweep',
};

export const ratio = (n: number) => `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`;
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

function scenarioRow(s: ScenarioResult): string[] {
  const who = s.role === 'peer' ? `${s.name} (peer)` : s.name;
  if (s.status === 'skipped') return [who, 'skipped', '', '', '', s.reason];
  if (s.status === 'failed') return [who, 'failed', '', '', '', s.error];
  return [who, rate(s.eventsPerSec), rate(s.eventsPerSecP99), ms(s.timing.medianMs), ms(s.timing.p99Ms), extrasText(s)];
}

function extrasText(s: MeasuredScenario): string {
  const parts = [`${s.timing.samples} samples of ${rate(s.events)} events`];
  if (typeof s.extras.bytesPerEvent === 'number') parts.push(`${s.extras.bytesPerEvent} B/event`);
  const { mainCpuMicrosPerEvent: main, processCpuMicrosPerEvent: cpu, mainAllocatedBytesPerEvent: allocated } = s.extras;
  if (typeof cpu === 'number' && typeof allocated === 'number') {
    const mainCpu = typeof main === 'number' ? `main thread CPU ${main.toFixed(2)} µs, ` : '';
    parts.push(`per event: ${mainCpu}process CPU ${cpu.toFixed(2)} µs, ${rate(allocated)} B allocated on the main thread`);
  }
  return parts.join(', ');
}

export function reportTables(report: BenchReport): Table[] {
  const tables: Table[] = [];
  const suites = [...new Set(report.scenarios.map((s) => s.suite))];
  for (const suite of suites) {
    tables.push({
      title: SUITE_TITLES[suite],
      headers: ['scenario', 'events/s (median)', 'events/s (p99 iteration)', 'ms/iteration (median)', 'ms/iteration (p99)', 'notes'],
      align: ['l', 'r', 'r', 'r', 'r', 'l'],
      rows: report.scenarios.filter((s) => s.suite === suite).map(scenarioRow),
    });
  }
  if (report.ratios.length > 0) {
    tables.push({
      title: 'Ratios (same run, median events/s)',
      headers: ['ratio', 'value', 'target', ''],
      align: ['l', 'r', 'r', 'l'],
      rows: report.ratios.map((r) => [
        r.name,
        r.value === null ? 'n/a' : ratio(r.value),
        r.target === null ? '' : `≥ ${ratio(r.target)}`,
        r.met === null ? '' : r.met ? 'met' : 'missed',
      ]),
    });
  }
  const sweep = sweepTable(report);
  if (sweep !== null) tables.push(sweep);
  const { overload, overloadDurable, replay } = report.memory;
  if (overload || overloadDurable || replay) {
    const rows: string[][] = [];
    for (const o of [overload, overloadDurable]) if (o) rows.push(overloadRow(o));
    if (replay) {
      rows.push(
        replay.status === 'ok'
          ? [
              `replay: ${rate(replay.events)} stored events (${replay.storeMiB} MiB store) through bus.replay()`,
              `${rate(replay.eventsPerSec)} events/s`,
              ...memoryCells(replay.memory),
            ]
          : ['replay', 'failed', replay.error ?? '', '', '', ''],
      );
    }
    tables.push({
      title: SUITE_TITLES.memory,
      headers: [
        'measurement',
        'rate',
        'RSS start → peak → end',
        'anonymous RSS start → peak → end',
        'heap used start → peak → end',
        'anonymous RSS at 10 %, 50 %, 90 %',
      ],
      align: ['l', 'r', 'l', 'l', 'l', 'l'],
      rows,
    });
  }
  if (report.cluster) tables.push(clusterTable(report.cluster));
  return tables;
}

function clusterTable(c: ClusterResult): Table {
  const rows: string[][] = [];
  const table: Table = { title: SUITE_TITLES.cluster, headers: ['measurement', 'figure', 'notes'], align: ['l', 'r', 'l'], rows };
  if (c.status !== 'ok') {
    rows.push(['cluster', 'failed', c.error ?? '']);
    return table;
  }
  const setting = `${c.partitions} partitions, cursors written every ${c.checkpointMs} ms`;
  for (const t of [c.single, c.cluster]) {
    if (t === null) continue;
    rows.push([
      `${t.instances} instance${t.instances === 1 ? '' : 's'}, ${rate(t.events)} events in all, ${c.groups} groups`,
      `${rate(t.eventsPerSecPerGroup)} events/s per group`,
      `${t.seconds} s until every cursor of both groups stood at its partition's end; ${setting}`,
    ]);
  }
  if (c.single !== null && c.cluster !== null)
    rows.push([
      `${c.cluster.instances} instances / 1 instance`,
      ratio(c.cluster.eventsPerSecPerGroup / c.single.eventsPerSecPerGroup),
      'events/s per group, same events in all, same machine',
    ]);
  if (c.takeoverMs !== null)
    rows.push([
      `takeover after a SIGKILL of 1 of ${c.instances} instances mid-stream`,
      `${c.takeoverMs} ms`,
      `until the survivors held all ${c.groups * c.partitions} leases; leaseMs ${c.leaseMs}, renewMs ${c.renewMs} (bound ${c.leaseMs + c.renewMs} ms); the killed instance held ${c.victimLeases}, which lapsed ${c.lapseMs} ms after the kill`,
    ]);
  return table;
}

function overloadRow(o: OverloadResult): string[] {
  const store = o.store === 'none' ? 'store none' : `store lmdb${o.storeMiB === null ? '' : ` (${o.storeMiB} MiB store)`}`;
  if (o.status !== 'ok') return [`overload, ${store}`, 'failed', o.error ?? '', '', '', ''];
  return [
    `overload, ${store}: ${rate(o.events)} events into a ${o.slowConsumerMicros} µs/event consumer, maxPending ${rate(o.maxPending)}`,
    `${rate(o.eventsPerSec)} events/s`,
    ...memoryCells(o.memory),
  ];
}

const range = (r: MemoryRange | null) => (r === null ? 'n/a' : `${r.start} → ${r.peak} → ${r.end} MiB`);

function memoryCells(m: MemoryTrace | null): string[] {
  if (m === null) return ['', '', '', ''];
  return [range(m.rss), range(m.anonRss), range(m.heapUsed), Object.values(m.along).join(', ')];
}
