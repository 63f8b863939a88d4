/**
 * Codec: JSON against msgpack with eventrail's shared record structures, per
 * event (encode, then decode, one event at a time: what a store or a
 * per-event task pays) and per batch (1024 events in one buffer: what a
 * dispatched batch pays). msgpack is written two ways: by msgpackr itself,
 * and by the bus's own event writer (`Codec.encodeEvent`, what the intake
 * uses), both read back by msgpackr. Bytes per event are recorded beside the
 * rates.
 */
import { Codec } from '../../src/codec.js';
import type { Event } from '../../src/event/event.js';
import { literalEvent } from '../literal-event.js';
import type { Scenario, Suite, SuiteContext } from '../scenario.js';

const BATCH = 1024;

interface Encoding {
  readonly id: string;
  readonly name: string;
  readonly role: 'eventrail' | 'peer';
  /** One event to bytes. */
  readonly one: (e: Event) => Uint8Array;
  readonly readOne: (bytes: Uint8Array) => Event;
  /** A batch to one buffer. */
  readonly many: (batch: readonly Event[]) => Uint8Array;
  readonly readMany: (bytes: Uint8Array) => Event[];
}

export function codecSuite(ctx: SuiteContext): Suite {
  const events: Event[] = ctx.inputs.map(literalEvent);
  const batches: Event[][] = [];
  for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH));
  const codec = new Codec();
  const text = new TextDecoder();
  const encodings: Encoding[] = [
    {
      id: 'json',
      name: 'JSON',
      role: 'peer',
      one: (e) => Buffer.from(JSON.stringify(e)),
      readOne: (b) => JSON.parse(text.decode(b)) as Event,
      many: (b) => Buffer.from(JSON.stringify(b)),
      readMany: (b) => JSON.parse(text.decode(b)) as Event[],
    },
    {
      // The views stay in the codec's arena: no copy, as the intake does with its bytes.
      id: 'msgpackr',
      name: 'msgpackr with records',
      role: 'peer',
      one: (e) => codec.encodeView(e),
      readOne: (b) => codec.decode<Event>(b),
      many: (b) => Buffer.concat(b.map((e) => codec.encodeView(e))),
      readMany: (b) => codec.decodeMany<Event>(b),
    },
    {
      id: 'event-writer',
      name: "eventrail's event writer (msgpack with records)",
      role: 'eventrail',
      one: (e) => codec.encodeEvent(e),
      readOne: (b) => codec.decode<Event>(b),
      many: (b) => Buffer.concat(b.map((e) => codec.encodeEvent(e))),
      readMany: (b) => codec.decodeMany<Event>(b),
    },
  ];
  let sink = 0;
  const perEvent = (enc: Encoding): Scenario => ({
    id: `codec.${enc.id}-event`,
    suite: 'codec',
    name: `${enc.name}, per event`,
    role: enc.role,
    events: events.length,
    run() {
      for (const e of events) sink += enc.readOne(enc.one(e)).payload === null ? 0 : 1;
    },
    extras: () => ({ bytesPerEvent: Math.round(events.reduce((n, e) => n + enc.one(e).length, 0) / events.length) }),
  });
  const perBatch = (enc: Encoding): Scenario => ({
    id: `codec.${enc.id}-batch`,
    suite: 'codec',
    name: `${enc.name}, per batch of ${BATCH}`,
    role: enc.role,
    events: events.length,
    run() {
      for (const b of batches) sink += enc.readMany(enc.many(b)).length;
    },
    extras: () => ({
      bytesPerEvent: Math.round(batches.reduce((n, b) => n + enc.many(b).length, 0) / events.length),
      checksum: sink > 0 ? 1 : 0,
    }),
  });
  return {
    scenarios: [...encodings.map(perEvent), ...encodings.map(perBatch)],
    ratios: [
      { name: 'event writer / JSON, per event', of: 'codec.event-writer-event', to: 'codec.json-event' },
      { name: 'event writer / JSON, per batch', of: 'codec.event-writer-batch', to: 'codec.json-batch' },
      { name: 'event writer / msgpackr, per event', of: 'codec.event-writer-event', to: 'codec.msgpackr-event' },
    ],
  };
}
