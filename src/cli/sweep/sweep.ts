/**
 * The sweep: every combination of pool threads, batch size and lanes, on the
 * given consumers and events, each on its own bus and store folder. For each:
 * events/s from tinybench iterations (emit N, flush), then emit-to-handled
 * latency while emitting at half that rate.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus, type EventBus } from '../../bus/bus.js';
import type { EventInput } from '../../event/event.js';
import type { BusOptions } from '../../options.js';
import { observations, parseHistogram, quantile, subtract } from './latency.js';
import { measureSamples, perSecond, roundSettings, summarize, type MeasureSettings } from './measure.js';
import type { Progress } from './progress.js';
import type { BestSetting, LatencyResult, SweepResult } from './results.js';

export interface Grid {
  readonly threads: readonly number[];
  readonly maxBatch: readonly number[];
  readonly lanes: readonly number[];
}

export interface Combination {
  readonly threads: number;
  readonly maxBatch: number;
  readonly lanes: number;
}

export interface SweepPlan {
  readonly inputs: readonly EventInput[];
  /** The options every combination starts from (the user's config, or the bench's), store and consumers included. */
  readonly options: (combination: Combination) => BusOptions;
  readonly settings: MeasureSettings;
  /** How long to emit at half rate for the latency figures, ms. */
  readonly latencyMs: number;
  /** Called once a combination is done with (its store folder can go). */
  readonly finished?: (combination: Combination) => void;
}

export function combinations(grid: Grid): Combination[] {
  const all: Combination[] = [];
  for (const threads of grid.threads)
    for (const maxBatch of grid.maxBatch) for (const lanes of grid.lanes) all.push({ threads, maxBatch, lanes });
  return all;
}

export const describeCombination = (c: Combination) => `threads ${c.threads}, batch ${c.maxBatch}, lanes ${c.lanes}`;

/** The options of one combination, over a base: the pool has exactly `threads` threads up from the start. */
export function withCombination(base: BusOptions, c: Combination): BusOptions {
  const pending = base.backpressure?.maxPending;
  return {
    ...base,
    pool: { ...base.pool, maxThreads: c.threads, minThreads: c.threads },
    dispatch: { ...base.dispatch, maxBatch: c.maxBatch, lanes: c.lanes },
    ...(pending !== undefined && pending < c.maxBatch ? { backpressure: { ...base.backpressure, maxPending: c.maxBatch } } : {}),
  };
}

/**
 * Runs every combination, interleaved in `rounds` rounds as the suites are
 * (see runInterleaved): each round builds a fresh bus per combination (on the
 * same store folder), measures it and closes it, so at most one bus is up at a
 * time; the latency phase runs in the last round. Samples of all rounds are
 * pooled.
 */
export async function runSweep(
  plan: SweepPlan,
  combos: readonly Combination[],
  rounds: number,
  progress: Progress,
): Promise<SweepResult[]> {
  const events = plan.inputs.length;
  const samples = new Map<Combination, number[]>(combos.map((c) => [c, []]));
  const results = new Map<Combination, SweepResult>();
  const options = new Map<Combination, BusOptions>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const c of combos) {
        const pooled = samples.get(c);
        if (pooled === undefined) continue;
        progress.step(`sweep: ${describeCombination(c)}${rounds > 1 ? ` (round ${round + 1} of ${rounds})` : ''}`);
        let bus: EventBus | undefined;
        try {
          if (!options.has(c)) options.set(c, withCombination(plan.options(c), c));
          bus = await createBus(options.get(c)!);
          const b = bus;
          let failure: unknown = null;
          const fail = (err: unknown) => void (failure ??= err);
          pooled.push(
            ...(await measureSamples(
              describeCombination(c),
              async () => {
                for (const input of plan.inputs) b.emit(input).then(undefined, fail);
                await b.flush();
                if (failure !== null) throw failure;
              },
              roundSettings(plan.settings, round, rounds),
            )),
          );
          if (round < rounds - 1) continue;
          const timing = summarize(pooled);
          const eventsPerSec = perSecond(events, timing.medianMs);
          const latency = await pacedLatency(b, plan.inputs, eventsPerSec / 2, plan.latencyMs);
          const failedDeliveries = sumSeries(await b.metrics(), 'eventrail_delivery_failures_total');
          results.set(c, {
            ...c,
            status: 'ok',
            events,
            timing,
            eventsPerSec,
            eventsPerSecP99: perSecond(events, timing.p99Ms),
            latency,
            failedDeliveries,
          });
          progress.note(
            `${formatRate(eventsPerSec)} events/s (median of ${timing.samples}); emit-to-handled p50 ${formatMs(latency?.p50Ms)}, p99 ${formatMs(latency?.p99Ms)}` +
              (failedDeliveries > 0 ? `; ${failedDeliveries} failed deliveries` : ''),
          );
        } catch (err) {
          const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
          progress.note(`failed: ${message}`);
          samples.delete(c);
          results.set(c, {
            ...c,
            status: 'failed',
            error: message,
            events,
            timing: null,
            eventsPerSec: 0,
            eventsPerSecP99: 0,
            latency: null,
            failedDeliveries: 0,
          });
        } finally {
          await bus?.close().catch(() => undefined);
        }
      }
    }
  } finally {
    for (const c of combos) plan.finished?.(c);
  }
  return combos.map((c) => results.get(c)!);
}

