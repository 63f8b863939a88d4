/**
 * The piscina worker entry: loads every consumer module once, then runs
 * batches. One batch is one task: the events are decoded from the transferred
 * buffer, frozen, and handed in order to the consumers that subscribe to them
 * (the consumers of one event run concurrently). Outcomes go back in one
 * result per batch.
 *
 * The worker also listens on the bus's control channel: when the bus is about
 * to terminate it, it aborts the signal of every handler still running first.
 */
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { Codec } from '../codec.js';
import { ConsumerMatcher } from '../consumer-matcher.js';
import {
  isConsumer,
  type Consumer,
  type ConsumerContext,
  type ConsumerMetrics,
  type ConsumerOptions,
  type FollowUpInput,
} from '../consumer.js';
import {
  BusClosedError,
  ConsumerLoadError,
  CorruptBatchError,
  HandlerTimeoutError,
  InvalidConsumerError,
  InvalidEventError,
  PayloadSchemaError,
  serializeError,
  type SerializedError,
} from '../errors.js';
import { deepFreeze, eventTypeKey, type Event, type EventInput } from '../event/event.js';
import { eventInputSchema, toIssues } from '../event/schema.js';
import { notAnEvent } from '../event/shape.js';
import type {
  BatchResult,
  BatchTask,
  ConsumerDescriptor,
  ControlMessage,
  DeliveryFailure,
  DescribeResult,
  FollowUp,
  MetricDelta,
  Task,
  WorkerInit,
} from '../protocol.js';
import { PROGRESS_BEATS, PROGRESS_CONSUMER, PROGRESS_EVENT, PROGRESS_SEQUENCE, PROGRESS_THREAD } from '../protocol.js';
import { catalogOf, type EventCatalog } from '../event/catalog.js';
import { envelopeOf } from '../event/envelope.js';
import { DeliveryTracer, loadOtel } from '../trace/otel.js';

const init = workerData as WorkerInit;
const codec = new Codec();
const inputSchema = eventInputSchema({ maxDepth: init.maxDepth });

interface Loaded {
  consumers: Consumer[];
  /** Each consumer's options (ctx.options), frozen once. */
  options: ConsumerOptions[];
  /** The same matching as the bus's (the dispatcher counts the deliveries each event owes with it). */
  matcher: ConsumerMatcher;
  /** The event catalogue each consumer carries (catalog.consumer), for upcasts: same index as consumers. */
  catalogs: Array<EventCatalog | undefined>;
  /** Spans around handlers: only with a tracing.setup module and @opentelemetry/api installed. */
  tracer: DeliveryTracer | null;
}

let loading: Promise<Loaded> | undefined;

async function loadConsumers(): Promise<Loaded> {
  const consumers: Consumer[] = [];
  const names = new Set<string>();
  const tracer = await loadTracing();
  for (const { url: specifier } of init.consumers) {
    let mod: { default?: unknown };
    try {
      mod = (await import(specifier)) as { default?: unknown };
    } catch (err) {
      throw new ConsumerLoadError(specifier, `could not be loaded: ${(err as Error)?.message ?? String(err)}`, err);
    }
    if (!isConsumer(mod.default)) {
      throw new ConsumerLoadError(specifier, 'has no consumer as its default export (export default defineConsumer({ ... }))');
    }
    if (names.has(mod.default.name)) {
      throw new ConsumerLoadError(
        specifier,
        `declares consumer name ${JSON.stringify(mod.default.name)}, which another module already uses`,
      );
    }
    names.add(mod.default.name);
    consumers.push(mod.default);
  }
  const matcher = new ConsumerMatcher(consumers.map((c) => ({ eventTypes: subscribedKeys(c) })));
  const options = init.consumers.map((c) => deepFreeze(c.options) as ConsumerOptions);
  return { consumers, options, matcher, catalogs: consumers.map(catalogOf), tracer };
}

const subscribedKeys = (c: Consumer): '*' | string[] => (c.eventTypes === '*' ? '*' : c.eventTypes.map(eventTypeKey));

/**
 * The tracing.setup module registers this worker's tracer provider (a worker
 * has its own OpenTelemetry globals); it is imported before any consumer.
 */
