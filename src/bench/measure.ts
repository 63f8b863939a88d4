/**
 * Timing one scenario with tinybench: warm-up first, then at least
 * `minIterations` iterations and at least `timeMs` of them. A scenario's
 * figure is N events / the median iteration time; its p99 is the p99 of the
 * iteration times (the slow tail), also given as events/s.
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
export const FULL_SETTINGS: MeasureSettings = Object.freeze({ timeMs: 2000, minIterations: 10, warmupMs: 500, warmupIterations: 3 });

export interface Timing {
  /** Measured iterations (warm-up excluded). */
  readonly samples: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Runs `iteration` under tinybench and returns the statistics of its iteration times. */
export async function measure(name: string, iteration: () => Promise<void> | void, settings: MeasureSettings): Promise<Timing> {
  const bench = new Bench({
    name,
    time: settings.timeMs,
    iterations: settings.minIterations,
    warmup: true,
    warmupTime: settings.warmupMs,
    warmupIterations: settings.warmupIterations,
    throws: true,
  });
  bench.add(name, iteration);
  await bench.run();
  const result = bench.tasks[0]?.result;
  if (result === undefined || (result.state !== 'completed' && result.state !== 'aborted-with-statistics')) {
    const error = result !== undefined && result.state === 'errored' ? result.error : undefined;
    throw error ?? new Error(`tinybench did not complete ${name} (state ${result?.state ?? 'unknown'})`);
  }
  const { latency } = result;
  return {
    samples: latency.samplesCount,
    medianMs: latency.p50,
    p99Ms: latency.p99,
    meanMs: latency.mean,
    minMs: latency.min,
    maxMs: latency.max,
  };
}

/** Events per second for `events` per iteration at `ms` per iteration. */
export const perSecond = (events: number, ms: number): number => (ms > 0 ? (events / ms) * 1000 : 0);