/** Emits at `rate` events/s for `ms`, in 1 ms ticks, and reads the latency histogram's change. */
async function pacedLatency(bus: EventBus, inputs: readonly EventInput[], rate: number, ms: number): Promise<LatencyResult | null> {
  if (!(rate > 0) || ms <= 0) return null;
  const before = parseHistogram(await bus.metrics());
  const started = performance.now();
  let sent = 0;
  let failure: unknown = null;
  const fail = (err: unknown) => void (failure ??= err);
  while (true) {
    const elapsed = performance.now() - started;
    if (elapsed >= ms) break;
    const due = Math.floor((rate * elapsed) / 1000);
    for (; sent < due; sent++) bus.emit(inputs[sent % inputs.length]!).then(undefined, fail);
    await sleep(1);
  }
  await bus.flush();
  if (failure !== null) throw failure;
  const h = subtract(parseHistogram(await bus.metrics()), before);
  const batches = observations(h);
  if (batches === 0) return null;
  return {
    p50Ms: quantile(h, 0.5) * 1000,
    p99Ms: quantile(h, 0.99) * 1000,
    atEventsPerSec: Math.round((sent / (performance.now() - started)) * 1000),
    batches,
  };
}

/** The sum of every series of a counter in Prometheus text. */
export function sumSeries(text: string, metric: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

/** events/s as a whole number with thousands separators. */
export const formatRate = (n: number): string => Math.round(n).toLocaleString('en-US');

export const formatMs = (ms: number | undefined) =>
  ms === undefined || !Number.isFinite(ms) ? 'n/a' : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;

/** Within this fraction of the highest rate, settings count as tied (the machine's noise is larger than that). */
export const TIE = 0.05;

/**
 * The setting to use: the highest events/s; among those within 5 % of it, the
 * lowest p99 latency, then the fewest threads, then the smallest batch.
 */
export function bestSetting(results: readonly SweepResult[]): BestSetting | null {
  const ok = results.filter((r) => r.status === 'ok' && r.eventsPerSec > 0);
  if (ok.length === 0) return null;
  const top = Math.max(...ok.map((r) => r.eventsPerSec));
  const tied = ok.filter((r) => r.eventsPerSec >= top * (1 - TIE));
  const p99 = (r: SweepResult) => r.latency?.p99Ms ?? Infinity;
  tied.sort((a, b) => p99(a) - p99(b) || a.threads - b.threads || a.maxBatch - b.maxBatch || a.lanes - b.lanes);
  const best = tied[0]!;
  const why =
    tied.length === 1
      ? 'the highest events/s'
      : `${tied.length} settings within ${TIE * 100} % of the highest events/s (${formatRate(top)}); of those, the lowest p99 latency, then the fewest threads`;
  return {
    threads: best.threads,
    maxBatch: best.maxBatch,
    lanes: best.lanes,
    eventsPerSec: best.eventsPerSec,
    why,
    config: { pool: { maxThreads: best.threads }, dispatch: { maxBatch: best.maxBatch, lanes: best.lanes } },
  };
}