async function loadTracing(): Promise<DeliveryTracer | null> {
  const setup = init.tracingSetup;
  if (setup === undefined || setup === null) return null;
  try {
    await import(setup);
  } catch (err) {
    throw new ConsumerLoadError(setup, `(tracing.setup) could not be loaded: ${(err as Error)?.message ?? String(err)}`, err);
  }
  const api = await loadOtel();
  deliveryTracer = api === null ? null : new DeliveryTracer(api);
  return deliveryTracer;
}

/** This worker's tracer, once loaded (follow-ups read the handler's context through it). */
let deliveryTracer: DeliveryTracer | null = null;

function loaded(): Promise<Loaded> {
  loading ??= loadConsumers();
  return loading;
}

export default async function run(task: Task): Promise<DescribeResult | BatchResult> {
  if (task.kind === 'describe') return describe();
  return runBatch(task, await loaded());
}

async function describe(): Promise<DescribeResult> {
  try {
    const { consumers } = await loaded();
    const descriptors: ConsumerDescriptor[] = consumers.map((c, i) => ({
      name: c.name,
      eventTypes: subscribedKeys(c),
      module: init.consumers[i]!.url,
      startFrom: c.startFrom ?? 'now',
    }));
    return { ok: true, consumers: descriptors };
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
}

/** Sums counters and collects histogram observations for one batch. */
class MetricBuffer {
  readonly #deltas = new Map<string, MetricDelta>();

  add(kind: MetricDelta['kind'], name: string, value: number, labels: Readonly<Record<string, string>> | undefined): void {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidConsumerError('a metric name must be a non-empty string');
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new InvalidConsumerError(`metric ${name}: the value must be a finite number, got ${String(value)}`);
    }
    const labelKey = labels === undefined ? '' : JSON.stringify(labels);
    const key = `${kind}\0${name}\0${labelKey}`;
    const existing = this.#deltas.get(key);
    if (existing === undefined) {
      this.#deltas.set(key, { kind, name, labels: labels === undefined ? null : { ...labels }, values: [value] });
    } else if (kind === 'counter') {
      existing.values[0]! += value;
    } else {
      existing.values.push(value);
    }
  }

  drain(): MetricDelta[] {
    return [...this.#deltas.values()];
  }
}

/** The `ctx` of one delivery. The AbortSignal is made only when a handler asks for it. */
class DeliveryContext implements ConsumerContext {
  readonly consumer: string;
  readonly attempt: number;
  readonly options: ConsumerOptions;
  readonly metrics: ConsumerMetrics;
  #controller: AbortController | undefined;
  #seq = 0;
  readonly #event: Event;
  readonly #eventIndex: number;
  readonly #consumerIndex: number;
  readonly #followUps: FollowUp[];
  /** The consumer's event catalogue (catalog.consumer): its follow-ups are checked against it. */
  readonly #catalog: EventCatalog | undefined;

  constructor(
    consumer: string,
    consumerIndex: number,
    attempt: number,
    options: ConsumerOptions,
    event: Event,
    eventIndex: number,
    metrics: ConsumerMetrics,
    followUps: FollowUp[],
    catalog: EventCatalog | undefined,
  ) {
    this.consumer = consumer;
    this.#consumerIndex = consumerIndex;
    this.attempt = attempt;
    this.options = options;
    this.#event = event;
    this.#eventIndex = eventIndex;
    this.metrics = metrics;
    this.#followUps = followUps;
    this.#catalog = catalog;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      // A handler that starts after the bus gave up on this worker's handlers is told at once.
      if (closing !== null) this.#controller.abort(closing);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    this.#controller?.abort(reason);
  }

  emit(input: FollowUpInput): void {
    if (input === null || typeof input !== 'object') {
      throw new InvalidEventError([{ path: '', message: 'a follow-up event must be an object' }]);
    }
    const metadata = {
      source: this.consumer,
      ...(input.metadata ?? {}),
    };
    const candidate = { ...input, metadata };
    const parsed = inputSchema.safeParse(candidate);
    if (!parsed.success) throw new InvalidEventError(toIssues(parsed.error));
    const md = parsed.data.metadata;
    const followUp: EventInput = {
      ...parsed.data,
      metadata: {
        ...md,
        causation_id: md.causation_id ?? this.#event.event_id,
        correlation_id: md.correlation_id ?? this.#event.metadata.correlation_id,
      },
    } as EventInput;
    // A catalogue consumer's follow-ups are checked against its catalogue here, where the handler can catch
    // the PayloadSchemaError, and not only on the main thread, where it would fail the whole delivery.
    const catalog = this.#catalog;
    if (catalog !== undefined) {
      const checked = catalog.check(followUp.event_type, followUp.payload, init.maxDepth);
      if (checked instanceof PayloadSchemaError) throw checked;
      (followUp as { payload?: unknown }).payload = checked.payload;
    }
    // With tracing, the follow-up carries the handler span's context (the main thread cannot see it).
    const trace = deliveryTracer?.capture() ?? null;
    this.#followUps.push({ event: this.#eventIndex, consumer: this.#consumerIndex, seq: this.#seq++, input: followUp, trace });
  }
}

interface Delivery {
  consumer: number;
  attempt: number;
}

/** The contexts of the asynchronous handlers this worker is waiting for, over all its tasks. */
const running = new Set<DeliveryContext>();
/** Set once the bus asked this worker to abort its handlers: the abort reason. */
let closing: BusClosedError | null = null;

const control = new BroadcastChannel(init.control);
// The channel must not keep the worker alive: piscina decides when it ends.
control.unref();
control.onmessage = (message: unknown) => {
  const data = (message as { data?: ControlMessage }).data;
  if (data?.kind !== 'abort') return;
  closing ??= new BusClosedError('wait for the handler');
  for (const ctx of running) ctx.abort(closing);
  // Abort listeners ran synchronously; one turn of the event loop lets the handlers' own
  // continuations (an await on the signal, a cleanup write) run before the answer lets the bus
  // terminate this worker.
  setImmediate(() => control.postMessage({ kind: 'aborted', threadId } satisfies ControlMessage));
};

/** This worker's beats over all its tasks, wrapping at 32 bits (see PROGRESS_SEQUENCE). */
let beats = 0;

/** Plain writes before it are published by the atomic add: the watchdog reads the beats atomically first. */
function beat(progress: Int32Array): void {
  progress[PROGRESS_SEQUENCE] = beats = (beats + 1) | 0;
  Atomics.add(progress, PROGRESS_BEATS, 1);
}

async function runBatch(task: BatchTask, state: Loaded): Promise<BatchResult> {
  let events: Event[];
  try {
    events = codec.decodeMany<Event>(new Uint8Array(task.buffer));
    if (events.length !== task.count) {
      throw new Error(`expected ${task.count} events, decoded ${events.length}`);
    }
    // Garbled bytes can still decode, to values that are not events; a handler must never see one.
    for (let i = 0; i < events.length; i++) {
      const problem = notAnEvent(events[i]);
      if (problem !== null) throw new Error(`value ${i} is not an event: ${problem}`);
    }
  } catch (err) {
    return { corrupt: serializeError(new CorruptBatchError((err as Error).message, err)), failures: [], followUps: [], metrics: [] };
  }

  const failures: DeliveryFailure[] = [];
  const followUps: FollowUp[] = [];
  const metricBuffer = new MetricBuffer();
  const metrics: ConsumerMetrics = {
    increment: (name, value = 1, labels) => metricBuffer.add('counter', name, value, labels),
    observe: (name, value, labels) => metricBuffer.add('histogram', name, value, labels),
  };

  const plan = deliveriesOf(task, events, state);
  const progress = task.progress;
  progress[PROGRESS_THREAD] = threadId;
  beat(progress);
  for (let i = 0; i < events.length; i++) {
    const deliveries = plan(i);
    if (deliveries.length === 0) continue;
    const event = deepFreeze(events[i]!);
    // Upcast once per catalogue (consumers of one module set usually share one).
    let upcastBy: EventCatalog | undefined;
    let upcast: Event = event;
    let pending: Array<{ promise: PromiseLike<void>; ctx: DeliveryContext; consumer: number; name: string }> | undefined;
    for (const { consumer, attempt } of deliveries) {
      const def = state.consumers[consumer]!;
      const ctx = new DeliveryContext(
        def.name,
        consumer,
        attempt,
        state.options[consumer]!,
        event,
        i,
        metrics,
        followUps,
        state.catalogs[consumer],
      );
      progress[PROGRESS_EVENT] = i;
      progress[PROGRESS_CONSUMER] = consumer;
      beat(progress);
      try {
        // Typed catalogues: the consumer's catalogue hands it the current version of an older event (UpcastError fails the delivery).
        const catalog = state.catalogs[consumer];
        let seen = event;
        if (catalog !== undefined && catalog.needsUpcast(event)) {
          if (upcastBy !== catalog) {
            upcast = deepFreeze(catalog.upcast(event));
            upcastBy = catalog;
          }
          seen = upcast;
        }
        const tracer = state.tracer;
        const result =
          tracer === null
            ? def.handle(seen, ctx)
            : tracer.run(event, envelopeOf(event), def.name, attempt, ctx.signal, () => def.handle(seen, ctx));
        if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<void>).then === 'function') {
          (pending ??= []).push({ promise: result as PromiseLike<void>, ctx, consumer, name: def.name });
        }
      } catch (err) {
        failures.push({ event: i, consumer, error: serializeError(err) });
      }
    }
    if (pending !== undefined) {
      for (const p of pending) running.add(p.ctx);
      try {
        await settleAll(pending, i, failures);
      } finally {
        for (const p of pending) running.delete(p.ctx);
      }
      beat(progress);
    }
  }
  return { corrupt: null, failures, followUps, metrics: metricBuffer.drain() };
}

