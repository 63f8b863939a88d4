/**
 * Consumers are modules, because a worker thread cannot receive a closure: the
 * default export of a consumer module is what `defineConsumer` returns, and
 * every worker loads every module once.
 */
import { InvalidConsumerError } from './errors.js';
import type { Event, EventInput, EventType } from './event/event.js';
import { eventTypeSchema } from './event/schema.js';

/** Follow-up events: `causation_id` is the handled event's id and `correlation_id` is inherited unless given. */
export type FollowUpInput = Omit<EventInput, 'metadata'> & {
  metadata?: Partial<EventInput['metadata']>;
};

export interface ConsumerMetrics {
  /** Adds to a counter (created on first use, aggregated on the main thread). */
  increment(name: string, value?: number, labels?: Readonly<Record<string, string>>): void;
  /** Records an observation in a histogram (created on first use). */
  observe(name: string, value: number, labels?: Readonly<Record<string, string>>): void;
}

/** A consumer's options as the bus config gives them: a frozen JSON object, `{}` when none were given. */
export type ConsumerOptions = Readonly<Record<string, unknown>>;

export interface ConsumerContext<O extends object = ConsumerOptions> {
  /** The consumer's own name. */
  readonly consumer: string;
  /** 1 on the first delivery of this event to this consumer, then 2, 3, ... on retries. */
  readonly attempt: number;
  /**
   * This consumer's `options` from its `consumers` entry (`{ module, options }`),
   * frozen; `{}` when none were given. The type parameter of defineConsumer
   * names their shape; nothing checks it: they are what the config says.
   */
  readonly options: Readonly<O>;
  /**
   * Aborted (with a HandlerTimeoutError) when the handler runs past
   * `delivery.handlerTimeoutMs`, and (with a BusClosedError) when the bus
   * stops waiting for it: `close({ timeoutMs })` ran out of time, or its
   * workers are being terminated.
   */
  readonly signal: AbortSignal;
  readonly metrics: ConsumerMetrics;
  /**
   * Emits a follow-up event through the same pipeline. Validated now: throws
   * InvalidEventError, and for a consumer made by `catalog.consumer` a
   * PayloadSchemaError when its catalogue rejects the payload (the schema's
   * output is what is emitted).
   */
  emit(input: FollowUpInput): void;
}

export type EventTypeFilter = readonly EventType[] | '*';

export interface ConsumerDefinition<O extends object = ConsumerOptions> {
  /** The consumer's name, which is also its group: instances sharing a store deliver each event to a group once. */
  readonly name: string;
  readonly eventTypes: EventTypeFilter;
  /**
   * Where a group the store has never seen starts: at the log's head when it
   * first starts (`'now'`), or at the first stored event (`'beginning'`).
   * Once the group exists, it resumes from its cursors.
   * @default 'now'
   */
  readonly startFrom?: 'beginning' | 'now';
  handle(event: Event, ctx: ConsumerContext<O>): void | Promise<void>;
}

/** The brand that marks a module's default export as a consumer, across copies of this package. */
export const CONSUMER_BRAND: unique symbol = Symbol.for('eventrail.consumer') as never;

export interface Consumer extends ConsumerDefinition {
  readonly [CONSUMER_BRAND]: true;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/**
 * Declares a consumer; use it as the default export of a consumer module.
 * `O` types `ctx.options` (e.g. `defineConsumer<{ url?: string }>({ ... })`).
 */
export function defineConsumer<O extends object = ConsumerOptions>(definition: ConsumerDefinition<O>): Consumer {
  if (definition === null || typeof definition !== 'object') {
    throw new InvalidConsumerError('defineConsumer() takes { name, eventTypes, handle }');
  }
  const { name, eventTypes, handle, startFrom = 'now' } = definition;
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new InvalidConsumerError(
      `consumer name must be 1-128 characters of letters, digits, _ . : - (starting with a letter or _), got ${JSON.stringify(name)}`,
    );
  }
  if (eventTypes !== '*') {
    if (!Array.isArray(eventTypes) || eventTypes.length === 0) {
      throw new InvalidConsumerError(`consumer ${name}: eventTypes must be '*' or a non-empty array of event types`);
    }
    for (const type of eventTypes) {
      if (!eventTypeSchema.safeParse(type).success) {
        throw new InvalidConsumerError(`consumer ${name}: ${JSON.stringify(type)} is not an event type`);
      }
    }
  }
  if (typeof handle !== 'function') throw new InvalidConsumerError(`consumer ${name}: handle must be a function`);
  if (startFrom !== 'now' && startFrom !== 'beginning') {
    throw new InvalidConsumerError(`consumer ${name}: startFrom must be 'now' or 'beginning', got ${JSON.stringify(startFrom)}`);
  }
  return Object.freeze({
    name,
    eventTypes: eventTypes === '*' ? '*' : Object.freeze([...eventTypes]),
    startFrom,
    handle: handle as ConsumerDefinition['handle'],
    [CONSUMER_BRAND]: true as const,
  });
}

export function isConsumer(value: unknown): value is Consumer {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[CONSUMER_BRAND] === true;
}
