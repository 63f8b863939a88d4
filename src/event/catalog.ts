/**
 * Typed event catalogues: a zod schema per event type's payload, checked at
 * emit, with TypeScript inference for `emit` and for consumers' handlers, and
 * versioned payloads whose older stored shapes are upcast on replay and on
 * delivery.
 *
 * Names: a catalogue key that is a builtin type name (`UserLoggedIn`) is that
 * builtin type; any other key is a custom type, written as serde writes it
 * where an event_type is expected (`{ Custom: 'OrderPlaced' }` in `emit`), and
 * as the plain key where a catalogue names types (`catalog.consumer`,
 * `catalog.is`).
 *
 * Where it runs: the bus's catalogue (the `events` option) validates on emit
 * and upcasts on replay, on the main thread. Workers cannot receive closures,
 * so a worker upcasts with the catalogue its consumer module imports: a
 * consumer made by `catalog.consumer({...})` carries it. Consumer modules and
 * the bus should import the same catalogue module.
 *
 * The version an event was emitted with is stored beside it (envelope.ts),
 * never in its serde-shaped fields; events stored without one are version 1.
 */
import { z } from 'zod';
import type { EventBus } from '../bus/bus.js';
import type { Receipt } from '../bus/intake.js';
import { defineConsumer, type Consumer, type ConsumerContext, type ConsumerOptions } from '../consumer.js';
import { InvalidConsumerError, type EventrailError, PayloadSchemaError, UpcastError, type ValidationIssue } from '../errors.js';
import { storedVersion } from './envelope.js';
import {
  BUILTIN_EVENT_TYPES,
  eventTypeKey,
  eventTypeName,
  type BuiltinEventType,
  type Event,
  type EventInput,
  type EventMetadata,
  type EventType,
} from './event.js';
import { checkJson, eventTypeProblem } from './schema.js';

