/**
 * What `npm run bench` (bench/main.ts) records: the JSON report's shape. Every figure a
 * person reads (tables, Markdown, the chart) is rendered from this object, so
 * `--json` holds everything the other outputs show.
 */
import type { Timing } from '../src/cli/sweep/measure.js';
import type { SweepConfigRecord, SweepReport } from '../src/cli/sweep/results.js';

export type { BestSetting, LatencyResult, MachineInfo, SweepResult } from '../src/cli/sweep/results.js';

export const SUITES = ['codec', 'dispatch', 'store', 'durable', 'peers', 'memory', 'cluster', 'sweep'] as const;
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

/** One throughput run of the cluster suite: `instances` processes on one lmdb store, two consumer groups. */
export interface ClusterThroughput {
  readonly instances: number;
  /** Events emitted by all instances together; each group handles every one. */
  readonly events: number;
  /** From the start of the emits until every cursor of both groups stood at its partition's last event. */
  readonly seconds: number;
  /** events / seconds: what each whole group handled per second, across the instances. */
  readonly eventsPerSecPerGroup: number;
}

/** The cluster suite (bench/cluster.ts): instances on one lmdb store, consumer groups, takeover after a SIGKILL. */
export interface ClusterResult {
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly instances: number;
  readonly eventsPerInstance: number;
  readonly groups: number;
  readonly partitions: number;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly checkpointMs: number;
  /** The same number of events from one instance (it holds every lease: the fast path). */
  readonly single: ClusterThroughput | null;
  readonly cluster: ClusterThroughput | null;
  /** From the SIGKILL of one instance mid-stream until the survivors held every lease. */
  readonly takeoverMs: number | null;
  /** From the kill until the last of the killed instance's leases lapsed. */
  readonly lapseMs: number | null;
  /** Leases the killed instance held. */
  readonly victimLeases: number | null;
}

export interface BenchConfigRecord extends SweepConfigRecord {
  readonly suites: readonly SuiteName[];
}

export interface BenchReport extends SweepReport {
  readonly config: BenchConfigRecord;
  readonly scenarios: readonly ScenarioResult[];
  readonly ratios: readonly RatioResult[];
  /** `overload` with store `none`, `overloadDurable` with lmdb: the same load, each in a child process of its own. */
  readonly memory: {
    readonly overload: OverloadResult | null;
    readonly overloadDurable: OverloadResult | null;
    readonly replay: ReplayResult | null;
  };
  /** Absent in reports from before the cluster suite. */
  readonly cluster?: ClusterResult | null;
}
