/**
 * The emit side of the bus: validation, encoding (once: the bytes stored are
 * the bytes dispatched) and backpressure. Accepted events go on to group
 * commit (group-commit.ts), and the emits of a batch resolve together once it
 * is durable.
 */
import { v5 as uuidv5 } from 'uuid';
import { NotJsonError, type Codec } from '../codec.js';
import { BackpressureError, BusClosedError, EventTooLargeError, EventrailError, InvalidEventError } from '../errors.js';
import { eventTypeKey, type Event, type EventInput } from '../event/event.js';
import { IdSource } from '../event/ids.js';
import { readEventJson } from '../event/json-text.js';
import {
  completeEvent,
  describe,
  eventInputSchema,
  eventTypeProblem,
  quickParse,
  toIssues,
  type EventInputSchema,
  type PayloadLimits,
} from '../event/schema.js';
import { timestampMs } from '../event/timestamp.js';
import type { ResolvedOptions } from '../options.js';
import type { Position } from '../store/store.js';
import { Accepted } from './accepted.js';
import { GroupCommit, type CommitDeps } from './group-commit.js';
import { envelopeOf } from './envelope-step.js';
import { wrapEnvelope, type Envelope } from '../event/envelope.js';
import { ManyCall, type Receipt } from './receipt.js';
import { emitChannel } from '../trace/channels.js';
import type { CapturedContext, TraceCapture } from '../trace/otel.js';

export type { Receipt } from './receipt.js';

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

/** A call waiting for room under 'wait', or a restored event waiting to be counted. */
interface Waiter {
  /** There is room now: accept the event. */
  readonly admit: () => void;
  /** The bus closed before there was room: the caller hears of it (null: a post, nobody to tell). */
  readonly refuse: ((err: Error) => void) | null;
  /** Counted in the rejected-emits metric when refused (a restored event is not an emit). */
  readonly emitted: boolean;
}

/** What close() refused of the events still waiting for room. */
export interface Refused {
  /** Waiting emit/emitMany/post events, each counted in the rejected-emits metric. */
  readonly events: number;
  /** Of those, the posted ones: nobody else hears that they were not accepted. */
  readonly posted: number;
}

export interface IntakeDeps extends CommitDeps {
  readonly options: ResolvedOptions;
  readonly codec: Codec;
  /** Trace context capture, when tracing is on and @opentelemetry/api is installed (src/trace/otel.ts). */
  readonly trace?: TraceCapture | null;
}

export class Intake {
  readonly #deps: IntakeDeps;
  readonly #schema: EventInputSchema;
  readonly #limits: PayloadLimits;
  readonly #ids = new IdSource();
  readonly #auditTypes: Set<string>;
  readonly #maxPending: number;
  readonly #reject: boolean;
  readonly #maxEventBytes: number;
  readonly #partitionBy: ResolvedOptions['dispatch']['partitionBy'];
  readonly #commits: GroupCommit;
  #pending = 0;
  readonly #waiters: Waiter[] = [];
  readonly #idleWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  #closed: BusClosedError | null = null;
  /**
   * The complete event of each item built while `eventrail:emit` had
   * subscribers: it is announced once accepted (#accept, #enqueue), not when
   * built, since an event built may still be refused (emitMany's all or
   * nothing, backpressure, close).
   */
  readonly #toAnnounce = new WeakMap<Accepted, Event>();

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
    const { limits, backpressure, dispatch, audit } = deps.options;
    this.#limits = { maxDepth: limits.maxDepth };
    this.#schema = eventInputSchema(this.#limits);
    this.#auditTypes = new Set(audit.eventTypes.map(eventTypeKey));
    this.#maxPending = backpressure.maxPending;
    this.#reject = backpressure.onOverflow === 'reject';
    this.#maxEventBytes = limits.maxEventBytes;
    this.#partitionBy = dispatch.partitionBy;
    this.#commits = new GroupCommit(deps, dispatch.maxBatch, dispatch.lingerMs, (count) => this.release(count));
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

  /** emit() of JSON text: text that cannot be read exactly is refused (and counted) as an invalid input is. */
  emitJson(text: string): Promise<Receipt> {
    const input = readEventJson(text);
    return input instanceof EventrailError ? this.#rejected(input) : this.emit(input);
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
      else this.#waiters.push({ admit: () => this.#enqueue(p, call), refuse: (err) => call.fail(err), emitted: true });
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
    else this.#waiters.push({ admit: () => this.#enqueue(prepared, null), refuse: null, emitted: true });
    return null;
  }

