/**
 * The public facade. `createBus` resolves the options, opens the store, starts
 * the worker pool (which loads the consumer modules), re-dispatches what a
 * crash left past the checkpoint, and returns an `EventBus` whose methods
 * check their arguments and delegate to the private engine.
 */
import { EventEmitter } from 'node:events';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { Codec } from '../codec.js';
import {
  BusClosedError,
  ConsumerLoadError,
  EventrailError,
  StoreCorruptError,
  StoreUnavailableError,
  type SerializedError,
  type WorkerCrashedError,
} from '../errors.js';
import { debugEventType, eventTypeKey, type AuditEntry, type Event, type EventInput, type EventType } from '../event/event.js';
import { readAuditEntry } from '../event/audit.js';
import { readEventJson } from '../event/json-text.js';
import { resolveOptions, type BusOptions, type ResolvedOptions } from '../options.js';
import type { ConsumerDescriptor, DescribeResult, FollowUp, WorkerInit } from '../protocol.js';
import { openStore } from '../store/open.js';
import { decodeStored, positionFromString, positionToString, type EventStore, type Position } from '../store/store.js';
import type { Accepted, CommitGroup } from './accepted.js';
import { CommitGroup as Group } from './accepted.js';
import { Checkpoints, recoveryStart } from './checkpoints.js';
import { DeadLetterBox, type DeadLetter, type DeadLetterFilter } from './dead-letters.js';
import { Dispatcher, type Delivery } from './dispatcher.js';
import { Intake, unreadableInput, type Receipt } from './intake.js';
import { BusMetrics } from './metrics.js';

/** A point in time for queries: a Date, an RFC 3339 string, or ms since the epoch. */
export type TimeBound = Date | string | number;

export interface ReplayQuery {
  /** Events whose timestamp is at or after this. */
  readonly from?: TimeBound;
  /** Events whose timestamp is before this. */
  readonly to?: TimeBound;
  readonly tenantId?: string;
  readonly types?: readonly EventType[];
  /** Only events after this position (a receipt's `position`), to resume a replay. */
  readonly after?: string;
  /** At most this many events. */
  readonly limit?: number;
  /**
   * Called for stored data that cannot be decoded (code ERR_EVENTRAIL_STORE_CORRUPT);
   * the replay goes on with the rest. Default: a 'warning' notice on the bus.
   */
  readonly onCorrupt?: (error: StoreCorruptError) => void;
}

export interface AuditQuery {
  readonly from?: TimeBound;
  readonly to?: TimeBound;
  readonly userId?: string;
  readonly tenantId?: string;
  readonly types?: readonly EventType[];
  readonly limit?: number;
  /**
   * Called for stored data that cannot be decoded (an audit block, or the
   * event an entry is made of; code ERR_EVENTRAIL_STORE_CORRUPT); the query
   * goes on with the rest. Default: a 'warning' notice on the bus.
   */
  readonly onCorrupt?: (error: StoreCorruptError) => void;
}

/** The seed's EventProducer: emit() with the source preset. */
export interface Producer {
  readonly source: string;
  emit(input: ProducerInput): Promise<Receipt>;
  emitMany(inputs: readonly ProducerInput[]): Promise<Receipt[]>;
}

export type ProducerInput = Omit<EventInput, 'metadata'> & { metadata?: Partial<EventInput['metadata']> };

export interface DeadLetters {
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** Re-dispatches matching dead letters, each to the consumer that failed; resolves with how many. */
  redrive(filter?: DeadLetterFilter): Promise<number>;
}

export interface Audit {
  query(query?: AuditQuery): AsyncIterable<AuditEntry>;
}

export interface BusEvents {
  /** A batch was lost to a worker that crashed or exited; it is being run again. */
  'worker-error': [error: WorkerCrashedError];
  /** Something went wrong that the bus worked around (a failed checkpoint write, a bad consumer metric). */
  warning: [message: string, cause?: unknown];
}

interface Engine {
  readonly options: ResolvedOptions;
  readonly store: EventStore | null;
  readonly codec: Codec;
  readonly pool: Piscina;
  readonly consumers: readonly ConsumerDescriptor[];
  readonly metrics: BusMetrics;
  readonly intake: Intake;
  readonly dispatcher: Dispatcher;
  readonly deadLetters: DeadLetterBox;
  readonly checkpoints: Checkpoints | null;
}

export class EventBus {
  readonly #engine: Engine;
  readonly #events = new EventEmitter<BusEvents>();
  #closing: Promise<void> | null = null;
  readonly audit: Audit;
  readonly deadLetters: DeadLetters;

