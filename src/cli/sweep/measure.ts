/**
 * Timing one scenario with tinybench: warm-up first, then at least
 * `minIterations` iterations and at least `timeMs` of them. A scenario's
 * figure is N events / the median iteration time; its p99 is the p99 of the
 * iteration times (the slow tail), also given as events/s. Samples of several
 * rounds (see scenario.ts) are pooled before the statistics are taken.
 */
import { Bench } from 'tinybench';

export interface MeasureSettings {
  /** Minimum time of the measured phase, ms. */
  readonly timeMs: number;
  readonly minIterations: number;
  readonly warmupMs: number;
  readonly warmupIterations: number;
}

/** `eventrail bench --quick`: enough to rank settings, not to quote. */
export const QUICK_SETTINGS: MeasureSettings = Object.freeze({ timeMs: 250, minIterations: 5, warmupMs: 100, warmupIterations: 2 });
export const FULL_SETTINGS: MeasureSettings = Object.freeze({ timeMs: 4000, minIterations: 20, warmupMs: 500, warmupIterations: 3 });

export interface Timing {
  /** Measured iterations (warm-up excluded). */
  readonly samples: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Runs `iteration` under tinybench and returns its iteration times, ms (warm-up excluded). */
export async function measureSamples(name: string, iteration: () => Promise<void> | void, settings: MeasureSettings): Promise<number[]> {
  const bench = new Bench({
    name,
    time: settings.timeMs,
    iterations: settings.minIterations,
    warmup: settings.warmupIterations > 0 || settings.warmupMs > 0,
    warmupTime: settings.warmupMs,
    warmupIterations: settings.warmupIterations,
    throws: true,
    retainSamples: true,
  });
  bench.add(name, iteration);
  await bench.run();
  const result = bench.tasks[0]?.result;
  if (result === undefined || (result.state !== 'completed' && result.state !== 'aborted-with-statistics')) {
    const error = result !== undefined && result.state === 'errored' ? result.error : undefined;
    throw error ?? new Error(`tinybench did not complete ${name} (state ${result?.state ?? 'unknown'})`);
  }
  const samples = result.latency.samples;
  if (samples === undefined || samples.length === 0) throw new Error(`tinybench kept no samples of ${name}`);
  return [...samples];
}

/** Runs `iteration` under tinybench and returns the statistics of its iteration times. */
export async function measure(name: string, iteration: () => Promise<void> | void, settings: MeasureSettings): Promise<Timing> {
  return summarize(await measureSamples(name, iteration, settings));
}

/** The q-quantile (0..1) of sorted values, interpolated between the closest ranks. */
export function quantileOf(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function summarize(samples: readonly number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    medianMs: quantileOf(sorted, 0.5),
    p99Ms: quantileOf(sorted, 0.99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
  };
}

/**
 * The settings of round `round` (0-based) of `rounds`: the time and iterations
 * are shared out, the full warm-up comes first and later rounds re-warm with
 * one iteration.
 */
export function roundSettings(settings: MeasureSettings, round: number, rounds: number): MeasureSettings {
  if (rounds <= 1) return settings;
  return {
    timeMs: Math.ceil(settings.timeMs / rounds),
    minIterations: Math.ceil(settings.minIterations / rounds),
    warmupMs: round === 0 ? settings.warmupMs : 0,
    warmupIterations: round === 0 ? settings.warmupIterations : 1,
  };
}

/** Events per second for `events` per iteration at `ms` per iteration. */
export const perSecond = (events: number, ms: number): number => (ms > 0 ? (events / ms) * 1000 : 0);
