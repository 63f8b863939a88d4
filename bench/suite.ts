/**
 * A small runner for developer benchmarks that are not suites of
 * `eventrail bench` (bench/lmdb-store.bench.ts): the same tinybench settings and
 * report figures as src/bench/, with a table on stdout and, with --json FILE
 * or BENCH_JSON=FILE, the report as JSON.
 */
import { writeFileSync } from 'node:fs';
import { loadAverage, machineInfo } from '../src/bench/machine.js';
import { FULL_SETTINGS, measure, perSecond, type MeasureSettings } from '../src/bench/measure.js';
import type { MachineInfo } from '../src/bench/results.js';

export interface Scenario {
  readonly name: string;
  /** Events one call of `run` moves. */
  readonly events: number;
  readonly setup?: () => Promise<void> | void;
  readonly run: () => Promise<void>;
  readonly teardown?: () => Promise<void> | void;
}

export interface ScenarioResult {
  readonly name: string;
  readonly events: number;
  readonly samples: number;
  /** events / median iteration time. */
  readonly eventsPerSecMedian: number;
  /** events / p99 iteration time. */
  readonly eventsPerSecP99: number;
  readonly iterationMsMedian: number;
  readonly iterationMsP99: number;
}

export interface SuiteReport {
  readonly suite: string;
  readonly machine: MachineInfo;
  readonly results: readonly ScenarioResult[];
  readonly ratios: Readonly<Record<string, number>>;
}

const loadAtStart = loadAverage();

export async function runSuite(suite: string, scenarios: readonly Scenario[], settings: MeasureSettings = FULL_SETTINGS): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const [i, s] of scenarios.entries()) {
    process.stderr.write(`[${suite} ${i + 1}/${scenarios.length}] ${s.name}\n`);
    await s.setup?.();
    try {
      const t = await measure(s.name, s.run, settings);
      results.push({
        name: s.name,
        events: s.events,
        samples: t.samples,
        eventsPerSecMedian: perSecond(s.events, t.medianMs),
        eventsPerSecP99: perSecond(s.events, t.p99Ms),
        iterationMsMedian: t.medianMs,
        iterationMsP99: t.p99Ms,
      });
    } finally {
      await s.teardown?.();
    }
  }
  return results;
}

/** Prints a table on stdout and, with --json FILE or BENCH_JSON=FILE, writes the report. */
export function report(suite: string, results: readonly ScenarioResult[], ratios: Record<string, number>): SuiteReport {
  const out: SuiteReport = { suite, machine: machineInfo(loadAtStart), results, ratios };
  console.log(`\n${suite} (${out.machine.cores} cores, ${out.machine.cpuModel}, Node ${out.machine.node}, load ${out.machine.loadAverage.start[0]})`);
  console.table(
    results.map((r) => ({
      scenario: r.name,
      'events/s (median)': Math.round(r.eventsPerSecMedian).toLocaleString('en-US'),
      'events/s (p99 iteration)': Math.round(r.eventsPerSecP99).toLocaleString('en-US'),
      'ms/iteration (median)': r.iterationMsMedian.toFixed(2),
      samples: r.samples,
    })),
  );
  for (const [name, value] of Object.entries(ratios)) console.log(`  ${name}: ${value.toFixed(2)}x`);
  const i = process.argv.indexOf('--json');
  const target = (i >= 0 ? process.argv[i + 1] : undefined) ?? process.env.BENCH_JSON;
  if (target) writeFileSync(target, `${JSON.stringify(out, null, 2)}\n`);
  return out;
}

export function ratio(results: readonly ScenarioResult[], a: string, b: string): number {
  const x = results.find((r) => r.name === a);
  const y = results.find((r) => r.name === b);
  if (!x || !y) throw new Error(`no result named ${!x ? a : b}`);
  return x.eventsPerSecMedian / y.eventsPerSecMedian;
}
