/**
 * The emit side of the bus: validation, encoding (once: the bytes stored are
 * the bytes dispatched), backpressure and group commit. Accepted events gather
 * into a batch for at most `dispatch.lingerMs` or `dispatch.maxBatch` events,
 * the batch is appended to the store in one transaction, and the emits of the
 * batch resolve together once it is durable.
 */
import { v5 as uuidv5 } from 'uuid';
import { NotJsonError, type Codec } from '../codec.js';
import {
  BackpressureError,
  EventTooLargeError,
  EventrailError,
  InvalidEventError,
  StoreWriteError,
} from '../errors.js';
import { eventTypeKey, type Event, type EventInput } from '../event/event.js';
import { IdSource } from '../event/ids.js';
import { completeEvent, describe, eventInputSchema, eventTypeProblem, quickParse, toIssues, type EventInputSchema, type PayloadLimits } from '../event/schema.js';
import { timestampMs } from '../event/timestamp.js';
import type { ResolvedOptions } from '../options.js';
import { positionToString, type AppendResult, type EventStore, type Position } from '../store/store.js';
import { Accepted, CommitGroup, memoryPosition } from './accepted.js';
import type { BusMetrics } from './metrics.js';
import type { EventCatalog } from '../event/catalog.js';
import { wrapEnvelope, type Envelope } from '../event/envelope.js';
import { commitChannel, emitChannel } from '../trace/channels.js';
import type { CapturedContext, TraceCapture } from '../trace/otel.js';

/** What `emit` resolves with once the event is durable. */
export interface Receipt {
  readonly event_id: string;
  /** Where the event is stored: 24 hex digits, ordered like the log. */
  readonly position: string;
  /** True when this event_id was already stored: it was not stored or delivered again. */
  readonly duplicate: boolean;
}

/**
 * A receipt whose position is made and turned into hex only when someone
 * reads it (most callers never do). It holds the position, or for store
 * `none` the commit number and index it is made of: never the event itself.
 */
class StoredReceipt implements Receipt {
  readonly event_id: string;
  readonly duplicate: boolean;
  #position: Position | null;
  readonly #commit: number;
  readonly #index: number;

  constructor(eventId: string, position: Position | null, duplicate: boolean, commit = 0, index = 0) {
    this.event_id = eventId;
    this.#position = position;
    this.duplicate = duplicate;
    this.#commit = commit;
    this.#index = index;
  }

  get position(): string {
    this.#position ??= memoryPosition(this.#commit, this.#index);
    return positionToString(this.#position);
  }

  toJSON(): { event_id: string; position: string; duplicate: boolean } {
    return { event_id: this.event_id, position: this.position, duplicate: this.duplicate };
  }
}

/**
 * An input that threw while it was read (a getter, a proxy) or encoded: emit
 * rejects it like any invalid event instead of throwing at the caller.
 */
export function unreadableInput(err: unknown): InvalidEventError {
  let reason: string;
  try {
    reason = err instanceof Error ? err.message : describe(err);
  } catch {
    reason = 'a value that cannot be described';
  }
  return new InvalidEventError([{ path: '', message: `the event could not be read: ${reason}` }]);
}

/**
 * One emitMany() call: a single promise for all its events, resolved with the
 * receipts once the last of them is committed. Its events are accepted and
 * committed in call order, so each receipt is appended in place.
 */
class ManyCall {
  readonly receipts: Receipt[] = [];
  readonly #count: number;
  readonly promise: Promise<Receipt[]>;
  #resolve!: (receipts: Receipt[]) => void;
  #reject!: (err: Error) => void;

