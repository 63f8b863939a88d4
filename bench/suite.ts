/**
 * Shared runner for the benchmark suites: tinybench with warm-up, every
 * scenario and peer in one run, results as events/s (median, and the p99 of
 * the per-iteration rate) and as ratios to a baseline of the same run.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { Bench } from 'tinybench';

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
  /** Median of the per-iteration rates. */
  readonly eventsPerSecMedian: number;
  /** The rate of the p99 (slowest 1 %) iteration. */
  readonly eventsPerSecP99: number;
  readonly iterationMsMedian: number;
  readonly iterationMsP99: number;
}

export interface SuiteReport {
  readonly suite: string;
  readonly machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  readonly results: readonly ScenarioResult[];
  readonly ratios: Readonly<Record<string, number>>;
}

export interface SuiteOptions {
  /** ms per scenario (after warm-up). */
  readonly time?: number;
  readonly warmupTime?: number;
  readonly iterations?: number;
}

export async function runSuite(suite: string, scenarios: readonly Scenario[], options: SuiteOptions = {}): Promise<ScenarioResult[]> {
  const bench = new Bench({
    name: suite,
    time: options.time ?? 3000,
    iterations: options.iterations ?? 10,
    warmup: true,
    warmupTime: options.warmupTime ?? 500,
    warmupIterations: 3,
    throws: true,
  });
  for (const s of scenarios) {
    bench.add(s.name, s.run, {
      beforeAll: s.setup,
      afterAll: s.teardown,
    });
  }
  process.stderr.write(`[${suite}] running ${scenarios.length} scenarios\n`);
  bench.addEventListener('cycle', (e) => process.stderr.write(`[${suite}] done: ${e.task?.name}\n`));
  await bench.run();
  return bench.tasks.map((task, i) => {
    const s = scenarios[i]!;
    const result = task.result as unknown as { latency: { p50: number; p99: number; samplesCount?: number }; state?: string };
    const latency = result.latency;
    return {
      name: s.name,
      events: s.events,
      samples: latency.samplesCount ?? 0,
      eventsPerSecMedian: (s.events / latency.p50) * 1000,
      eventsPerSecP99: (s.events / latency.p99) * 1000,
      iterationMsMedian: latency.p50,
      iterationMsP99: latency.p99,
    };
  });
}

export function machine(): SuiteReport['machine'] {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Prints a table on stdout and, with --json FILE or BENCH_JSON=FILE, writes the report. */
export function report(suite: string, results: readonly ScenarioResult[], ratios: Record<string, number>): SuiteReport {
  const out: SuiteReport = { suite, machine: machine(), results, ratios };
  const rows = results.map((r) => ({
    scenario: r.name,
    'events/s (median)': Math.round(r.eventsPerSecMedian).toLocaleString('en-US'),
    'events/s (p99 iteration)': Math.round(r.eventsPerSecP99).toLocaleString('en-US'),
    'ms/iteration (median)': r.iterationMsMedian.toFixed(2),
    samples: r.samples,
  }));
  console.log(`\n${suite} (${out.machine.cpus} cores, ${out.machine.cpuModel}, Node ${out.machine.node})`);
  console.table(rows);
  for (const [name, value] of Object.entries(ratios)) console.log(`  ${name}: ${value.toFixed(2)}x`);
  const target = jsonTarget();
  if (target) writeFileSync(target, JSON.stringify(out, null, 2) + '\n');
  return out;
}

function jsonTarget(): string | undefined {
  const i = process.argv.indexOf('--json');
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  return process.env.BENCH_JSON || undefined;
}

export function ratio(results: readonly ScenarioResult[], a: string, b: string): number {
  const x = results.find((r) => r.name === a);
  const y = results.find((r) => r.name === b);
  if (!x || !y) throw new Error(`no result named ${!x ? a : b}`);
  return x.eventsPerSecMedian / y.eventsPerSecMedian;
}
