/**
 * Lanes, batches and outcomes. Committed events are routed by partition key to
 * a lane; a lane has at most one batch in flight, so events with the same key
 * reach every consumer in commit order, while lanes run in parallel on the
 * pool. A batch is one piscina task whose buffer is transferred, not copied.
 * A batch's outcomes are applied here: failed deliveries are retried for that
 * consumer only (retry-scheduler.ts), then dead-lettered; a batch lost to a
 * dead or stopped worker (watchdog.ts) is split and run again until the fault
 * is pinned on single deliveries.
 */
import type { Piscina } from 'piscina';
import { HandlerTimeoutError, WorkerCrashedError, serializeError, type SerializedError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { ConsumerMatcher } from '../consumer-matcher.js';
import { PROGRESS_SLOTS } from '../protocol.js';
import type { BatchResult, BatchTask, ConsumerDescriptor, FollowUp } from '../protocol.js';
import { copyBodies } from '../store/layout/blocks.js';
import type { Accepted } from './accepted.js';
import type { BusMetrics } from './metrics.js';
import { hashKey } from './partitions.js';
import { RetryScheduler } from './retry-scheduler.js';
import { Watchdog } from './watchdog.js';

export interface Delivery {
  readonly item: Accepted;
  readonly consumer: number;
  readonly attempt: number;
  /** Re-dispatched from the dead letters: success removes the dead letter. */
  readonly redrive: boolean;
  /**
   * The attempt this series started at (default 1). A redrive goes on counting
   * after the dead letter's attempts, as ctx.attempt promises, and gets
   * delivery.maxAttempts attempts of its own from there.
   */
  readonly firstAttempt?: number;
}

export interface DispatcherDeps {
  readonly pool: Piscina;
  readonly options: ResolvedOptions;
  readonly consumers: readonly ConsumerDescriptor[];
  readonly metrics: BusMetrics;
  /** One delivery of the item (to consumer `consumer`) is finished: handled, dead-lettered, or no longer this instance's. */
  handled(item: Accepted, consumer: number): void;
  /** Every delivery of the item is finished. */
  done(item: Accepted): void;
  /** Accepts a delivery's follow-up events; resolves once they are durable. */
  acceptFollowUps(parent: Accepted, consumer: ConsumerDescriptor, followUps: readonly FollowUp[]): Promise<void>;
  /** Saves a dead letter; resolves once it is durable, or once its lease is found lost (then nothing is saved). */
  deadLetter(delivery: Delivery, error: SerializedError): Promise<void>;
  /** A redriven delivery succeeded; resolves once its dead letter is gone. */
  redriven(delivery: Delivery): Promise<void>;
  /** A batch was lost to a worker fault. */
  workerError(error: WorkerCrashedError): void;
  warn(message: string, cause?: unknown): void;
}

class Lane {
  queue: Accepted[] = [];
  head = 0;
  busy = false;

  get size(): number {
    return this.queue.length - this.head;
  }

  take(max: number): Accepted[] {
    const end = Math.min(this.queue.length, this.head + max);
    const batch = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch;
  }
}

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  readonly #lanes: Lane[];
  readonly #maxBatch: number;
  readonly #maxAttempts: number;
  readonly #matcher: ConsumerMatcher;
  readonly #retries: RetryScheduler<Delivery>;
  readonly #watchdog: Watchdog;
  #roundRobin = 0;
  /** Set when close() gave up: nothing more is dispatched and no outcome is applied. */
  #abandoned = false;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    const { dispatch, delivery } = deps.options;
    this.#lanes = Array.from({ length: dispatch.lanes }, () => new Lane());
    this.#maxBatch = dispatch.maxBatch;
    this.#maxAttempts = delivery.maxAttempts;
    this.#matcher = new ConsumerMatcher(deps.consumers);
    this.#retries = new RetryScheduler(delivery.backoff, (deliveries) => this.deliver(deliveries));
    this.#watchdog = new Watchdog(deps.pool, delivery.handlerTimeoutMs);
  }

  /** Stops the watchdog timer (the bus is closing). */
  stop(): void {
    this.#watchdog.stop();
  }

  /**
   * close() stopped waiting for the deliveries in flight: from now on nothing
   * is dispatched, retried, dead-lettered or stored as a follow-up, and the
   * outcomes of tasks still running are dropped. Their events stay unfinished,
   * so the cursors stay before them and the next owner delivers them again.
   */
  abandon(): void {
    this.#abandoned = true;
    this.#retries.cancel();
    this.stop();
  }

  /** The consumers subscribed to an event type. */
  consumersFor(typeKey: string): readonly number[] {
    return this.#matcher.match(typeKey);
  }

  /** Routes committed events (in commit order) to their lanes and starts idle lanes. */
  route(items: readonly Accepted[]): void {
    if (this.#abandoned) return;
    const lanes = this.#lanes;
    const touched = new Set<Lane>();
    for (const item of items) {
      const targets = item.only ?? this.consumersFor(item.typeKey);
      const n = targets.length;
      item.outstanding = n;
      if (n === 0) {
        this.#deps.done(item);
        continue;
      }
      const left = item.group?.left;
      if (left != null) for (let k = 0; k < n; k++) left[targets[k]!]!++;
      const index = item.partitionKey === null ? this.#roundRobin++ % lanes.length : hashKey(item.partitionKey) % lanes.length;
      const lane = lanes[index]!;
      lane.queue.push(item);
      touched.add(lane);
    }
    for (const lane of touched) this.#pump(lane);
  }

  /**
   * Dispatches given deliveries now, outside the lanes, in batches of at most
   * dispatch.maxBatch: redrives, retries whose wait is over, and deliveries
   * run again as they were (no attempt counted) because their task was lost
   * through no fault of theirs.
   */
  deliver(deliveries: readonly Delivery[]): void {
    if (this.#abandoned) return;
    for (let i = 0; i < deliveries.length; i += this.#maxBatch) void this.#runTargets(deliveries.slice(i, i + this.#maxBatch));
  }

  /** On close: run every scheduled retry now instead of waiting out its backoff. */
  drainRetries(): void {
    this.#retries.drain();
  }

  #pump(lane: Lane): void {
    if (lane.busy || lane.size === 0 || this.#abandoned) return;
    lane.busy = true;
    const items = lane.take(this.#maxBatch);
    // Events read from the shared log may go to only some consumers (the groups whose leases this instance holds).
    const run = items.some((item) => item.only !== null) ? this.#runTargets(this.#freshDeliveries(items)) : this.#run(items, null);
    void run.finally(() => {
      lane.busy = false;
      this.#pump(lane);
    });
  }

  /** With `alone`, the task runs on a worker with no other task (see #crashed). */
  #runTargets(deliveries: readonly Delivery[], alone = false): Promise<void> {
    const items: Accepted[] = [];
    const indexOf = new Map<Accepted, number>();
    for (const d of deliveries) {
      if (!indexOf.has(d.item)) {
        indexOf.set(d.item, items.length);
        items.push(d.item);
      }
    }
    return this.#run(items, deliveries, indexOf, alone);
  }

  /** Runs one batch task and applies its outcomes. Never rejects. */
  async #run(
    items: readonly Accepted[],
    targets: readonly Delivery[] | null,
    indexOf?: Map<Accepted, number>,
    alone = false,
  ): Promise<void> {
    let total = 0;
    for (const item of items) total += item.byteLength;
    // A buffer of our own, so it can be transferred to the worker without a copy.
    const buffer = new ArrayBuffer(total);
    const view = Buffer.from(buffer);
    copyBodies(items, view, 0);
    let triples: Uint32Array | null = null;
    if (targets !== null) {
      triples = new Uint32Array(targets.length * 3);
      targets.forEach((d, k) => {
        triples![k * 3] = indexOf!.get(d.item)!;
        triples![k * 3 + 1] = d.consumer;
        triples![k * 3 + 2] = d.attempt;
      });
    }
    const progress = new Int32Array(new SharedArrayBuffer(PROGRESS_SLOTS * Int32Array.BYTES_PER_ELEMENT));
    const task: BatchTask = { kind: 'batch', buffer, count: items.length, targets: triples, progress };
    this.#deps.metrics.batchSize.observe(items.length);
    const watched = this.#watchdog.watch(progress);
    try {
      let result: BatchResult;
      try {
        // piscina runs a task that has an AbortSignal only on an idle worker, and gives that worker no
        // other task until it is done: the signal (never aborted) is how a task is run alone.
        const signal = alone ? new AbortController().signal : undefined;
        result = (await this.#deps.pool.run(task, { transferList: [buffer], signal })) as BatchResult;
      } catch (err) {
        if (this.#abandoned) return;
        const deliveries = targets ?? this.#freshDeliveries(items);
        if (watched.stuck !== null) this.#stalled(items, deliveries, watched.stuck);
        else if (watched.bystander) this.deliver(deliveries);
        else this.#crashed(deliveries, err, alone);
        return;
      }
      if (this.#abandoned) return;
      this.#apply(items, targets, result, indexOf);
      // Once per batch, for its oldest event's commit group: when the group's first event was accepted.
      const group = items[0]!.group;
      if (targets === null && group !== null) this.#deps.metrics.latency.observe((performance.now() - group.acceptedAt) / 1000);
    } catch (err) {
      this.#deps.warn('internal error while applying batch outcomes', err);
    } finally {
      this.#watchdog.unwatch(watched);
    }
  }

  /**
   * The watchdog stopped a task whose heartbeat named the delivery it was
   * running. That delivery is run again on its own (if it blocks again, it
   * fails an attempt); every other delivery of the batch is run again, with no
   * attempt counted.
   */
  #stalled(items: readonly Accepted[], deliveries: readonly Delivery[], stuck: { event: number; consumer: number }): void {
    const { consumers, metrics } = this.#deps;
    const name = consumers[stuck.consumer]?.name ?? `#${stuck.consumer}`;
    const error = new WorkerCrashedError(
      `the worker was stopped: a handler of ${name} blocked it past the watchdog (${this.#watchdog.stallMs} ms)`,
    );
    metrics.workerErrors.inc();
    this.#deps.workerError(error);
    const stuckItem = items[stuck.event];
    const isStuck = (d: Delivery) => d.item === stuckItem && d.consumer === stuck.consumer;
    const culprit = deliveries.filter(isStuck);
    const others = deliveries.filter((d) => !isStuck(d));
    if (deliveries.length === 1 || (culprit.length === 1 && others.length === 0)) {
      const timeout = new HandlerTimeoutError(name, this.#deps.options.delivery.handlerTimeoutMs);
      this.#failed([{ delivery: deliveries[0]!, error: { ...timeout.toJSON(), message: `${timeout.message}; ${error.message}` } }]);
      return;
    }
    if (culprit.length > 0) void this.#runTargets(culprit);
    this.deliver(others);
  }

  #freshDeliveries(items: readonly Accepted[]): Delivery[] {
    const deliveries: Delivery[] = [];
    for (const item of items) {
      for (const consumer of item.only ?? this.consumersFor(item.typeKey)) deliveries.push({ item, consumer, attempt: 1, redrive: false });
    }
    return deliveries;
  }

  /**
   * A worker died under the batch (process.exit, an uncaught error, a resource
   * limit). Which delivery caused it is unknown, so the batch is split and run
   * again, by consumer and then by halves, until the fault is pinned on single
   * deliveries: only those count an attempt. Others may see their events again
   * (delivery is at least once).
   *
   * Tasks share a worker (concurrentTasksPerWorker), and a dying worker takes
   * all of them down, so the parts run alone on a worker: a single delivery
   * counts an attempt only when it crashed a worker by itself.
   */
  #crashed(deliveries: readonly Delivery[], err: unknown, alone: boolean): void {
    const error = new WorkerCrashedError((err as Error)?.message ?? String(err), err);
    this.#deps.metrics.workerErrors.inc();
    this.#deps.workerError(error);
    if (deliveries.length === 1) {
      if (alone) this.#failed([{ delivery: deliveries[0]!, error: error.toJSON() }]);
      else void this.#runTargets(deliveries, true);
      return;
    }
    const byConsumer = new Map<number, Delivery[]>();
    for (const d of deliveries) {
      const list = byConsumer.get(d.consumer) ?? [];
      list.push(d);
      byConsumer.set(d.consumer, list);
    }
    const parts =
      byConsumer.size > 1
        ? [...byConsumer.values()]
        : [deliveries.slice(0, deliveries.length >> 1), deliveries.slice(deliveries.length >> 1)];
    for (const part of parts) void this.#runTargets(part, true);
  }

  /**
   * Applies a batch's outcomes. The common case, a fresh batch where every
   * delivery succeeded, allocates nothing per event: deliveries are walked by
   * index and only failures and follow-ups become objects.
   */
  #apply(items: readonly Accepted[], targets: readonly Delivery[] | null, result: BatchResult, indexOf?: Map<Accepted, number>): void {
    const { metrics, consumers } = this.#deps;
    if (result.corrupt !== null) {
      const error = result.corrupt;
      const deliveries = targets ?? this.#freshDeliveries(items);
      if (items.length === 1) {
        this.#failed(deliveries.map((delivery) => ({ delivery, error })));
        return;
      }
      // The batch's bytes are its events' bytes end to end, and one bad event can garble the decoding
      // of those after it: split by events, as #crashed does, until the bad one is alone.
      const firstHalf = new Set(items.slice(0, items.length >> 1));
      void this.#runTargets(deliveries.filter((d) => firstHalf.has(d.item)));
      void this.#runTargets(deliveries.filter((d) => !firstHalf.has(d.item)));
      return;
    }
    const count = consumers.length;
    let special: Map<number, SerializedError | FollowUp[]> | undefined;
    for (const f of result.failures) (special ??= new Map()).set(f.event * count + f.consumer, f.error);
    for (const f of result.followUps) {
      special ??= new Map();
      const key = f.event * count + f.consumer;
      const existing = special.get(key);
      if (Array.isArray(existing)) existing.push(f);
      else if (existing === undefined) special.set(key, [f]);
    }
    if (result.metrics.length > 0) metrics.applyConsumerMetrics(result.metrics, (m) => this.#deps.warn(m));

    const delivered = new Array<number>(count).fill(0);
    const failures: Array<{ delivery: Delivery; error: SerializedError }> = [];
    const outcome = (d: Delivery | null, item: Accepted, consumer: number, key: number) => {
      const found = special?.get(key);
      if (found === undefined) {
        delivered[consumer]!++;
        if (d === null || !d.redrive) this.#finish(item, consumer);
        else this.#succeeded(d);
        return;
      }
      const delivery = d ?? { item, consumer, attempt: 1, redrive: false };
      if (!Array.isArray(found)) {
        failures.push({ delivery, error: found });
        return;
      }
      // The delivery is finished (and counted as delivered) only once its follow-ups are durable; if they cannot be stored, it is retried.
      this.#deps.acceptFollowUps(item, consumers[consumer]!, found).then(
        () => {
          metrics.delivered.inc({ consumer: consumers[consumer]!.name });
          this.#succeeded(delivery);
        },
        (err: unknown) => this.#failed([{ delivery, error: serializeError(err) }]),
      );
    };
    if (targets === null) {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        // By index: an iterator per event is garbage the common case can do without.
        const subscribed = this.consumersFor(item.typeKey);
        for (let k = 0; k < subscribed.length; k++) outcome(null, item, subscribed[k]!, i * count + subscribed[k]!);
      }
    } else {
      for (const d of targets) outcome(d, d.item, d.consumer, indexOf!.get(d.item)! * count + d.consumer);
    }
    delivered.forEach((n, c) => {
      if (n > 0) metrics.delivered.inc({ consumer: consumers[c]!.name }, n);
    });
    if (failures.length > 0) this.#failed(failures);
  }

  #succeeded(d: Delivery): void {
    if (!d.redrive) {
      this.#finish(d.item, d.consumer);
      return;
    }
    this.#deps.redriven(d).then(
      () => this.#finish(d.item, d.consumer),
      (err: unknown) => {
        this.#deps.warn('could not remove a redriven dead letter; it stays listed', err);
        this.#finish(d.item, d.consumer);
      },
    );
  }

  #finish(item: Accepted, consumer: number): void {
    this.#deps.handled(item, consumer);
    if (--item.outstanding === 0) this.#deps.done(item);
  }

  #failed(failures: ReadonlyArray<{ delivery: Delivery; error: SerializedError }>): void {
    if (this.#abandoned) return;
    const { metrics, consumers } = this.#deps;
    const retryGroups = new Map<number, Delivery[]>();
    for (const { delivery: d, error } of failures) {
      const name = consumers[d.consumer]!.name;
      metrics.failures.inc({ consumer: name });
      const used = d.attempt - (d.firstAttempt ?? 1) + 1;
      if (used < this.#maxAttempts) {
        metrics.retries.inc({ consumer: name });
        const next: Delivery = {
          item: d.item,
          consumer: d.consumer,
          attempt: d.attempt + 1,
          redrive: d.redrive,
          firstAttempt: d.firstAttempt,
        };
        const group = retryGroups.get(used) ?? [];
        group.push(next);
        retryGroups.set(used, group);
        continue;
      }
      metrics.deadLetters.inc({ consumer: name });
      this.#deps.deadLetter(d, error).then(
        () => this.#finish(d.item, d.consumer),
        (err: unknown) => {
          // The event stays unfinished: no cursor can pass it, so it is delivered again after a restart.
          this.#deps.warn(`could not save the dead letter of event ${d.item.eventId} for ${name}`, err);
          d.item.poisoned = true;
          this.#finish(d.item, d.consumer);
        },
      );
    }
    for (const [attempt, deliveries] of retryGroups) this.#retries.schedule(deliveries, attempt);
  }
}