  constructor(count: number) {
    this.#count = count;
    this.promise = new Promise<Receipt[]>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  add(receipt: Receipt): void {
    this.receipts.push(receipt);
    if (this.receipts.length === this.#count) this.#resolve(this.receipts);
  }

  /** Only the first failure counts: the promise settles once. */
  fail(err: Error): void {
    this.#reject(err);
  }
}

/** Who hears of an accepted event's commit: an emit's promise, an emitMany call, or nobody (post). */
type Resolver = ((receipt: Receipt) => void) | ManyCall | null;
type Rejecter = ((err: Error) => void) | ManyCall | null;

interface Batch {
  readonly items: Accepted[];
  /** performance.now() when its first event was accepted. */
  readonly acceptedAt: number;
  /** One each per item, in item order. */
  readonly resolvers: Resolver[];
  readonly rejecters: Rejecter[];
  timer: NodeJS.Timeout | NodeJS.Immediate | null;
}

export interface IntakeDeps {
  readonly options: ResolvedOptions;
  readonly store: EventStore | null;
  readonly codec: Codec;
  readonly metrics: BusMetrics;
  /** Committed, fresh events in commit order, with their commit group. */
  committed(items: Accepted[], group: CommitGroup): void;
  /** Trace context capture, when tracing is on and @opentelemetry/api is installed (src/trace/otel.ts). */
  readonly trace?: TraceCapture | null;
  /** Posted events (no receipt) that a failed commit lost: nobody else hears of it. */
  warn?(message: string, cause?: unknown): void;
}

export class Intake {
  readonly #deps: IntakeDeps;
  readonly #schema: EventInputSchema;
  readonly #limits: PayloadLimits;
  readonly #ids = new IdSource();
  readonly #auditTypes: Set<string>;
  readonly #maxPending: number;
  readonly #reject: boolean;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  readonly #maxEventBytes: number;
  readonly #partitionBy: ResolvedOptions['dispatch']['partitionBy'];
  #batch: Batch | null = null;
  #pending = 0;
  readonly #waiters: Array<() => void> = [];
  #commitTail: Promise<void> = Promise.resolve();
  /** Commit counter for store `none`: positions are made of it (see memoryPosition). */
  #memoryCommit = 0;
  readonly #idleWaiters: Array<() => void> = [];

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
    const { limits, backpressure, dispatch, audit } = deps.options;
    this.#limits = { maxDepth: limits.maxDepth };
    this.#schema = eventInputSchema(this.#limits);
    this.#auditTypes = new Set(audit.eventTypes.map(eventTypeKey));
    this.#maxPending = backpressure.maxPending;
    this.#reject = backpressure.onOverflow === 'reject';
    this.#maxBatch = dispatch.maxBatch;
    this.#lingerMs = dispatch.lingerMs;
    this.#maxEventBytes = limits.maxEventBytes;
    this.#partitionBy = dispatch.partitionBy;
  }

  /** Events accepted and not yet handled by every consumer. */
  get pending(): number {
    return this.#pending;
  }

  emit(input: unknown): Promise<Receipt> {
    const prepared = this.#prepare(input);
    if (prepared instanceof EventrailError) return this.#rejected(prepared);
    return this.#admit(prepared);
  }

  /** Validates every input first: one bad input rejects the call and nothing is accepted. */
  emitMany(inputs: readonly unknown[]): Promise<Receipt[]> {
    const prepared: Accepted[] = [];
    try {
      if (!Array.isArray(inputs)) {
        return this.#rejected(new InvalidEventError([{ path: '', message: 'emitMany() takes an array of events' }]));
      }
      for (let i = 0; i < inputs.length; i++) {
        const p = this.#prepare(inputs[i]);
        if (p instanceof EventrailError) {
          if (p instanceof InvalidEventError) {
            return this.#rejected(new InvalidEventError(p.issues.map((issue) => ({ ...issue, message: `[${i}] ${issue.message}` }))));
          }
          return this.#rejected(p);
        }
        prepared.push(p);
      }
    } catch (err) {
      // Reading the array itself threw (a proxy): a rejected call, not a throw.
      return this.#rejected(unreadableInput(err));
    }
    // All or nothing under 'reject' too: admitting the part that fits would deliver events whose call rejected.
    if (this.#reject && prepared.length > 0 && (this.#pending + prepared.length > this.#maxPending || this.#waiters.length > 0)) {
      return this.#rejected(new BackpressureError(this.#maxPending));
    }
    if (prepared.length === 0) return Promise.resolve([]);
    // One promise for the call, not one per event; under 'reject' the check above made room for all of them.
    const call = new ManyCall(prepared.length);
    for (const p of prepared) {
      if (this.#hasRoom()) this.#enqueue(p, call);
      else this.#waiters.push(() => this.#enqueue(p, call));
    }
    return call.promise;
  }

  /**
   * emit() without a receipt: no promise and no receipt object per event.
   * Returns null once the event is accepted (or waits for room under
   * 'wait'), else the error emit() would reject with. A commit that fails
   * later is counted in the metrics and reported to `warn`.
   */
  post(input: unknown): EventrailError | null {
    const prepared = this.#prepare(input);
    if (prepared instanceof EventrailError) return this.#refused(prepared);
    if (this.#hasRoom()) this.#enqueue(prepared, null);
    else if (this.#reject) return this.#refused(new BackpressureError(this.#maxPending));
    else this.#waiters.push(() => this.#enqueue(prepared, null));
    return null;
  }

  /**
   * Follow-up events from a consumer. They skip backpressure (waiting here could
   * deadlock: the pending events cannot finish until their follow-ups are
   * accepted) and get deterministic ids, so a retried handler does not store
   * its follow-ups twice.
   */
  emitFollowUp(input: EventInput, parentEventId: string, consumer: string, seq: number, trace: CapturedContext | null = null): Promise<Receipt> {
    const withId = input.event_id === undefined ? { ...input, event_id: uuidv5(`${consumer}/${seq}`, parentEventId) } : input;
    // The trace context is the handler's, sent by the worker: this thread's active context here is unrelated.
    const prepared = this.#prepare(withId, trace);
    if (prepared instanceof EventrailError) return this.#rejected(prepared);
    return this.#accept(prepared);
  }

  /** Re-creates the in-memory record of a stored event (recovery, redrive). */
  restore(bytes: Buffer, position: Position, decoded?: Event): Accepted {
    const event = decoded ?? this.#deps.codec.decode<Event>(bytes);
    const item = new Accepted(
      event.event_id,
      bytes,
      0,
      bytes.length,
      eventTypeKey(event.event_type),
      this.#partitionKey(event),
      event.metadata.tenant_id,
    );
    item.position = position;
    return item;
  }

  /** Counts restored events as pending, waiting for room as emit does. */
  async admitRestored(count: number): Promise<void> {
    while (this.#pending >= this.#maxPending) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#pending += count;
  }

  /** One accepted event is finished (handled, dead-lettered, rejected or a duplicate). */
  release(count = 1): void {
    this.#pending -= count;
    while (this.#waiters.length > 0 && this.#pending < this.#maxPending) this.#waiters.shift()!();
    if (this.#pending === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Commits the batch being gathered now, without waiting for the linger time. */
  commitNow(): void {
    if (this.#batch !== null) this.#commit();
  }

  /** Resolves once nothing is pending (every accepted event handled). */
  idle(): Promise<void> {
    this.commitNow();
    if (this.#pending === 0 && this.#waiters.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #rejected<T>(err: EventrailError): Promise<T> {
    return Promise.reject(this.#refused(err));
  }

  #refused(err: EventrailError): EventrailError {
    this.#deps.metrics.rejected.inc({ code: err.code });
    return err;
  }

  /** Room for one more event now; waiters go first, so waiting emits keep their order. */
  #hasRoom(): boolean {
    return this.#pending < this.#maxPending && this.#waiters.length === 0;
  }

  #admit(prepared: Accepted): Promise<Receipt> {
    if (this.#hasRoom()) return this.#accept(prepared);
    if (this.#reject) return this.#rejected(new BackpressureError(this.#maxPending));
    // Waiters are woken in order, so waiting emits keep their order.
    return new Promise<Receipt>((resolve, reject) => {
      this.#waiters.push(() => this.#accept(prepared).then(resolve, reject));
    });
  }

  /** `trace`: the trace context to store; undefined captures the caller's active one. */
  #prepare(input: unknown, trace?: CapturedContext | null): Accepted | EventrailError {
    try {
      return this.#build(input, trace);
    } catch (err) {
      return unreadableInput(err);
    }
  }

  #build(input: unknown, trace: CapturedContext | null | undefined): Accepted | EventrailError {
    let data = quickParse(input, this.#limits);
    if (data === null) {
      const parsed = this.#schema.safeParse(input);
      if (!parsed.success) return new InvalidEventError(toIssues(parsed.error));
      data = parsed.data;
    }
    // What is stored beside the event (catalogue version, trace context): see envelope.ts.
    const envelope = this.#envelope(data, trace === undefined ? (this.#deps.trace?.capture() ?? null) : trace);
    if (envelope instanceof EventrailError) return envelope;
    const draft = completeEvent(data);
    // completeEvent read a custom type's name once more: check what it read.
    const typeProblem = typeof draft.event_type === 'string' ? null : eventTypeProblem(draft.event_type);
    if (typeProblem !== null) return new InvalidEventError([{ path: 'event_type', message: `event_type ${typeProblem}` }]);
    const generatedTime = draft.timestamp === undefined;
    // Only ids the caller supplied can repeat (generated ids are fresh uuid v7s).
    const suppliedId = draft.event_id !== undefined;
    const codec = this.#deps.codec;
    let start: number;
    try {
      start = codec.encodeDraft(draft, this.#limits.maxDepth, this.#ids, this.#maxEventBytes);
    } catch (err) {
      if (err instanceof NotJsonError) return new InvalidEventError([{ path: 'payload', message: `${err.message} (it changed after validation)` }]);
      throw err;
    }
    if (start < 0) return new EventTooLargeError(`the event encodes to more than limits.maxEventBytes (${this.#maxEventBytes}) bytes`);
    // The writer generated what the draft left out: it is the complete event now.
    const event = draft as Event;
    const arena = codec.lastArena;
    const end = codec.lastEnd;
    if (end - start > this.#maxEventBytes) {
      return new EventTooLargeError(`the event encodes to ${end - start} bytes, over limits.maxEventBytes (${this.#maxEventBytes})`);
    }
    const typeKey = eventTypeKey(event.event_type);
    const item =
      envelope === null
        ? new Accepted(event.event_id, arena, start, end, typeKey, this.#partitionKey(event), event.metadata.tenant_id)
        : this.#enveloped(event, arena, start, end, typeKey, envelope);
    if (emitChannel.hasSubscribers) emitChannel.publish({ event });
    item.checkDuplicate = suppliedId;
    if (this.#deps.store !== null) {
      // For the store's time index only: a number per event that store `none` does without.
      item.timestampMs = generatedTime ? this.#ids.nowMs : timestampMs(event.timestamp);
      if (this.#auditTypes.has(typeKey)) item.auditId = this.#ids.uuid();
    }
    return item;
  }

  // --- typed event catalogue and trace context (src/event/catalog.ts, src/trace/otel.ts) ---

  /**
   * Checks the payload against the catalogue (replacing it with the schema's
   * output) and gathers what is stored beside the event: null, the common
   * case, when there is nothing (no versioned type, no active span).
   */
  #envelope(data: { event_type: Event['event_type']; payload?: unknown }, trace: CapturedContext | null): Envelope | null | EventrailError {
    let version = 1;
    const catalog: EventCatalog | undefined = this.#deps.options.events;
    if (catalog !== undefined) {
      const checked = catalog.check(data.event_type, data.payload);
      if (checked instanceof EventrailError) return checked;
      data.payload = checked.payload;
      version = checked.version;
    }
    if (version === 1 && trace === null) return null;
    return version === 1 ? trace : { v: version, ...trace };
  }

  /** An event stored with its envelope: a buffer of its own (header, envelope, the event's bytes). */
  #enveloped(event: Event, arena: Buffer, start: number, end: number, typeKey: string, envelope: Envelope): Accepted {
    const bytes = wrapEnvelope(arena, start, end, envelope);
    return new Accepted(event.event_id, bytes, 0, bytes.length, typeKey, this.#partitionKey(event), event.metadata.tenant_id);
  }

  // --- end of catalogue and trace context ---

  #partitionKey(event: Event): string | null {
    const md = event.metadata;
    switch (this.#partitionBy) {
      case 'user':
        return md.user_id ?? md.correlation_id;
      case 'tenant':
        return md.tenant_id ?? '';
      case 'correlation':
        return md.correlation_id;
      case 'none':
        return null;
    }
  }

  /** The executor of every receipt promise: one function, not a closure per emit. */
  readonly #enlist = (resolve: (receipt: Receipt) => void, reject: (err: Error) => void): void => {
    const batch = this.#batch!;
    batch.resolvers.push(resolve);
    batch.rejecters.push(reject);
  };

  #accept(prepared: Accepted): Promise<Receipt> {
    const batch = this.#gather(prepared);
    const receipt = new Promise<Receipt>(this.#enlist);
    if (batch.items.length >= this.#maxBatch) this.#commit();
    return receipt;
  }

  /** Accepts an event for an emitMany call, or for nobody (post): no promise of its own. */
  #enqueue(prepared: Accepted, call: ManyCall | null): void {
    const batch = this.#gather(prepared);
    batch.resolvers.push(call);
    batch.rejecters.push(call);
    if (batch.items.length >= this.#maxBatch) this.#commit();
  }

  #gather(prepared: Accepted): Batch {
    this.#pending++;
    let batch = this.#batch;
    if (batch === null) {
      batch = this.#batch = { items: [], acceptedAt: performance.now(), resolvers: [], rejecters: [], timer: null };
      batch.timer = this.#lingerMs === 0 ? setImmediate(() => this.#commit()) : setTimeout(() => this.#commit(), this.#lingerMs);
    }
    batch.items.push(prepared);
    return batch;
  }

  #commit(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    if (batch.timer !== null) {
      clearTimeout(batch.timer as NodeJS.Timeout);
      clearImmediate(batch.timer as NodeJS.Immediate);
    }
    const store = this.#deps.store;
    if (store === null) {
      // Nothing to wait for, and nothing stored can settle out of order: the batch goes to the dispatcher now,
      // so a worker starts on it while a synchronous burst of emits is still running (it used to wait for
      // the burst's end, like every later batch, in a microtask).
      this.#committed(batch, ++this.#memoryCommit);
      return;
    }
    const appended = store.append(batch.items);
    // Outcomes are applied in commit order, whatever order the store settles in, so lanes see commit order.
    this.#commitTail = this.#commitTail
      .then(() => appended)
      .then(
        (result) => this.#committed(batch, result),
        (err: unknown) => this.#failed(batch, err),
      );
  }

  /** A batch is durable (the store's result), or committed in memory (store `none`: the commit number). */
  #committed(batch: Batch, result: AppendResult | number): void {
    const fresh: Accepted[] = [];
    const types = new Map<string, number>();
    let duplicates = 0;
    const group = new CommitGroup(0, batch.acceptedAt);
    const items = batch.items;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const to = batch.resolvers[i]!;
      if (typeof result === 'number') {
        item.committedInMemory(result, i);
        if (to !== null) receive(to, new StoredReceipt(item.eventId, null, false, result, i));
      } else {
        const position = result.positions[i]!;
        item.position = position;
        const duplicate = result.duplicate[i] === true;
        if (to !== null) receive(to, new StoredReceipt(item.eventId, position, duplicate));
        if (duplicate) {
          duplicates++;
          continue;
        }
        group.lastPosition = position;
      }
      types.set(item.typeKey, (types.get(item.typeKey) ?? 0) + 1);
      item.group = group;
      fresh.push(item);
    }
    group.remaining = fresh.length;
    const { metrics } = this.#deps;
    if (commitChannel.hasSubscribers) {
      commitChannel.publish({ count: items.length, duplicates, durationMs: performance.now() - batch.acceptedAt });
    }
    for (const [type, n] of types) metrics.emitted.inc({ event_type: type }, n);
    if (duplicates > 0) {
      metrics.duplicates.inc(duplicates);
      this.release(duplicates);
    }
    this.#deps.committed(fresh, group);
  }

  #failed(batch: Batch, err: unknown): void {
    const error = err instanceof EventrailError ? err : new StoreWriteError((err as Error)?.message ?? String(err), err);
    this.#deps.metrics.storeErrors.inc();
    this.#deps.metrics.rejected.inc({ code: error.code }, batch.items.length);
    let unheard = 0;
    for (const reject of batch.rejecters) {
      if (reject === null) unheard++;
      else if (typeof reject === 'function') reject(error);
      else reject.fail(error);
    }
    if (unheard > 0) this.#deps.warn?.(`${unheard} posted events were not stored: ${error.message}`, error);
    this.release(batch.items.length);
  }
}

function receive(to: NonNullable<Resolver>, receipt: Receipt): void {
  if (typeof to === 'function') to(receipt);
  else to.add(receipt);
}
