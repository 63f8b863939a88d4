/**
 * Type tests for typed event catalogues, checked by `npm run typecheck`
 * (never run). Each `@ts-expect-error` line must fail to compile: if the
 * inference ever lets it through, the directive itself becomes the error.
 */
import { z } from 'zod';
import {
  closeOnSignals,
  createBus,
  defineEvents,
  type CatalogEvent,
  type ConsumerContext,
  type EventBus,
  type EventrailError,
  type TypedEventBus,
} from '../../src/index.js';

const catalog = defineEvents({
  OrderPlaced: {
    version: 2,
    schema: z.object({ items: z.array(z.object({ sku: z.string(), qty: z.number() })), currency: z.string() }),
    upcast: { 1: (old: { sku: string; qty: number }) => ({ items: [old], currency: 'EUR' }) },
  },
  UserLoggedIn: z.object({ user_id: z.string(), remember: z.boolean().default(false) }),
});

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(value: T): T => value;

export async function emitIsTypedByTheCatalogue(): Promise<void> {
  const bus = await createBus({ store: { kind: 'none' }, events: catalog });
  expectType<Equal<typeof bus, TypedEventBus<typeof catalog.definitions>>>(true);
  const metadata = { source: 'shop' };

  await bus.emit({ event_type: { Custom: 'OrderPlaced' }, payload: { items: [{ sku: 'a', qty: 1 }], currency: 'EUR' }, metadata });
  // The schema's input: a field with a default may be left out.
  await bus.emit({ event_type: 'UserLoggedIn', payload: { user_id: 'u' }, metadata });
  await bus.emitMany([{ event_type: 'UserLoggedIn', payload: { user_id: 'u', remember: true }, metadata }]);

  // @ts-expect-error a custom type is written as serde writes it, { Custom: name }, not as a plain string
  await bus.emit({ event_type: 'OrderPlaced', payload: { items: [], currency: 'EUR' }, metadata });
  // @ts-expect-error the payload of OrderPlaced is typed: qty is a number
  await bus.emit({ event_type: { Custom: 'OrderPlaced' }, payload: { items: [{ sku: 'a', qty: '1' }], currency: 'EUR' }, metadata });
  // @ts-expect-error a payload of another type in the catalogue does not fit
  await bus.emit({ event_type: { Custom: 'OrderPlaced' }, payload: { user_id: 'u' }, metadata });
  // @ts-expect-error UserLoggedIn requires user_id
  await bus.emit({ event_type: 'UserLoggedIn', payload: {}, metadata });
  // @ts-expect-error a type not in the catalogue
  await bus.emit({ event_type: { Custom: 'Unknown' }, payload: {}, metadata });
  // @ts-expect-error the payload is required
  await bus.emit({ event_type: 'UserLoggedIn', metadata });
  // @ts-expect-error emitMany checks every element
  await bus.emitMany([{ event_type: 'UserLoggedIn', payload: { user_id: 1 }, metadata }]);

  // Without a catalogue, createBus gives the plain, untyped bus.
  const plain = await createBus({ store: { kind: 'none' } });
  expectType<Equal<typeof plain, EventBus>>(true);
  await plain.emit({ event_type: { Custom: 'Anything' }, payload: { any: 'thing' }, metadata });
}

export const orders = catalog.consumer({
  name: 'Orders',
  eventTypes: ['OrderPlaced'],
  handle(event) {
    // The current version's output type, not the stored one.
    expectType<Equal<typeof event.payload, { items: { sku: string; qty: number }[]; currency: string }>>(true);
    expectType<Equal<typeof event.event_type, { readonly Custom: 'OrderPlaced' }>>(true);
    // @ts-expect-error version 1's field is gone from the current shape
    void event.payload.sku;
  },
});

export const logins = catalog.consumer({
  name: 'Logins',
  eventTypes: ['UserLoggedIn'],
  handle(event) {
    const id: string = event.payload.user_id;
    // The schema's output: the default is filled, so remember is a boolean, never undefined.
    const remember: boolean = event.payload.remember;
    void id;
    void remember;
    expectType<Equal<typeof event.event_type, 'UserLoggedIn'>>(true);
    // @ts-expect-error not a field of UserLoggedIn
    void event.payload.items;
  },
});

