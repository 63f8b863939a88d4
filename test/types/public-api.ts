/**
 * Type tests of the public API, checked by `npm run typecheck` (tsc over
 * test/): every line must compile, and every line under `@ts-expect-error`
 * must not (tsc reports an expect-error line that compiles). Nothing here
 * runs: the checks are wrapped in functions that are never called.
 */
import {
  createBus,
  defineConsumer,
  isEventrailError,
  type AuditEntry,
  type BusOptions,
  type Consumer,
  type ConsumerContext,
  type DeadLetter,
  type Event,
  type EventBus,
  type EventInput,
  type ErrorCode,
  type ErrorsByCode,
  type EventType,
  type InvalidEventError,
  type Producer,
  type Receipt,
  type ResolvedOptions,
  type WorkerCrashedError,
} from '../../src/index.js';
import { EventBus as EventBusClass } from '../../src/index.js';
import type { Equals, Expect } from './equals.js';

/** Uses a value as a T: compiles only if the value is assignable to T. */
declare function expectType<T>(value: T): void;

const input: EventInput = {
  event_type: 'UserLoggedIn',
  payload: { user_id: 'u' },
  metadata: { source: 'login_handler', user_id: null },
};

export async function options(): Promise<void> {
  await createBus();
  await createBus('./eventrail.json');
  await createBus({ store: { kind: 'none' } });
  await createBus({
    store: { kind: 'lmdb', path: './data', mapSize: 2 ** 30 },
    consumers: ['./consumers/metrics-collector.js'],
    pool: { maxThreads: 4, atomics: 'sync', resourceLimits: { maxOldGenerationSizeMb: 256 } },
    dispatch: { lanes: 8, partitionBy: 'tenant' },
    delivery: { maxAttempts: 3, backoff: { initialMs: 10 }, handlerTimeoutMs: 1000 },
    backpressure: { onOverflow: 'reject' },
    audit: { eventTypes: ['UserLoggedIn', { Custom: 'Export' }] },
    limits: { maxEventBytes: 4096 },
    checkpoint: { instance: 'pod-1' },
  });
  await createBus({ store: { kind: 'fdb', clusterFile: '/etc/foundationdb/fdb.cluster', apiVersion: 710 } });

  // @ts-expect-error a number option given as a string
  await createBus({ pool: { maxThreads: '4' } });
  // @ts-expect-error an unknown option (a misspelling)
  await createBus({ pools: { maxThreads: 4 } });
  // @ts-expect-error an unknown field inside a section
  await createBus({ dispatch: { maxBatchSize: 10 } });
  // @ts-expect-error an unknown store kind
  await createBus({ store: { kind: 'redis' } });
  // @ts-expect-error a store without its kind
  await createBus({ store: { path: './data' } });
  // @ts-expect-error an fdb option on an lmdb store
  await createBus({ store: { kind: 'lmdb', clusterFile: 'x' } });
  // @ts-expect-error a value outside a string union
  await createBus({ backpressure: { onOverflow: 'drop' } });
  // @ts-expect-error an audit type that is not an event type
  await createBus({ audit: { eventTypes: ['UserSignedUp'] } });
  // @ts-expect-error consumers is a list
  await createBus({ consumers: './consumer.js' });

  const bus = await createBus();
  // The resolved options are complete and read-only.
  expectType<number>(bus.options.pool.maxThreads);
  expectType<'wait' | 'reject'>(bus.options.backpressure.onOverflow);
  expectType<ResolvedOptions>(bus.options);
  // @ts-expect-error resolved options are read-only
  bus.options.pool.maxThreads = 2;
  // @ts-expect-error so are their lists
  bus.options.consumers.push('./x.js');
  const partial: BusOptions = {};
  expectType<BusOptions>(partial);
}

export async function emitting(bus: EventBus): Promise<void> {
  type EmitResult = Awaited<ReturnType<EventBus['emit']>>;
  type _Receipt = Expect<Equals<EmitResult, Receipt>>;
  const receipt = await bus.emit(input);
  expectType<string>(receipt.event_id);
  expectType<string>(receipt.position);
  expectType<boolean>(receipt.duplicate);
  // @ts-expect-error a receipt has no event: it is made before anyone decodes it
  expectType<unknown>(receipt.event);
  expectType<Receipt[]>(await bus.emitMany([input, input]));

  await bus.emit({ event_type: { Custom: 'WelcomeSent' }, payload: null, metadata: { source: 's' } });
  // @ts-expect-error an event type that is not in the union
  await bus.emit({ event_type: 'UserSignedUp', metadata: { source: 's' } });
  // @ts-expect-error a custom type is { Custom: name }
  await bus.emit({ event_type: { custom: 'x' }, metadata: { source: 's' } });
  // @ts-expect-error metadata is required
  await bus.emit({ event_type: 'UserLoggedIn', payload: {} });
  // @ts-expect-error metadata.source is required
  await bus.emit({ event_type: 'UserLoggedIn', metadata: { user_id: null } });
  // @ts-expect-error payload is JSON: no functions
  await bus.emit({ event_type: 'UserLoggedIn', payload: { f: () => 1 }, metadata: { source: 's' } });
  // @ts-expect-error emitMany takes a list
  await bus.emitMany(input);

  const producer: Producer = bus.producer('login_handler');
  await producer.emit({ event_type: 'UserLoggedOut', payload: {} });
  // @ts-expect-error the producer presets the source, but the type is still checked
  await producer.emit({ event_type: 'LoggedOut' });
}

