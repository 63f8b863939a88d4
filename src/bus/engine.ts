/**
 * The private engine behind `EventBus`: the parts of a running bus, built in
 * dependency order, and what the facade delegates to. `Engine.start` takes
 * resolved options, starts the worker pool (which loads the consumer modules),
 * opens the store, builds the parts, takes its leases on the shared log and
 * re-dispatches what lies past their cursors, all before a facade exists; the facade holds the engine in a
 * `#private` field, so none of it is reachable from the public class.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { Codec } from '../codec.js';
import { BusClosedError, ConsumerLoadError, StoreUnavailableError, type EventrailError, type SerializedError } from '../errors.js';
import type { AuditEntry, Event } from '../event/event.js';
import type { ResolvedOptions } from '../options.js';
import type { ConsumerDescriptor, DescribeResult, FollowUp, WorkerInit } from '../protocol.js';
import { openStore } from '../store/open.js';
import { readAuditEntries, readEvents, type AuditReadQuery, type EventReadQuery } from '../store/read.js';
import { positionToString, type CorruptHandler, type EventStore, type Fence } from '../store/store.js';
import type { Accepted, CommitGroup } from './accepted.js';
import { Cursors } from './cursors.js';
import { Ownership, defaultInstanceId } from './ownership.js';
import { partitionOf } from './partitions.js';
import { Tailer } from './tailer.js';
import { DeadLetterBox, type DeadLetterFilter } from './dead-letters.js';
import { Dispatcher, type Delivery } from './dispatcher.js';
import { Intake } from './intake.js';
import { BusMetrics } from './metrics.js';
import type { Notices } from './notices.js';
import { WorkerControl } from './worker-control.js';
import { deadLetterChannel, deliverChannel } from '../trace/channels.js';
import { loadOtel, TraceCapture, type OtelModule } from '../trace/otel.js';

/** What exists before the parts are built: the pool with its consumers loaded, and the open store. */
type Foundation = Pick<Engine, 'options' | 'notices' | 'codec' | 'pool' | 'control' | 'consumers' | 'store'> & {
  /** @opentelemetry/api when tracing is on and it is installed, else null. */
  readonly otel: OtelModule | null;
};

export class Engine {
  readonly options: ResolvedOptions;
  readonly notices: Notices;
  readonly codec: Codec;
  readonly pool: Piscina;
  readonly control: WorkerControl;
  readonly consumers: readonly ConsumerDescriptor[];
  readonly store: EventStore | null;
  readonly metrics: BusMetrics;
  /** This instance's id on the shared log. */
  readonly instance: string;
  /** With a store and consumers: progress per consumer, the leases held, and the reader of the shared log. */
  readonly cursors: Cursors | null;
  readonly ownership: Ownership | null;
  readonly tailer: Tailer | null;
  readonly deadLetters: DeadLetterBox;
  readonly intake: Intake;
  readonly dispatcher: Dispatcher;

