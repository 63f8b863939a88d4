/**
 * What `eventrail bench` records: the JSON report's shape. Every figure a
 * person reads (tables, Markdown, the chart) is rendered from this object, so
 * `--json` holds everything the other outputs show.
 */
import type { ResolvedOptions } from '../options.js';
import type { Timing } from './measure.js';

export const SUITES = ['codec', 'dispatch', 'store', 'durable', 'peers', 'memory', 'sweep'] as const;
export type SuiteName = (typeof SUITES)[number];

/** One measured scenario, a skipped one (the reason says why), or one that failed. */
export type ScenarioResult = MeasuredScenario | SkippedScenario | FailedScenario;

interface ScenarioHead {
  /** Stable key, e.g. `dispatch.eventrail`: ratios name scenarios by it. */
  readonly id: string;
  readonly suite: SuiteName;
  readonly name: string;
  /** eventrail itself, or a peer measured in the same run for comparison. */
  readonly role: 'eventrail' | 'peer';
}

export interface MeasuredScenario extends ScenarioHead {
  readonly status: 'ok';
  /** Events one iteration moves. */
  readonly events: number;
  readonly timing: Timing;
  /** events / median iteration time. */
  readonly eventsPerSec: number;
  /** events / p99 iteration time: the rate of the slow tail. */
  readonly eventsPerSecP99: number;
  /** Scenario-specific figures (bytes per event, failed deliveries, ...). */
  readonly extras: Readonly<Record<string, number | string>>;
}

export interface SkippedScenario extends ScenarioHead {
  readonly status: 'skipped';
  readonly reason: string;
}

export interface FailedScenario extends ScenarioHead {
  readonly status: 'failed';
  readonly error: string;
}

export interface RatioResult {
  readonly name: string;
  /** Scenario ids: numerator / denominator of their median events/s. */
  readonly of: string;
  readonly to: string;
  /** null when either side was skipped or failed. */
  readonly value: number | null;
  /** A target from the issues (value ≥ min), when there is one. */
  readonly target: number | null;
  readonly met: boolean | null;
}

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
  readonly config: { readonly pool: { readonly maxThreads: number }; readonly dispatch: { readonly maxBatch: number; readonly lanes: number } };
}

/** Start, peak and end of one memory figure, MiB. */
export interface MemoryRange {
  readonly start: number;
  readonly peak: number;
  readonly end: number;
}

export interface MemoryTrace {
  /** Resident set size. For a replay it includes the pages of the lmdb file the read maps (file-backed and reclaimable, not the process's own). */
  readonly rss: MemoryRange;
  /** Anonymous resident memory (Linux's RssAnon): the process's own heap and buffers, the figure that must stay flat. null elsewhere. */
  readonly anonRss: MemoryRange | null;
  readonly heapUsed: MemoryRange;
  /** Anonymous RSS (RSS where it is not known) when 10 %, 50 % and 90 % of the work was done. */
  readonly along: Readonly<Record<string, number>>;
}

/** Where the overload's events go: nowhere (`none`), or the durable path, lmdb in a temporary folder. */
export type OverloadStore = 'none' | 'lmdb';

export interface OverloadResult {
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly store: OverloadStore;
  /** The lmdb data file's size at the end, MiB; null with store `none`. */
  readonly storeMiB: number | null;
  readonly events: number;
  readonly maxPending: number;
  readonly slowConsumerMicros: number;
  readonly seconds: number;
  readonly eventsPerSec: number;
  /** Along the emits: `along` at 10 %, 50 %, 90 % of them. */
  readonly memory: MemoryTrace | null;
  readonly maxPendingSeen: number;
}

export interface ReplayResult {
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly events: number;
  readonly fillSeconds: number;
  readonly storeMiB: number;
  readonly timing: Timing | null;
  readonly eventsPerSec: number;
  readonly eventsPerSecP99: number;
  /** Along the timed passes (after the store was filled): `along` at 10 %, 50 %, 90 % of the first. */
  readonly memory: MemoryTrace | null;
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

export interface BenchConfigRecord {
  readonly quick: boolean;
  readonly suites: readonly SuiteName[];
  /** Events per iteration of the eventrail scenarios and the sweep. */
  readonly events: number;
  /** tinybench's settings per scenario; `rounds` interleaved rounds share them out (see scenario.ts). */
  readonly settings: { readonly timeMs: number; readonly minIterations: number; readonly warmupMs: number; readonly warmupIterations: number; readonly rounds: number };
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

export interface BenchReport {
  readonly schema: 'eventrail-bench/1';
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: MachineInfo;
  readonly packages: Readonly<Record<string, string>>;
  readonly config: BenchConfigRecord;
  readonly scenarios: readonly ScenarioResult[];
  readonly ratios: readonly RatioResult[];
  readonly sweep: readonly SweepResult[];
  readonly best: BestSetting | null;
  /** `overload` with store `none`, `overloadDurable` with lmdb: the same load, each in a child process of its own. */
  readonly memory: { readonly overload: OverloadResult | null; readonly overloadDurable: OverloadResult | null; readonly replay: ReplayResult | null };
  /** Notes for the reader: skipped peers, failed deliveries, what was overridden. */
  readonly notes: readonly string[];
}