  /** @internal use createBus() */
  constructor(engine: Engine) {
    this.#engine = engine;
    this.audit = { query: (query) => this.#auditQuery(query ?? {}) };
    this.deadLetters = {
      list: (filter) => this.#engine.deadLetters.list(this.#withCorruptReport(checkFilter(filter))),
      redrive: (filter) => this.#redrive(this.#withCorruptReport(checkFilter(filter))),
    };
  }

  /** Listens to the bus's own notices ('worker-error', 'warning'); `emit` is for events. */
  on<K extends keyof BusEvents>(name: K, listener: (...args: BusEvents[K]) => void): this {
    this.#events.on(name, listener as never);
    return this;
  }

  off<K extends keyof BusEvents>(name: K, listener: (...args: BusEvents[K]) => void): this {
    this.#events.off(name, listener as never);
    return this;
  }

  /** @internal */
  notify<K extends keyof BusEvents>(name: K, ...args: BusEvents[K]): void {
    this.#events.emit(name, ...(args as never));
  }

  /** The resolved options (frozen). */
  get options(): ResolvedOptions {
    return this.#engine.options;
  }

  /** The consumers the workers loaded, in order. */
  get consumers(): readonly ConsumerDescriptor[] {
    return this.#engine.consumers;
  }

  /** Events accepted and not yet handled by every consumer. */
  get pending(): number {
    return this.#engine.intake.pending;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  /** Validates, stores and dispatches one event; resolves once it is durable. */
  emit(input: EventInput): Promise<Receipt> {
    if (this.#closing !== null) return Promise.reject(new BusClosedError('emit'));
    return this.#engine.intake.emit(input);
  }

  /**
   * emit() of one event given as JSON text (serde's or any producer's), read
   * without losing integers: beyond 2^53 they become bigints, beyond 64 bits
   * the emit is rejected (InexactNumberError) rather than rounded.
   */
  emitJson(text: string): Promise<Receipt> {
    const input = readEventJson(text);
    return input instanceof EventrailError ? Promise.reject(input) : this.emit(input as EventInput);
  }

  /** Like emit() for several events; if any is invalid, none is accepted. */
  emitMany(inputs: readonly EventInput[]): Promise<Receipt[]> {
    if (this.#closing !== null) return Promise.reject(new BusClosedError('emit'));
    return this.#engine.intake.emitMany(inputs);
  }

  /** The seed's EventProducer: emits with `metadata.source` preset. */
  producer(source: string): Producer {
    if (typeof source !== 'string' || source.length === 0) {
      throw new TypeError(`producer(source): source must be a non-empty string, got ${JSON.stringify(source)}`);
    }
    const withSource = (input: ProducerInput): EventInput =>
      input !== null && typeof input === 'object'
        ? ({ ...input, metadata: { ...(input.metadata ?? {}), source } } as EventInput)
        : (input as EventInput);
    // Copying the input reads it: a getter or proxy that throws there is a rejected emit, as in emit() itself.
    const guarded = <T>(call: () => Promise<T>): Promise<T> => {
      try {
        return call();
      } catch (err) {
        return Promise.reject(unreadableInput(err));
      }
    };
    return Object.freeze({
      source,
      emit: (input: ProducerInput) => guarded(() => this.emit(withSource(input))),
      emitMany: (inputs: readonly ProducerInput[]) =>
        guarded(() => (Array.isArray(inputs) ? this.emitMany(inputs.map(withSource)) : this.emitMany(inputs as never))),
    });
  }

  /** Resolves once every accepted event has been handled by every consumer, follow-ups included. */
  flush(): Promise<void> {
    return this.#engine.intake.idle();
  }

  /** Stored events in store order, read page by page. */
  async *replay(query: ReplayQuery = {}): AsyncGenerator<Event> {
    const { store } = this.#engine;
    if (store === null) throw new StoreUnavailableError("replay needs a store: this bus runs with store { kind: 'none' }");
    const types = query.types === undefined ? null : new Set(query.types.map(eventTypeKey));
    const onCorrupt = query.onCorrupt ?? this.#reportCorrupt;
    let yielded = 0;
    for await (const stored of store.readEvents({
      after: query.after === undefined ? undefined : positionFromString(query.after),
      fromMs: toMs(query.from, 'from'),
      toMs: toMs(query.to, 'to'),
      tenantId: lowerId(query.tenantId),
    })) {
      if (query.limit !== undefined && yielded >= query.limit) return;
      const event = decodeStored(this.#engine.codec, stored, onCorrupt);
      if (event === null) continue;
      if (types !== null && !types.has(eventTypeKey(event.event_type))) continue;
      yielded++;
      yield event;
    }
  }

  #reportCorrupt = (error: StoreCorruptError): void => {
    this.notify('warning', error.message, error);
  };

  /** Dead letters that cannot be read are reported as replay reports corrupt events, unless the filter says where. */
  #withCorruptReport(filter: DeadLetterFilter): DeadLetterFilter {
    return filter.onCorrupt === undefined ? { ...filter, onCorrupt: this.#reportCorrupt } : filter;
  }

  /** Prometheus text exposition of this bus's metrics. */
  metrics(): Promise<string> {
    return this.#engine.metrics.text();
  }

  /** Stops intake, drains every accepted event, writes the checkpoint, closes the pool and the store. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const { intake, dispatcher, pool, store, checkpoints } = this.#engine;
    dispatcher.drainRetries();
    await intake.idle();
    dispatcher.stop();
    await checkpoints?.close();
    await pool.destroy();
    await store?.close();
  }

  async *#auditQuery(query: AuditQuery): AsyncGenerator<AuditEntry> {
    const { store, codec } = this.#engine;
    if (store === null) throw new StoreUnavailableError("the audit log needs a store: this bus runs with store { kind: 'none' }");
    const types = query.types === undefined ? null : new Set(query.types.map(debugEventType));
    const onCorrupt = query.onCorrupt ?? this.#reportCorrupt;
    let yielded = 0;
    for await (const stored of store.readAudit({ fromMs: toMs(query.from, 'from'), toMs: toMs(query.to, 'to'), tenantId: lowerId(query.tenantId), onCorrupt })) {
      if (query.limit !== undefined && yielded >= query.limit) return;
      const entry = readAuditEntry(codec, stored.bytes, positionToString(stored.position), onCorrupt);
      if (entry === null) continue;
      if (query.userId !== undefined && entry.metadata.user_id !== query.userId.toLowerCase()) continue;
      if (query.tenantId !== undefined && entry.metadata.tenant_id !== query.tenantId.toLowerCase()) continue;
      if (types !== null && !types.has(entry.event_type)) continue;
      yielded++;
      yield entry;
    }
  }

  async #redrive(filter: DeadLetterFilter): Promise<number> {
    if (this.#closing !== null) throw new BusClosedError('redrive');
    const { deadLetters, consumers, intake, dispatcher } = this.#engine;
    const byName = new Map(consumers.map((c, i) => [c.name, i]));
    const deliveries: Delivery[] = [];
    for await (const { record } of deadLetters.records(filter)) {
      const consumer = byName.get(record.consumer);
      if (consumer === undefined) {
        this.notify('warning', `dead letter for ${record.consumer} kept: no such consumer is loaded`);
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

  /** @internal */
  async recover(): Promise<number> {
    const { store, intake, dispatcher, consumers, checkpoints } = this.#engine;
    if (store === null || consumers.length === 0 || checkpoints === null) return 0;
    const instance = this.#engine.options.checkpoint.instance;
    const start = recoveryStart(await store.readCheckpoints(), instance, consumers.map((c) => c.name));
    let count = 0;
    let page: Accepted[] = [];
    const route = () => {
      if (page.length === 0) return;
      const group: CommitGroup = new Group(page.length, performance.now());
      group.lastPosition = page[page.length - 1]!.position;
      for (const item of page) item.group = group;
      checkpoints.track(group);
      dispatcher.route(page);
      page = [];
    };
    for await (const stored of store.readEvents({ after: start })) {
      // Undecodable data cannot be delivered: it is reported, and recovery goes on with the rest.
      const event = decodeStored(this.#engine.codec, stored, this.#reportCorrupt);
      if (event === null) continue;
      await intake.admitRestored(1);
      page.push(intake.restore(stored.bytes, stored.position, event));
      count++;
      if (page.length >= this.#engine.options.dispatch.maxBatch) route();
    }
    route();
    return count;
  }
}

function toMs(bound: TimeBound | undefined, name: string): number | undefined {
  if (bound === undefined) return undefined;
  const ms = bound instanceof Date ? bound.getTime() : typeof bound === 'number' ? bound : Date.parse(bound);
  if (!Number.isFinite(ms)) throw new TypeError(`${name} must be a Date, an RFC 3339 string or ms since the epoch, got ${String(bound)}`);
  return ms;
}

function checkFilter(filter: DeadLetterFilter | undefined): DeadLetterFilter {
  if (filter === undefined) return {};
  if (filter === null || typeof filter !== 'object') throw new TypeError('a dead-letter filter must be an object');
  return filter.tenantId === undefined ? filter : { ...filter, tenantId: lowerId(filter.tenantId) };
}

/** Stored uuids are lowercase (emit lowercases them), and a query may spell one in any case. */
const lowerId = (id: string | undefined): string | undefined => (typeof id === 'string' ? id.toLowerCase() : id);

/** Consumer specifiers as URLs a worker can import: paths resolve against the working directory. */
function toModuleUrl(specifier: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier) && !/^[a-z]:[\\/]/i.test(specifier)) return specifier;
  return pathToFileURL(isAbsolute(specifier) ? specifier : resolvePath(specifier)).href;
}

/** Creates a bus from an options object or the path of a JSON config file. */
export async function createBus(options?: BusOptions | string): Promise<EventBus> {
  const resolved = resolveOptions(options);
  const codec = new Codec();
  const consumerUrls = resolved.consumers.map(toModuleUrl);
  const init: WorkerInit = {
    consumers: consumerUrls,
    handlerTimeoutMs: resolved.delivery.handlerTimeoutMs,
    maxDepth: resolved.limits.maxDepth,
  };
  const pool = new Piscina({
    filename: new URL('../worker/worker.js', import.meta.url).href,
    minThreads: resolved.pool.minThreads ?? Math.min(1, resolved.pool.maxThreads),
    maxThreads: resolved.pool.maxThreads,
    concurrentTasksPerWorker: resolved.pool.concurrentTasksPerWorker,
    idleTimeout: resolved.pool.idleTimeout,
    resourceLimits: resolved.pool.resourceLimits,
    // The default, 'async': 'sync' parks an idle worker in Atomics.wait, which also stops its event loop,
    // so a consumer's background work (timers, sockets, flushes after handle resolved) would stall.
    atomics: resolved.pool.atomics,
    workerData: init,
  });
  let store: EventStore | null = null;
  try {
    const described = (await pool.run({ kind: 'describe' })) as DescribeResult;
    if (!described.ok) throw reviveLoadError(described.error, consumerUrls);
    store = await openStore(resolved.store);
    const consumers = described.consumers;
    // Notices raised while the bus is being built go nowhere: no one can listen yet.
    const ref: { bus?: EventBus } = {};
    const warn = (message: string, cause?: unknown) => ref.bus?.notify('warning', message, cause);
    const metrics = new BusMetrics({
      pending: () => intake.pending,
      poolUtilization: () => pool.utilization,
      poolThreads: () => pool.threads.length,
    });
    const checkpoints = store === null ? null : new Checkpoints(store, resolved.checkpoint.instance, consumers.map((c) => c.name), resolved.checkpoint.intervalMs, warn);
    const deadLetters = new DeadLetterBox(store, codec);
    const done = (item: Accepted) => {
      const group = item.group;
      if (group !== null) {
        if (item.poisoned) group.poisoned = true;
        group.remaining--;
        if (group.remaining === 0) checkpoints?.advance();
      }
      intake.release();
    };
    const intake: Intake = new Intake({
      options: resolved,
      store,
      codec,
      metrics,
      committed(items: Accepted[], group: CommitGroup) {
        checkpoints?.track(group);
        if (group.remaining === 0) checkpoints?.advance();
        dispatcher.route(items);
      },
    });
    const dispatcher: Dispatcher = new Dispatcher({
      pool,
      options: resolved,
      consumers,
      metrics,
      done,
      acceptFollowUps: async (parent: Accepted, consumer: ConsumerDescriptor, followUps: readonly FollowUp[]) => {
        await Promise.all(followUps.map((f) => intake.emitFollowUp(f.input, parent.eventId, consumer.name, f.seq)));
      },
      deadLetter: (d: Delivery, error: SerializedError) =>
        deadLetters.put({
          consumer: consumers[d.consumer]!.name,
          position: d.item.position!,
          event: d.item.bytes,
          error,
          attempts: d.attempt,
          failedAt: new Date().toISOString(),
          tenantId: d.item.tenantId,
        }),
      redriven: (d: Delivery) => deadLetters.remove({ consumer: consumers[d.consumer]!.name, position: d.item.position! }),
      workerError: (error) => ref.bus?.notify('worker-error', error),
      warn,
    });
    const bus = new EventBus({ options: resolved, store, codec, pool, consumers, metrics, intake, dispatcher, deadLetters, checkpoints });
    ref.bus = bus;
    await bus.recover();
    return bus;
  } catch (err) {
    await pool.destroy().catch(() => undefined);
    await store?.close().catch(() => undefined);
    throw err;
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

export type { Position };
