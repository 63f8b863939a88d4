/**
 * The public facade. `createBus` resolves the options and starts the private
 * engine (bus/engine.ts), which is fully built and has recovered before the
 * `EventBus` is made; the bus's methods check their arguments and delegate to
 * the engine held in a `#private` field.
 */
import { BusClosedError, EventrailError, type StoreCorruptError } from '../errors.js';
import type { AuditEntry, Event, EventInput, EventType } from '../event/event.js';
import { resolveOptions, type BusOptions, type ResolvedOptions } from '../options.js';
import type { ConsumerDescriptor } from '../protocol.js';
import { positionFromString } from '../store/store.js';
import type { DeadLetter, DeadLetterFilter } from './dead-letters.js';
import { Engine } from './engine.js';
import { unreadableInput, type Receipt } from './intake.js';
import { Notices, type BusEvents } from './notices.js';
import type { EventDefinitions, EventCatalog, TypedEventBus } from '../event/catalog.js';

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

/** Set once, by the class's static block: the only way to make an EventBus is createBus(). */
let open: (engine: Engine) => EventBus;

export class EventBus {
  readonly #engine: Engine;
  #closing: Promise<void> | null = null;
  readonly audit: Audit;
  readonly deadLetters: DeadLetters;

  static {
    open = (engine) => new EventBus(engine);
  }

  private constructor(engine: Engine) {
    this.#engine = engine;
    this.audit = { query: (query) => this.#auditQuery(query ?? {}) };
    this.deadLetters = {
      list: (filter) => this.#engine.deadLetters.list(this.#engine.deadLetterFilter(checkFilter(filter))),
      redrive: (filter) => this.#redrive(checkFilter(filter)),
    };
  }

  /** Listens to the bus's own notices ('worker-error', 'warning'); `emit` is for events. */
  on<K extends keyof BusEvents>(name: K, listener: (...args: BusEvents[K]) => void): this {
    this.#engine.notices.on(name, listener);
    return this;
  }

  off<K extends keyof BusEvents>(name: K, listener: (...args: BusEvents[K]) => void): this {
    this.#engine.notices.off(name, listener);
    return this;
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

  /** Like emit() for several events; if any is invalid, none is accepted. */
  emitMany(inputs: readonly EventInput[]): Promise<Receipt[]> {
    if (this.#closing !== null) return Promise.reject(new BusClosedError('emit'));
    return this.#engine.intake.emitMany(inputs);
  }

  /**
   * emit() of one event given as JSON text (serde's or any producer's), read
   * without losing integers: beyond 2^53 they become bigints, beyond 64 bits
   * the emit is rejected (InexactNumberError) rather than rounded.
   */
  emitJson(text: string): Promise<Receipt> {
    if (this.#closing !== null) return Promise.reject(new BusClosedError('emit'));
    return this.#engine.intake.emitJson(text);
  }

  /**
   * Like emit() without a receipt, for producers that do not await each
   * event: no promise and no receipt per event. Returns null once the event
   * is accepted (under backpressure 'wait' it is queued until there is room),
   * else the error emit() would reject with. A store write that fails later
   * is reported as a 'warning' notice; `flush()` waits for posted events too.
   */
  post(input: EventInput): EventrailError | null {
    if (this.#closing !== null) return new BusClosedError('emit');
    return this.#engine.intake.post(input);
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

  /**
   * Resolves once every accepted event has been handled by every consumer,
   * follow-ups included. On a store shared with other instances: once every
   * event stored so far that this instance delivers (its leases' partitions)
   * is handled; an event it accepted that another instance delivers is not
   * waited for.
   */
  flush(): Promise<void> {
    return this.#engine.flush();
  }

  /** Stored events in store order, read page by page. */
  async *replay(query: ReplayQuery = {}): AsyncGenerator<Event> {
    const readQuery = {
      after: query.after === undefined ? undefined : positionFromString(query.after),
      fromMs: toMs(query.from, 'from'),
      toMs: toMs(query.to, 'to'),
      tenantId: query.tenantId,
      types: query.types,
      limit: query.limit,
    };
    yield* this.#engine.replay(readQuery, query.onCorrupt);
  }

  /** Prometheus text exposition of this bus's metrics. */
  metrics(): Promise<string> {
    return this.#engine.metrics.text();
  }

  /**
   * Stops intake, drains every accepted event, writes the cursors and hands
   * the leases back, closes the pool and the store. With `timeoutMs`, stops waiting for the drain
   * after that long: handlers still running see `ctx.signal` abort, and the
   * events not yet handled by every consumer stay past the cursors, so the
   * next owner of their partitions delivers them again (a 'warning' notice says how many). Calling
   * close() again returns the first call's promise.
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.#closing === null) {
      let timeoutMs: number;
      try {
        timeoutMs = closeTimeout(options);
      } catch (err) {
        return Promise.reject(err);
      }
      this.#closing = this.#engine.shutdown(timeoutMs);
    }
    return this.#closing;
  }

  async *#auditQuery(query: AuditQuery): AsyncGenerator<AuditEntry> {
    const readQuery = {
      fromMs: toMs(query.from, 'from'),
      toMs: toMs(query.to, 'to'),
      tenantId: query.tenantId,
      userId: query.userId,
      types: query.types,
      limit: query.limit,
    };
    yield* this.#engine.audit(readQuery, query.onCorrupt);
  }

  #redrive(filter: DeadLetterFilter): Promise<number> {
    if (this.#closing !== null) return Promise.reject(new BusClosedError('redrive'));
    return this.#engine.redrive(this.#engine.deadLetterFilter(filter));
  }
}

function toMs(bound: TimeBound | undefined, name: string): number | undefined {
  if (bound === undefined) return undefined;
  const ms = bound instanceof Date ? bound.getTime() : typeof bound === 'number' ? bound : Date.parse(bound);
  if (!Number.isFinite(ms)) throw new TypeError(`${name} must be a Date, an RFC 3339 string or ms since the epoch, got ${String(bound)}`);
  return ms;
}

export interface CloseOptions {
  /**
   * How long close() waits for accepted events to be handled before it gives
   * up on them (default: no limit, it drains everything).
   */
  readonly timeoutMs?: number;
}

function closeTimeout(options: CloseOptions | undefined): number {
  const timeoutMs = options?.timeoutMs;
  if (timeoutMs === undefined) return Infinity;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))
    throw new TypeError(`close({ timeoutMs }): timeoutMs must be a number ≥ 0, got ${String(timeoutMs)}`);
  return timeoutMs;
}

function checkFilter(filter: DeadLetterFilter | undefined): DeadLetterFilter {
  if (filter === undefined) return {};
  if (filter === null || typeof filter !== 'object') throw new TypeError('a dead-letter filter must be an object');
  return filter.tenantId === undefined ? filter : { ...filter, tenantId: lowerId(filter.tenantId) };
}

/** Stored uuids are lowercase (emit lowercases them), and a query may spell one in any case. */
const lowerId = (id: string | undefined): string | undefined => (typeof id === 'string' ? id.toLowerCase() : id);

/** Creates a bus from an options object or the path of a JSON config file. */
export async function createBus<D extends EventDefinitions>(options: BusOptions & { events: EventCatalog<D> }): Promise<TypedEventBus<D>>;
export async function createBus(options?: BusOptions | string): Promise<EventBus>;
export async function createBus(options?: BusOptions | string): Promise<EventBus> {
  return open(await Engine.start(resolveOptions(options), new Notices()));
}
