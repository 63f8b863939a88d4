/**
 * The wire protocol between the bus (main thread) and its workers. A batch
 * travels as one buffer of events encoded back to back with the shared codec,
 * transferred (not copied); everything else is small and structured-cloned.
 */
import type { SerializedError } from './errors.js';
import type { EventInput } from './event/event.js';

/** Handed to every worker as piscina's `workerData`. */
export interface WorkerInit {
  /** Consumer modules, in the bus's order: a consumer's index is its place here. */
  readonly consumers: readonly WorkerConsumer[];
  readonly handlerTimeoutMs: number;
  readonly maxDepth: number;
  /** The name of this bus's control channel (a BroadcastChannel), unique per bus. */
  readonly control: string;
  /** The `tracing.setup` module as a URL, imported before the consumers; null: no spans around handlers. */
  readonly tracingSetup?: string | null;
}

export interface WorkerConsumer {
  /** The module's URL. */
  readonly url: string;
  /** The consumer's options from the bus config, JSON: the handler's `ctx.options`. */
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * Messages on the control channel. The bus posts `abort` when it is about to
 * terminate its workers (close() gave up waiting, or the pool is being
 * destroyed): each worker aborts the signal of every handler still running,
 * gives their code one turn of its event loop, and answers `aborted`.
 */
export type ControlMessage = { readonly kind: 'abort' } | { readonly kind: 'aborted'; readonly threadId: number };

export interface DescribeTask {
  readonly kind: 'describe';
}

export interface BatchTask {
  readonly kind: 'batch';
  /** `count` events encoded back to back. Owned by the receiver once posted. */
  readonly buffer: ArrayBuffer;
  readonly count: number;
  /**
   * null: every consumer that subscribes to each event's type, all on their first
   * attempt. Otherwise (retries, redrives, recovery) the exact deliveries to make,
   * as flattened triples (event index, consumer index, attempt), in order.
   */
  readonly targets: Uint32Array | null;
  /**
   * A heartbeat the worker writes before each handler call, over shared memory
   * so the main thread can read it while the worker is blocked:
   * [event index, consumer index, beats, worker thread id, worker's beat
   * sequence]. The watchdog uses it to find a handler stuck in synchronous
   * code, which no in-worker timer can interrupt, and the worker to stop.
   */
  readonly progress: Int32Array;
}

export const PROGRESS_EVENT = 0;
export const PROGRESS_CONSUMER = 1;
export const PROGRESS_BEATS = 2;
/** The threadId of the worker running the task, set when it starts. */
export const PROGRESS_THREAD = 3;
/**
 * The worker's own beat count at this task's last beat. Tasks on one worker
 * interleave (concurrentTasksPerWorker); when synchronous code blocks the
 * worker, every task on it stops beating, and the one that beat last is the
 * one running that code.
 */
export const PROGRESS_SEQUENCE = 4;
export const PROGRESS_SLOTS = 5;

export type Task = DescribeTask | BatchTask;

export interface ConsumerDescriptor {
  readonly name: string;
  /** `'*'` or event type keys (`UserLoggedIn`, `Custom:name`). */
  readonly eventTypes: '*' | readonly string[];
  readonly module: string;
  /** For a group the store has never seen. */
  readonly startFrom: 'beginning' | 'now';
}

export type DescribeResult =
  { readonly ok: true; readonly consumers: readonly ConsumerDescriptor[] } | { readonly ok: false; readonly error: SerializedError };

export interface DeliveryFailure {
  readonly event: number;
  readonly consumer: number;
  readonly error: SerializedError;
}

/** A follow-up event a handler emitted, validated in the worker. */
export interface FollowUp {
  readonly event: number;
  readonly consumer: number;
  /** Which follow-up of this delivery it is (0, 1, ...): with the ids it makes the follow-up's id deterministic. */
  readonly seq: number;
  readonly input: EventInput;
  /** The handler's trace context (its CONSUMER span), stored beside the follow-up: see src/trace/otel.ts. */
  readonly trace?: { readonly tp: string; readonly ts?: string } | null;
}

/** A consumer-reported metric, aggregated over the batch. */
export interface MetricDelta {
  readonly kind: 'counter' | 'histogram';
  readonly name: string;
  readonly labels: Readonly<Record<string, string>> | null;
  /** counter: one summed value; histogram: every observation. */
  readonly values: number[];
}

export interface BatchResult {
  /** Set when the batch could not be decoded: no delivery was made. */
  readonly corrupt: SerializedError | null;
  /** Deliveries that failed (threw, rejected, timed out); every other target succeeded. */
  readonly failures: readonly DeliveryFailure[];
  readonly followUps: readonly FollowUp[];
  readonly metrics: readonly MetricDelta[];
}