/** A payload schema with versions: `upcast[n]` turns a version-n payload into a version n+1 one. */
export interface VersionedEvent<S extends z.ZodType = z.ZodType> {
  /** The current version (an integer ≥ 1): what emit stores and what consumers see. */
  readonly version: number;
  /** The current version's payload schema. */
  readonly schema: S;
  /** One step per older version, 1 to version - 1. Steps must return new values (delivered payloads are frozen). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly upcast: Readonly<Record<number, (payload: any) => unknown>>;
}

export type EventDefinition = z.ZodType | VersionedEvent;
export type EventDefinitions = Readonly<Record<string, EventDefinition>>;

type SchemaOf<X> = X extends VersionedEvent<infer S> ? S : X extends z.ZodType ? X : never;

/** The payload a handler sees (the current version's schema output). */
export type CatalogPayload<D extends EventDefinitions, K extends keyof D> = z.output<SchemaOf<D[K]>>;
/** The payload `emit` takes (the schema's input). */
export type CatalogPayloadInput<D extends EventDefinitions, K extends keyof D> = z.input<SchemaOf<D[K]>>;

/** The event_type of a catalogue key: a builtin name is itself, any other is `{ Custom: key }`. */
export type CatalogEventType<K extends string> = K extends BuiltinEventType ? K : { readonly Custom: K };

type Names<D> = keyof D & string;

/** An event of the catalogue's types K, as handlers and replay see it. */
export type CatalogEvent<D extends EventDefinitions, K extends Names<D> = Names<D>> = {
  [P in K]: {
    readonly event_id: string;
    readonly timestamp: string;
    readonly event_type: CatalogEventType<P>;
    readonly payload: CatalogPayload<D, P>;
    readonly metadata: EventMetadata;
  };
}[K];

/** What a catalogue-typed `emit` takes: the payload typed by the event_type. */
export type CatalogEventInput<D extends EventDefinitions, K extends Names<D> = Names<D>> = {
  [P in K]: Omit<EventInput, 'event_type' | 'payload'> & {
    event_type: CatalogEventType<P>;
    payload: CatalogPayloadInput<D, P>;
  };
}[K];

/**
 * A bus made with `createBus({ events: catalog })`: `emit`, `emitMany` and
 * `post` typed by the catalogue. A structural type (Omit drops EventBus's
 * private members), so functions that take a bus type their parameter by the
 * members they use (closeOnSignals takes `Pick<EventBus, 'close' | 'pending'>`).
 */
export type TypedEventBus<D extends EventDefinitions> = Omit<EventBus, 'emit' | 'emitMany' | 'post'> & {
  /** Validates (the catalogue's payload schema included), stores and dispatches one event. */
  emit(input: CatalogEventInput<D>): Promise<Receipt>;
  emitMany(inputs: readonly CatalogEventInput<D>[]): Promise<Receipt[]>;
  /** As EventBus.post: accepts one event without waiting for it, or returns why not. */
  post(input: CatalogEventInput<D>): EventrailError | null;
};

/**
 * What `catalog.consumer` takes: eventTypes are catalogue keys, and the
 * handler's event is typed by them; `O` names the shape of `ctx.options`, as
 * defineConsumer's type parameter does (nothing checks it).
 */
export interface CatalogConsumerDefinition<D extends EventDefinitions, K extends Names<D>, O extends object = ConsumerOptions> {
  readonly name: string;
  readonly eventTypes: readonly K[];
  /** As defineConsumer's: where a group the store has never seen starts. @default 'now' */
  readonly startFrom?: 'beginning' | 'now';
  handle(event: CatalogEvent<D, K>, ctx: ConsumerContext<O>): void | Promise<void>;
}

/** The outcome of checking a payload at emit. */
export type PayloadCheck = { readonly payload: unknown; readonly version: number } | PayloadSchemaError;

interface Entry {
  readonly name: string;
  readonly type: EventType;
  readonly version: number;
  readonly schema: z.ZodType;
  /** steps[n - 1] upcasts from version n. */
  readonly steps: ReadonlyArray<(payload: unknown) => unknown>;
}

const CATALOG_BRAND: unique symbol = Symbol.for('eventrail.catalog') as never;
/** Where a consumer made by `catalog.consumer` keeps its catalogue (read by the worker). */
export const CONSUMER_CATALOG: unique symbol = Symbol.for('eventrail.consumer.catalog') as never;

const BUILTINS: ReadonlySet<string> = new Set(BUILTIN_EVENT_TYPES);

const typeOfName = (name: string): EventType => (BUILTINS.has(name) ? (name as BuiltinEventType) : { Custom: name });

/** Payload depth allowed in a schema's output when the caller names none: emit's default limits.maxDepth. */
const OUTPUT_MAX_DEPTH = 1000;

export class EventCatalog<D extends EventDefinitions = EventDefinitions> {
  readonly [CATALOG_BRAND] = true as const;
  /** The definitions as given (for reference; the catalogue does not change after it is made). */
  readonly definitions: D;
  /** eventTypeKey → entry. */
  readonly #entries: Map<string, Entry>;
  /** True when some type has a version above 1: otherwise only an event stored by a newer catalogue needs upcast (and fails). */
  readonly #versioned: boolean;

  /** @internal use defineEvents() */
  constructor(definitions: D) {
    if (definitions === null || typeof definitions !== 'object' || Array.isArray(definitions)) {
      throw new TypeError('defineEvents() takes an object of event type names to payload schemas');
    }
    const entries = new Map<string, Entry>();
    for (const [name, def] of Object.entries(definitions)) {
      const type = typeOfName(name);
      const problem = eventTypeProblem(type);
      if (problem !== null) throw new TypeError(`defineEvents(): ${JSON.stringify(name)} is not an event type name: Custom ${problem}`);
      entries.set(eventTypeKey(type), toEntry(name, type, def));
    }
    this.definitions = definitions;
    this.#entries = entries;
    this.#versioned = [...entries.values()].some((e) => e.version > 1);
    Object.freeze(this);
  }