/**
 * Waits for the asynchronous handlers of one event, each bounded by
 * handlerTimeoutMs. One timer serves the whole group: handlers of one event
 * start together, so they share a deadline.
 */
async function settleAll(
  pending: Array<{ promise: PromiseLike<void>; ctx: DeliveryContext; consumer: number; name: string }>,
  eventIndex: number,
  failures: DeliveryFailure[],
): Promise<void> {
  const outcomes: Array<SerializedError | null | undefined> = new Array(pending.length).fill(undefined);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, init.handlerTimeoutMs);
  });
  const all = Promise.all(
    pending.map(({ promise }, k) =>
      Promise.resolve(promise).then(
        () => {
          outcomes[k] ??= null;
        },
        (err: unknown) => {
          outcomes[k] ??= serializeError(err);
        },
      ),
    ),
  );
  await Promise.race([all, timedOut]);
  clearTimeout(timer);
  pending.forEach(({ ctx, consumer, name }, k) => {
    const outcome = outcomes[k];
    if (outcome === undefined) {
      const error = new HandlerTimeoutError(name, init.handlerTimeoutMs);
      ctx.abort(error);
      failures.push({ event: eventIndex, consumer, error: error.toJSON() });
    } else if (outcome !== null) {
      failures.push({ event: eventIndex, consumer, error: outcome });
    }
  });
}

const NO_DELIVERIES: readonly Delivery[] = [];

/** For each event index, the deliveries to make, in consumer order. */
function deliveriesOf(task: BatchTask, events: readonly Event[], state: Loaded): (i: number) => readonly Delivery[] {
  if (task.targets === null) {
    const cache = new Map<string, Delivery[]>();
    return (i) => {
      const key = eventTypeKey(events[i]!.event_type);
      let list = cache.get(key);
      if (list === undefined) {
        const indexes = state.matcher.match(key);
        list = indexes.map((consumer) => ({ consumer, attempt: 1 }));
        cache.set(key, list);
      }
      return list;
    };
  }
  const perEvent = new Map<number, Delivery[]>();
  const t = task.targets;
  for (let k = 0; k + 2 < t.length; k += 3) {
    const event = t[k]!;
    const consumer = t[k + 1]!;
    if (consumer >= state.consumers.length) continue;
    const list = perEvent.get(event) ?? [];
    list.push({ consumer, attempt: t[k + 2]! });
    perEvent.set(event, list);
  }
  return (i) => perEvent.get(i) ?? NO_DELIVERIES;
}