export async function reading(bus: EventBus): Promise<void> {
  for await (const event of bus.replay({ from: new Date(), to: '2024-05-01', tenantId: 't', types: ['UserLoggedIn'], limit: 10 })) {
    expectType<Event>(event);
    expectType<EventType>(event.event_type);
    expectType<string | null>(event.metadata.tenant_id);
  }
  bus.replay({ after: '000000000000000000000000', onCorrupt: (error) => expectType<'ERR_EVENTRAIL_STORE_CORRUPT' | string>(error.code) });
  // @ts-expect-error replay types are event types
  bus.replay({ types: ['UserSignedUp'] });
  // @ts-expect-error a time bound is a Date, a string or a number
  bus.replay({ from: { ms: 1 } });
  for await (const entry of bus.audit.query({ userId: 'u', types: [{ Custom: 'Export' }] })) {
    expectType<AuditEntry>(entry);
    expectType<string>(entry.audit_id);
  }
  // @ts-expect-error audit queries have no position to resume from
  bus.audit.query({ after: '00' });
  const letters = await bus.deadLetters.list({ consumer: 'C', limit: 5 });
  expectType<DeadLetter[]>(letters);
  expectType<number>(letters[0]!.attempts);
  expectType<number>(await bus.deadLetters.redrive({ eventId: 'e' }));
  // @ts-expect-error dead-letter filters name a consumer by its name
  await bus.deadLetters.list({ consumer: 1 });
  expectType<string>(await bus.metrics());
  expectType<number>(bus.pending);
  expectType<readonly string[] | '*'>(bus.consumers[0]!.eventTypes);
}

export function notices(bus: EventBus): void {
  bus.on('warning', (message, cause) => {
    expectType<string>(message);
    expectType<unknown>(cause);
  });
  bus.on('worker-error', (error) => expectType<WorkerCrashedError>(error));
  const chained: EventBus = bus.off('warning', () => {});
  expectType<EventBus>(chained);
  // @ts-expect-error not a notice of the bus
  bus.on('error', () => {});
  // @ts-expect-error a warning's message is a string
  bus.on('warning', (message: number) => expectType<number>(message));
}

/** The whole public surface of the bus: a member added to the class must be added here, on purpose. */
export type PublicMembers = Expect<
  Equals<
    keyof EventBus,
    | 'audit'
    | 'deadLetters'
    | 'on'
    | 'off'
    | 'options'
    | 'consumers'
    | 'pending'
    | 'closed'
    | 'emit'
    | 'emitMany'
    | 'emitJson'
    | 'post'
    | 'producer'
    | 'flush'
    | 'replay'
    | 'metrics'
    | 'close'
  >
>;

export async function facade(bus: EventBus): Promise<void> {
  // @ts-expect-error internal: notices are raised by the engine, not by callers
  bus.notify('warning', 'x');
  // @ts-expect-error internal: recovery runs before createBus resolves
  await bus.recover();
  // @ts-expect-error createBus() is the only way to make a bus
  new EventBusClass();
  // @ts-expect-error the engine is private
  expectType<unknown>(bus.engine);
  expectType<boolean>(bus.closed);
  await bus.flush();
  await bus.close();
}

export const consumer: Consumer = defineConsumer({
  name: 'MetricsCollector',
  eventTypes: ['UserLoggedIn', { Custom: 'WelcomeSent' }],
  async handle(event, ctx) {
    expectType<Event>(event);
    expectType<ConsumerContext>(ctx);
    expectType<string>(ctx.consumer);
    expectType<number>(ctx.attempt);
    expectType<AbortSignal>(ctx.signal);
    ctx.metrics.increment('logins_total');
    ctx.metrics.increment('logins_total', 2, { tenant: 't' });
    ctx.metrics.observe('latency_ms', 1.5);
    ctx.emit({ event_type: { Custom: 'WelcomeSent' }, payload: {} });
    // @ts-expect-error counters count numbers
    ctx.metrics.increment('logins_total', '1');
    // @ts-expect-error label values are strings
    ctx.metrics.increment('logins_total', 1, { tenant: 1 });
    // @ts-expect-error observe needs a value
    ctx.metrics.observe('latency_ms');
    // @ts-expect-error follow-ups are events
    ctx.emit({ event_type: 'Nope' });
    // @ts-expect-error the event is read-only
    event.payload = null;
  },
});

export const everything = defineConsumer({ name: 'All', eventTypes: '*', handle: () => {} });

// @ts-expect-error eventTypes is '*' or a list of event types
defineConsumer({ name: 'Bad', eventTypes: ['UserSignedUp'], handle: () => {} });
// @ts-expect-error a consumer needs a handler
defineConsumer({ name: 'NoHandler', eventTypes: '*' });
// @ts-expect-error handlers get an event, not a string
defineConsumer({ name: 'Wrong', eventTypes: '*', handle: (event: string) => expectType<string>(event) });

/** Every code has its class in ErrorsByCode, and nothing else is in it. */
export type EveryCode = Expect<Equals<keyof ErrorsByCode, ErrorCode>>;

export function errors(err: unknown): void {
  if (isEventrailError(err)) expectType<string>(err.code);
  if (isEventrailError(err, 'ERR_EVENTRAIL_INVALID_EVENT')) {
    expectType<InvalidEventError>(err);
    expectType<string>(err.issues[0]!.path);
  }
  if (isEventrailError(err, 'ERR_EVENTRAIL_CONSUMER_LOAD')) expectType<string>(err.specifier);
  // @ts-expect-error not an eventrail error code
  isEventrailError(err, 'ERR_EVENTRAIL_NOPE');
  // @ts-expect-error narrowing follows the code: a backpressure error has no issues
  if (isEventrailError(err, 'ERR_EVENTRAIL_BACKPRESSURE')) expectType<unknown>(err.issues);
}