  /**
   * Follow-up events from a consumer. They skip backpressure (waiting here could
   * deadlock: the pending events cannot finish until their follow-ups are
   * accepted) and get deterministic ids, so a retried handler does not store
   * its follow-ups twice.
   */
  emitFollowUp(
    input: EventInput,
    parentEventId: string,
    consumer: string,
    seq: number,
    trace: CapturedContext | null = null,
  ): Promise<Receipt> {
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

  /** Counts restored events as pending, waiting for room as emit does; rejects with BusClosedError once closed. */
  async admitRestored(count: number): Promise<void> {
    while (this.#pending >= this.#maxPending) {
      if (this.#closed !== null) throw this.#closed;
      await new Promise<void>((resolve, reject) => this.#waiters.push({ admit: resolve, refuse: reject, emitted: false }));
    }
    this.#pending += count;
  }

  /** One accepted event is finished (handled, dead-lettered, rejected or a duplicate). */
  release(count = 1): void {
    this.#pending -= count;
    while (this.#waiters.length > 0 && this.#pending < this.#maxPending) this.#waiters.shift()!.admit();
    if (this.#pending === 0) for (const waiter of this.#idleWaiters.splice(0)) waiter.resolve();
  }

  /** Commits the batch being gathered now, without waiting for the linger time. */
  commitNow(): void {
    this.#commits.commitNow();
  }

  /**
   * Resolves once nothing is pending (every accepted event handled). Rejects
   * with BusClosedError if close() gives up first: what it waited for will
   * not be handled by this bus, and resolving would say it was.
   */
  idle(): Promise<void> {
    this.commitNow();
    if (this.#pending === 0 && this.#waiters.length === 0) return Promise.resolve();
    if (this.#closed !== null) return Promise.reject(new BusClosedError('flush'));
    return new Promise((resolve, reject) => this.#idleWaiters.push({ resolve, reject }));
  }

  /**
   * close() gave up draining: nothing waiting for room is accepted any more.
   * Waiting emit/emitMany calls and restored events reject with `err`,
   * waiting posts are dropped (counted, for the caller's warning), idle()
   * waiters (flush) reject with a BusClosedError of their own. The events
   * already accepted stay pending.
   */
  close(err: BusClosedError): Refused {
    this.#closed = err;
    let events = 0;
    let posted = 0;
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.emitted) events++;
      if (waiter.refuse === null) posted++;
      else waiter.refuse(err);
    }
    if (events > 0) this.#deps.metrics.rejected.inc({ code: err.code }, events);
    if (this.#idleWaiters.length > 0) {
      const flushErr = new BusClosedError('flush');
      for (const waiter of this.#idleWaiters.splice(0)) waiter.reject(flushErr);
    }
    return { events, posted };
  }

  /** Resolves once every append started so far has settled (the store may be closed then). */
  settled(): Promise<void> {
    return this.#commits.settled();
  }

  /** Appends started whose outcome is not applied yet. */
  get appendsInFlight(): number {
    return this.#commits.inFlight;
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
      this.#waiters.push({ admit: () => this.#accept(prepared).then(resolve, reject), refuse: reject, emitted: true });
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
    // What is stored beside the event (catalogue version, trace context): see envelope-step.ts.
    const envelope = envelopeOf(this.#deps.options, data, trace === undefined ? (this.#deps.trace?.capture() ?? null) : trace);
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
      if (err instanceof NotJsonError)
        return new InvalidEventError([{ path: 'payload', message: `${err.message} (it changed after validation)` }]);
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
    if (emitChannel.hasSubscribers) this.#toAnnounce.set(item, event);
    item.checkDuplicate = suppliedId;
    if (this.#deps.store !== null) {
      // For the store's time index only: a number per event that store `none` does without.
      item.timestampMs = generatedTime ? this.#ids.nowMs : timestampMs(event.timestamp);
      if (this.#auditTypes.has(typeKey)) item.auditId = this.#ids.uuid();
    }
    return item;
  }

  /** An event stored with its envelope: a buffer of its own (header, envelope, the event's bytes). */
  #enveloped(event: Event, arena: Buffer, start: number, end: number, typeKey: string, envelope: Envelope): Accepted {
    const bytes = wrapEnvelope(arena, start, end, envelope);
    return new Accepted(event.event_id, bytes, 0, bytes.length, typeKey, this.#partitionKey(event), event.metadata.tenant_id);
  }

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

  #accept(prepared: Accepted): Promise<Receipt> {
    if (emitChannel.hasSubscribers) this.#announce(prepared);
    this.#pending++;
    return this.#commits.accept(prepared);
  }

  /** Accepts an event for an emitMany call, or for nobody (post): no promise of its own. */
  #enqueue(prepared: Accepted, call: ManyCall | null): void {
    if (emitChannel.hasSubscribers) this.#announce(prepared);
    this.#pending++;
    this.#commits.enqueue(prepared, call);
  }

  #announce(prepared: Accepted): void {
    const event = this.#toAnnounce.get(prepared);
    if (event !== undefined) emitChannel.publish({ event });
  }
}