  /** Starts a bus's engine; on failure everything started so far is stopped again. */
  static async start(options: ResolvedOptions, notices: Notices): Promise<Engine> {
    const codec = new Codec();
    const consumerUrls = options.consumers.map((c) => toModuleUrl(c.module));
    // Trace context (src/trace/otel.ts): @opentelemetry/api is loaded only when tracing is on, and may be absent.
    const otel = options.tracing.enabled ? await loadOtel() : null;
    const control = new WorkerControl();
    let pool: Piscina | null = null;
    let store: EventStore | null = null;
    let engine: Engine | null = null;
    try {
      control.open();
      const init: WorkerInit = {
        consumers: options.consumers.map((c, i) => ({ url: consumerUrls[i]!, options: c.options })),
        handlerTimeoutMs: options.delivery.handlerTimeoutMs,
        maxDepth: options.limits.maxDepth,
        control: control.name,
        tracingSetup: options.tracing.enabled && options.tracing.setup !== undefined ? toModuleUrl(options.tracing.setup) : null,
      };
      pool = new Piscina({
        filename: new URL('../worker/worker.js', import.meta.url).href,
        minThreads: options.pool.minThreads ?? Math.min(1, options.pool.maxThreads),
        maxThreads: options.pool.maxThreads,
        concurrentTasksPerWorker: options.pool.concurrentTasksPerWorker,
        idleTimeout: options.pool.idleTimeout,
        resourceLimits: options.pool.resourceLimits,
        // The default, 'async': 'sync' parks an idle worker in Atomics.wait, which also stops its event loop,
        // so a consumer's background work (timers, sockets, flushes after handle resolved) would stall.
        atomics: options.pool.atomics,
        workerData: init,
      });
      const described = (await pool.run({ kind: 'describe' })) as DescribeResult;
      if (!described.ok) throw reviveLoadError(described.error, init.tracingSetup ? [...consumerUrls, init.tracingSetup] : consumerUrls);
      store = await openStore(options.store, { pollMs: options.coordination.pollMs });
      engine = new Engine({ options, notices, codec, pool, control, consumers: described.consumers, store, otel });
      await engine.#recover();
      return engine;
    } catch (err) {
      // Recovery may have routed pages already: the dispatcher must not read the destroyed pool's rejections
      // as crashes (re-running, retrying, dead-lettering into the closed store), and no cursor may be
      // written, since the events recovered so far were not handled.
      engine?.dispatcher.abandon();
      engine?.tailer?.stop();
      // The leases go back with the cursors as they were, so others take over at once.
      await engine?.ownership?.leave(true);
      if (pool !== null) {
        // A batch that finishes while destroy() runs answers a task piscina already dropped, which it reports as
        // an 'error' event: unheard, that would be an uncaught exception. Its outcome is not wanted anyway.
        pool.on('error', () => undefined);
        await stopWorkers(pool, control).catch(() => undefined);
      } else {
        control.close();
      }
      await store?.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * The intake and the dispatcher feed each other (committed events go to the
   * dispatcher, handled ones free the intake's room, follow-ups go back to the
   * intake), and the metrics read both: each part is built once what it needs
   * exists, and the links that point forward are the engine's own methods,
   * which nothing calls before the first event is accepted.
   */
  private constructor({ options, notices, codec, pool, control, consumers, store, otel }: Foundation) {
    this.options = options;
    this.notices = notices;
    this.codec = codec;
    this.pool = pool;
    this.control = control;
    this.consumers = consumers;
    this.store = store;
    this.metrics = new BusMetrics({
      pending: () => this.intake.pending,
      poolUtilization: () => pool.utilization,
      poolThreads: () => pool.threads.length,
    });
    this.instance = options.checkpoint.instance ?? defaultInstanceId();
    const shared = store !== null && consumers.length > 0;
    const cursors = (this.cursors = shared ? new Cursors(consumers.length, (c) => this.#cursorsMoved(c)) : null);
    const deadLetters = (this.deadLetters = new DeadLetterBox(store, codec));
    this.intake = new Intake({
      options,
      store,
      codec,
      metrics: this.metrics,
      trace: otel === null ? null : new TraceCapture(otel),
      committed: (items: Accepted[], group: CommitGroup) => {
        if (this.tailer !== null) this.tailer.committed(items, group);
        else this.dispatcher.route(items);
      },
      warn: notices.warn,
    });
    const intake = this.intake;
    this.dispatcher = new Dispatcher({
      pool,
      options,
      consumers,
      metrics: this.metrics,
      handled: (item: Accepted, consumer: number) => {
        const group = item.group;
        if (group === null || cursors === null) return;
        if (item.poisoned) group.poisoned = true;
        cursors.handled(group, consumer);
      },
      done: (item: Accepted) => {
        if (deliverChannel.hasSubscribers) {
          deliverChannel.publish({ eventId: item.eventId, position: item.position === null ? null : positionToString(item.position) });
        }
        intake.release();
      },
      acceptFollowUps: async (parent: Accepted, consumer: ConsumerDescriptor, followUps: readonly FollowUp[]) => {
        await Promise.all(followUps.map((f) => intake.emitFollowUp(f.input, parent.eventId, consumer.name, f.seq, f.trace ?? null)));
      },
      deadLetter: (d: Delivery, error: SerializedError) => {
        if (deadLetterChannel.hasSubscribers) {
          const position = d.item.position === null ? null : positionToString(d.item.position);
          deadLetterChannel.publish({
            eventId: d.item.eventId,
            consumer: consumers[d.consumer]!.name,
            position,
            attempts: d.attempt,
            error,
          });
        }
        // On a shared log the dead letter is written under the lease of the event's partition: a lease
        // lost meanwhile means another instance delivers the event, and nothing is written here.
        const ownership = this.ownership;
        let fence: Fence | undefined;
        if (ownership !== null && !d.redrive) {
          const partition = this.#partitionOf(d.item);
          const held = ownership.fence(d.consumer, partition);
          if (held === null) return Promise.resolve();
          fence = held;
        }
        const record = {
          consumer: consumers[d.consumer]!.name,
          position: d.item.position!,
          event: d.item.bytes,
          error,
          attempts: d.attempt,
          failedAt: new Date().toISOString(),
          tenantId: d.item.tenantId,
        };
        return deadLetters.put(fence === undefined ? record : { ...record, fence }, this.instance).then(({ lost }) => {
          if (lost.length > 0 && fence !== undefined) ownership?.fenced(d.consumer, fence.partition);
        });
      },
      redriven: (d: Delivery) => deadLetters.remove({ consumer: consumers[d.consumer]!.name, position: d.item.position! }),
      workerError: notices.workerError,
      warn: notices.warn,
    });
    if (!shared) {
      this.ownership = null;
      this.tailer = null;
      return;
    }
    const renewMs = options.coordination.renewMs ?? Math.max(1, Math.floor(options.coordination.leaseMs / 4));
    const ownership = (this.ownership = new Ownership({
      store: store!,
      instance: this.instance,
      groups: consumers.map((c) => ({ name: c.name, startFrom: c.startFrom })),
      partitions: options.coordination.partitions,
      leaseMs: options.coordination.leaseMs,
      renewMs,
      cursors: cursors!,
      gained: (leases) => this.tailer!.gained(leases),
      lost: () => this.tailer!.lost(),
      warn: notices.warn,
    }));
    this.tailer = new Tailer({
      store: store!,
      codec,
      intake: this.intake,
      dispatcher: this.dispatcher,
      cursors: cursors!,
      ownership,
      pageSize: options.dispatch.maxBatch,
      pollMs: options.coordination.pollMs,
      reportCorrupt: this.#reportCorrupt,
      warn: notices.warn,
    });
    if (options.checkpoint.intervalMs > 0) {
      this.#cursorTimer = setInterval(() => void ownership.writeCursors(), options.checkpoint.intervalMs);
      this.#cursorTimer.unref();
    }
  }

  #cursorTimer: NodeJS.Timeout | null = null;

  /** A consumer's watermark moved: its leases take note; with checkpoint.intervalMs 0, the cursors are written now. */
  #cursorsMoved(consumer: number): void {
    this.ownership?.observe(consumer);
    if (this.options.checkpoint.intervalMs === 0) void this.ownership?.writeCursors();
  }

  /** The event's partition of the shared log. */
  #partitionOf(item: Accepted): number {
    if (item.partition < 0) item.partition = partitionOf(item.partitionKey, item.eventId, this.ownership!.partitions);
    return item.partition;
  }

  /**
   * Every accepted event handled; with a shared log, also every event stored
   * up to the head read now in the partitions this instance delivers (its own
   * events may have been stored for the log read to route, not routed from
   * memory).
   */
  async flush(): Promise<void> {
    const { intake, store, tailer } = this;
    await intake.idle();
    if (store === null || tailer === null) return;
    await tailer.reached(await store.head());
    await intake.idle();
  }

  /** Stored events; what cannot be read goes to `onCorrupt`, by default a 'warning' notice. */
  async *replay(query: EventReadQuery, onCorrupt: CorruptHandler = this.#reportCorrupt): AsyncGenerator<Event> {
    const catalog = this.options.events;
    for await (const event of readEvents(this.#needStore('replay needs a store'), this.codec, query, onCorrupt)) {
      // The bus's event catalogue upcasts an older stored version to the current one (UpcastError when it cannot).
      yield catalog?.upcast(event) ?? event;
    }
  }

  /** Audit entries; what cannot be read goes to `onCorrupt`, by default a 'warning' notice. */
  audit(query: AuditReadQuery, onCorrupt: CorruptHandler = this.#reportCorrupt): AsyncGenerator<AuditEntry> {
    return readAuditEntries(this.#needStore('the audit log needs a store'), this.codec, query, onCorrupt);
  }

  /** The filter, with dead letters that cannot be read reported as replay reports corrupt events unless it says where. */
  deadLetterFilter(filter: DeadLetterFilter): DeadLetterFilter {
    return filter.onCorrupt === undefined ? { ...filter, onCorrupt: this.#reportCorrupt } : filter;
  }

  /** Re-dispatches matching dead letters, each to the consumer that failed; resolves with how many. */
  async redrive(filter: DeadLetterFilter): Promise<number> {
    const { deadLetters, consumers, intake, dispatcher } = this;
    const byName = new Map(consumers.map((c, i) => [c.name, i]));
    const deliveries: Delivery[] = [];
    for await (const { record } of deadLetters.records(filter)) {
      const consumer = byName.get(record.consumer);
      if (consumer === undefined) {
        this.notices.warn(`dead letter for ${record.consumer} kept: no such consumer is loaded`);
        continue;
      }
      await intake.admitRestored(1);
      const item = intake.restore(record.event, record.position);
      item.outstanding = 1;
      deliveries.push({ item, consumer, attempt: record.attempts + 1, redrive: true, firstAttempt: record.attempts + 1 });
    }
    dispatcher.deliver(deliveries);
    return deliveries.length;
  }

  /**
   * Stops the engine: runs scheduled retries now, waits up to `timeoutMs` for
   * every accepted event to be handled, writes the cursors and hands the
   * leases back, aborts the signals of handlers still running, then closes
   * the pool and the store.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const { intake, dispatcher, pool, store, ownership, tailer, control } = this;
    // Nothing more is read from the shared log; what was routed is drained below.
    tailer?.stop();
    dispatcher.drainRetries();
    if (!(await settlesWithin(intake.idle(), timeoutMs))) {
      dispatcher.abandon();
      // Calls still waiting for room are refused now, or they would wait for ever (nothing is released any more).
      const refused = intake.close(new BusClosedError('emit'));
      const lost = store === null ? 'they are lost (this bus has no store)' : 'they are delivered again after a restart';
      let message = `close() gave up after ${timeoutMs} ms with ${intake.pending} events not handled by every consumer: ${lost}`;
      if (refused.events > 0) {
        message += `; ${refused.events} events waiting for room were not accepted (${refused.posted} of them posted, with nobody told)`;
      }
      this.notices.warn(message);
    }
    dispatcher.stop();
    // An append may still be in flight after a timed-out drain: its outcome is applied (receipts, the
    // cursors' groups) before the last cursors are written and the store is closed.
    await intake.settled();
    await tailer?.finished();
    if (this.#cursorTimer !== null) clearInterval(this.#cursorTimer);
    // The last cursors, then the leases go back with them, so other instances take over at once.
    await ownership?.leave();
    await stopWorkers(pool, control);
    await store?.close();
  }

  readonly #reportCorrupt: CorruptHandler = (error) => {
    this.notices.warn(error.message, error);
  };

  #needStore(what: string): EventStore {
    if (this.store === null) throw new StoreUnavailableError(`${what}: this bus runs with store { kind: 'none' }`);
    return this.store;
  }

  /**
   * Joins the shared log: takes this instance's leases and starts reading the
   * log after their cursors. What a crash (this instance's or another's) left
   * undelivered is routed before the bus is handed out, up to the head read
   * now: recovery is the same code as a takeover.
   */
  async #recover(): Promise<void> {
    const { store, ownership, tailer } = this;
    if (store !== null && ownership === null) {
      // No consumers, so no groups: one round still records the partition count in a new store, which tells
      // the groups that come later that this is not a store of the old layout to migrate.
      const { partitions, leaseMs } = this.options.coordination;
      await store.coordinate({ instance: this.instance, groups: [], partitions, leaseMs, now: Date.now(), leaving: true });
    }
    if (store === null || ownership === null || tailer === null) return;
    const head = await store.head();
    await ownership.start();
    tailer.start();
    await tailer.reached(head);
  }
}

/** Consumer specifiers as URLs a worker can import: paths resolve against the working directory. */
function toModuleUrl(specifier: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier) && !/^[a-z]:[\\/]/i.test(specifier)) return specifier;
  return pathToFileURL(isAbsolute(specifier) ? specifier : resolvePath(specifier)).href;
}

/**
 * Tells the handlers still running (given up on, or past their timeout) that
 * the bus is going, through `ctx.signal`, before their workers go; then closes
 * the control channel and the pool.
 */
async function stopWorkers(pool: Piscina, control: WorkerControl): Promise<void> {
  await control.abortHandlers(pool.threads.map((w) => w.threadId));
  control.close();
  await pool.destroy();
}

/** Whether `promise` settles within `ms` (Infinity: it is awaited however long it takes). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  if (ms === Infinity) {
    await promise;
    return true;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function reviveLoadError(error: SerializedError, urls: readonly string[]): EventrailError {
  if (error.code === 'ERR_EVENTRAIL_CONSUMER_LOAD') {
    const specifier = urls.find((u) => error.message.includes(u)) ?? '(unknown)';
    const prefix = `consumer module ${specifier}: `;
    const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return new ConsumerLoadError(specifier, message);
  }
  return new ConsumerLoadError('(worker)', error.message);
}
