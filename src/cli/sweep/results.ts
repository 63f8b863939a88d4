/**
 * What `eventrail bench` (the tuning sweep) records: the JSON report's shape.
 * The tables and the snippet it prints are rendered from this object, so
 * `--json` holds everything the text shows. The repository's full benchmark
 * (bench/results.ts) extends it with its suites, ratios and memory figures.
 */
import type { ResolvedOptions } from '../../options.js';
import type { Timing } from './measure.js';

/** One combination of the sweep. */
export interface SweepResult {
  readonly threads: number;
  readonly maxBatch: number;
  readonly lanes: number;
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly events: number;
  readonly timing: Timing | null;
  readonly eventsPerSec: number;
  readonly eventsPerSecP99: number;
  /**
   * Emit-to-handled latency, read from the bus's
   * `eventrail_emit_to_handled_seconds` histogram during a paced phase at
   * half the combination's measured rate (at full rate latency is only the
   * queue length). Interpolated within buckets like Prometheus'
   * histogram_quantile.
   */
  readonly latency: LatencyResult | null;
  /** Deliveries that failed while measuring (a consumer threw or timed out). */
  readonly failedDeliveries: number;
}

export interface LatencyResult {
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The paced rate the latency was measured at, events/s. */
  readonly atEventsPerSec: number;
  /** Batches observed (one histogram observation per batch). */
  readonly batches: number;
}

export interface BestSetting {
  readonly threads: number;
  readonly maxBatch: number;
  readonly lanes: number;
  readonly eventsPerSec: number;
  readonly why: string;
  /** The snippet to paste into the config file. */
  readonly config: {
    readonly pool: { readonly maxThreads: number };
    readonly dispatch: { readonly maxBatch: number; readonly lanes: number };
  };
}

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly freeMemoryGiB: number;
  readonly node: string;
  readonly platform: string;
  /** 1, 5 and 15 minute load averages when the run started and ended: other work on the machine skews every figure. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
}

export interface SweepConfigRecord {
  readonly quick: boolean;
  /** Events per iteration of the eventrail scenarios and the sweep. */
  readonly events: number;
  /** tinybench's settings per scenario; `rounds` interleaved rounds share them out (see sweep.ts). */
  readonly settings: {
    readonly timeMs: number;
    readonly minIterations: number;
    readonly warmupMs: number;
    readonly warmupIterations: number;
    readonly rounds: number;
  };
  readonly grid: { readonly threads: readonly number[]; readonly maxBatch: readonly number[]; readonly lanes: readonly number[] };
  /** The consumers the sweep ran. */
  readonly consumers: readonly string[];
  /** Where the sweep's events came from. */
  readonly source: 'synthetic' | 'store';
  readonly eventTypes: readonly string[];
  readonly configFile: string | null;
  readonly store: string;
  /**
   * The options the sweep's buses were created with, fully resolved (defaults, the config file, the
   * EVENTRAIL_* environment, and the sweep's own changes such as delivery.maxAttempts 1); null
   * without a sweep. Each combination then sets pool.maxThreads and minThreads, dispatch.maxBatch and
   * dispatch.lanes from `grid` (and raises backpressure.maxPending to maxBatch when it is lower).
   */
  readonly options: ResolvedOptions | null;
}

export interface SweepReport {
  readonly schema: 'eventrail-bench/1';
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: MachineInfo;
  readonly packages: Readonly<Record<string, string>>;
  readonly config: SweepConfigRecord;
  readonly sweep: readonly SweepResult[];
  readonly best: BestSetting | null;
  /** Notes for the reader: failed deliveries, what was overridden. */
  readonly notes: readonly string[];
}