export const both = catalog.consumer({
  name: 'Both',
  eventTypes: ['UserLoggedIn', 'OrderPlaced'],
  handle(event) {
    // A union: narrowed by the builtin name, or by catalog.is for a custom type.
    if (event.event_type === 'UserLoggedIn') {
      void event.payload.user_id;
    }
    if (catalog.is(event, 'OrderPlaced')) {
      void event.payload.currency;
      // @ts-expect-error narrowed to OrderPlaced
      void event.payload.user_id;
    }
    // @ts-expect-error without narrowing, user_id is not on every member
    void event.payload.user_id;
  },
});

// @ts-expect-error eventTypes are catalogue keys
catalog.consumer({ name: 'Bad', eventTypes: ['SessionCreated'], handle() {} });

export function catalogEventType(event: CatalogEvent<typeof catalog.definitions, 'OrderPlaced'>): string {
  return event.payload.currency;
}

export async function replayNarrowsWithIs(): Promise<void> {
  const bus = await createBus({ store: { kind: 'none' }, events: catalog });
  for await (const event of bus.replay()) {
    // Replay yields Event (the log may hold types the catalogue does not name): catalog.is narrows it.
    if (catalog.is(event, 'OrderPlaced')) {
      const currency: string = event.payload.currency;
      void currency;
    }
    // @ts-expect-error an unnarrowed replayed event's payload is any JSON value
    void event.payload.currency;
  }
}

export async function aTypedBusIsABusToCloseOnSignals(): Promise<void> {
  // TypedEventBus is structural (Omit drops EventBus's private members): closeOnSignals takes it all the same.
  const stop = closeOnSignals(await createBus({ store: { kind: 'none' }, events: catalog }), { exit: false });
  stop();
  closeOnSignals(await createBus({ store: { kind: 'none' } }))();
  // @ts-expect-error not a bus
  closeOnSignals({ pending: 0 });
}

export async function postIsTypedByTheCatalogue(): Promise<void> {
  const bus = await createBus({ store: { kind: 'none' }, events: catalog });
  const metadata = { source: 'shop' };
  const outcome = bus.post({ event_type: 'UserLoggedIn', payload: { user_id: 'u' }, metadata });
  expectType<Equal<typeof outcome, EventrailError | null>>(true);
  void outcome;
  // @ts-expect-error the payload of post is typed by the catalogue too
  bus.post({ event_type: 'UserLoggedIn', payload: { user_id: 1 }, metadata });
  // @ts-expect-error a type not in the catalogue
  bus.post({ event_type: { Custom: 'Unknown' }, payload: {}, metadata });
}

interface MailerOptions {
  readonly from: string;
  readonly retries?: number;
}

// ctx.options typed by a type argument, as with defineConsumer<O>.
export const mailer = catalog.consumer<'UserLoggedIn', MailerOptions>({
  name: 'Mailer',
  eventTypes: ['UserLoggedIn'],
  handle(event, ctx) {
    expectType<Equal<typeof ctx.options, Readonly<MailerOptions>>>(true);
    const from: string = ctx.options.from;
    void from;
    void event.payload.user_id;
    // @ts-expect-error not an option of the Mailer
    void ctx.options.to;
  },
});

// Or inferred from the annotated context.
export const mailerToo = catalog.consumer({
  name: 'MailerToo',
  eventTypes: ['UserLoggedIn'],
  handle(event, ctx: ConsumerContext<MailerOptions>) {
    const retries: number | undefined = ctx.options.retries;
    void retries;
    void event.payload.user_id;
  },
});

// Without one, ctx.options is the plain record.
export const plainOptions = catalog.consumer({
  name: 'PlainOptions',
  eventTypes: ['UserLoggedIn'],
  handle(_event, ctx) {
    expectType<Equal<typeof ctx.options, Readonly<Readonly<Record<string, unknown>>>>>(true);
    void ctx.options;
  },
});