  /** The catalogue's type names (its keys). */
  get names(): string[] {
    return [...this.#entries.values()].map((e) => e.name);
  }

  /** The event_type of a catalogue key: `'UserLoggedIn'`, or `{ Custom: 'OrderPlaced' }`. */
  eventType<K extends Names<D>>(name: K): CatalogEventType<K> {
    const entry = this.#entries.get(eventTypeKey(typeOfName(name)));
    if (entry === undefined) throw new TypeError(`${JSON.stringify(name)} is not in this event catalogue (${this.names.join(', ')})`);
    return entry.type as CatalogEventType<K>;
  }

  /** Whether an event is of catalogue type `name`; narrows its payload's type. */
  is<K extends Names<D>>(event: Event | CatalogEvent<D>, name: K): event is CatalogEvent<D, K> {
    return eventTypeName(event.event_type) === name && eventTypeKey(event.event_type) === eventTypeKey(typeOfName(name));
  }

  /** The current version of a type (1 when unversioned or not in the catalogue). */
  versionOf(type: EventType): number {
    return this.#entries.get(eventTypeKey(type))?.version ?? 1;
  }

  /**
   * Checks a payload against its type's schema, as `emit` does. Returns the
   * payload to store (the schema's output: zod's defaults filled, unknown
   * keys of z.object dropped) and the version to store beside it, or the
   * error. Types not in the catalogue are not checked (version 1). The
   * output is what gets stored, so it is checked as JSON no deeper than
   * `maxDepth` (the bus's limits.maxDepth): a transform that returns a Date,
   * or nests deeper, fails here and not later in the writer.
   */
  check(type: EventType, payload: unknown, maxDepth: number = OUTPUT_MAX_DEPTH): PayloadCheck {
    const entry = this.#entries.get(eventTypeKey(type));
    if (entry === undefined) return { payload, version: 1 };
    const parsed = entry.schema.safeParse(payload ?? {});
    if (!parsed.success) return new PayloadSchemaError(entry.name, payloadIssues(parsed.error));
    const problem = checkJson(parsed.data, maxDepth);
    if (problem !== null) {
      return new PayloadSchemaError(entry.name, [{ path: 'payload', message: `is not JSON as the schema outputs it: ${problem}` }]);
    }
    return { payload: parsed.data, version: entry.version };
  }

  /** Whether `event` needs `upcast` (cheap: runs for every delivered event). */
  needsUpcast(event: Event): boolean {
    const stored = storedVersion(event);
    if (stored === 1 && !this.#versioned) return false;
    const entry = this.#entries.get(eventTypeKey(event.event_type));
    return entry !== undefined && stored !== entry.version;
  }

  /**
   * The event in its type's current shape: the payload passed through the
   * upcast steps from the version it was stored with, then checked against
   * the current schema. The same event when nothing is to be done. Throws
   * UpcastError when a step throws, the result does not match, or the event
   * was stored by a newer catalogue than this one.
   */
  upcast(event: Event): Event {
    if (!this.needsUpcast(event)) return event;
    const entry = this.#entries.get(eventTypeKey(event.event_type))!;
    const from = storedVersion(event);
    if (from > entry.version) {
      throw new UpcastError(entry.name, from, entry.version, 'it was stored by a newer catalogue (this one knows no downcast)');
    }
    let payload: unknown = event.payload;
    for (let v = from; v < entry.version; v++) {
      try {
        payload = entry.steps[v - 1]!(payload);
      } catch (err) {
        throw new UpcastError(entry.name, from, entry.version, `upcast[${v}] threw: ${(err as Error)?.message ?? String(err)}`, err);
      }
    }
    const parsed = entry.schema.safeParse(payload);
    if (!parsed.success) {
      const issues = payloadIssues(parsed.error).map((i) => `${i.path} ${i.message}`);
      throw new UpcastError(entry.name, from, entry.version, `the result does not match version ${entry.version}: ${issues.join('; ')}`);
    }
    return {
      event_id: event.event_id,
      timestamp: event.timestamp,
      event_type: event.event_type,
      payload: parsed.data as Event['payload'],
      metadata: event.metadata,
    };
  }

  /**
   * Declares a consumer of catalogue types (the default export of a consumer
   * module): `eventTypes` are catalogue keys, the handler's `event.payload` is
   * typed by them, and the worker hands it events upcast to their current
   * version with this catalogue.
   */
  consumer<const K extends Names<D>, O extends object = ConsumerOptions>(definition: CatalogConsumerDefinition<D, K, O>): Consumer {
    if (definition === null || typeof definition !== 'object') {
      throw new InvalidConsumerError('catalog.consumer() takes { name, eventTypes, handle }');
    }
    const { name, eventTypes, handle, startFrom } = definition;
    if (!Array.isArray(eventTypes) || eventTypes.length === 0) {
      throw new InvalidConsumerError(`consumer ${String(name)}: eventTypes must be a non-empty array of catalogue type names`);
    }
    const types = eventTypes.map((t: unknown) => {
      const entry = typeof t === 'string' ? this.#entries.get(eventTypeKey(typeOfName(t))) : undefined;
      if (entry === undefined) {
        throw new InvalidConsumerError(
          `consumer ${String(name)}: ${JSON.stringify(t)} is not in its event catalogue (${this.names.join(', ')})`,
        );
      }
      return entry.type;
    });
    const consumer = defineConsumer({ name, eventTypes: types, startFrom, handle: handle as Consumer['handle'] });
    return Object.freeze({ ...consumer, [CONSUMER_CATALOG]: this as unknown as EventCatalog });
  }
}

/** Any catalogue, whatever its definitions (what the `events` option holds). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyEventCatalog = EventCatalog<any>;

/** Declares an event catalogue: catalogue key → payload schema (or a versioned schema). */
export function defineEvents<const D extends EventDefinitions>(definitions: D): EventCatalog<D> {
  return new EventCatalog(definitions);
}

export function isEventCatalog(value: unknown): value is AnyEventCatalog {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[CATALOG_BRAND] === true;
}

/** The catalogue a consumer carries (made by `catalog.consumer`), or undefined. */
export function catalogOf(consumer: Consumer): EventCatalog | undefined {
  const catalog = (consumer as { [CONSUMER_CATALOG]?: unknown })[CONSUMER_CATALOG];
  return isEventCatalog(catalog) ? catalog : undefined;
}

function isZodSchema(value: unknown): value is z.ZodType {
  return (
    value instanceof z.ZodType ||
    (typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function')
  );
}

function toEntry(name: string, type: EventType, def: unknown): Entry {
  if (isZodSchema(def)) return { name, type, version: 1, schema: def, steps: [] };
  const what = `defineEvents(): ${name}`;
  if (def === null || typeof def !== 'object') throw new TypeError(`${what} must be a zod schema or { version, schema, upcast }`);
  const { version, schema, upcast } = def as Partial<VersionedEvent>;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > 0xffff_ffff) {
    throw new TypeError(`${what}: version must be an integer ≥ 1, got ${String(version)}`);
  }
  if (!isZodSchema(schema)) throw new TypeError(`${what}: schema must be a zod schema`);
  const steps: Array<(payload: unknown) => unknown> = [];
  for (let v = 1; v < version; v++) {
    const step = (upcast as Record<number, unknown> | undefined)?.[v];
    if (typeof step !== 'function') throw new TypeError(`${what}: upcast[${v}] must be a function from version ${v} to ${v + 1}`);
    steps.push(step as (payload: unknown) => unknown);
  }
  return { name, type, version, schema, steps };
}

/** zod's issues with their paths written as `payload.items[0].qty`, and what was expected. */
function payloadIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => {
    let path = 'payload';
    for (const key of issue.path) path += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
    return { path, message: issue.message };
  });
}
