/**
 * Codec: JSON against msgpackr with eventrail's shared record structures, per
 * event (encode, then decode, one event at a time: what a store or a
 * per-event task pays) and per batch (1024 events in one buffer: what a
 * dispatched batch pays). Bytes per event are recorded beside the rates.
 */
import { Codec } from '../../codec.js';
import type { Event } from '../../event/event.js';
import { literalEvent } from '../literal-event.js';
import type { Scenario, SuiteContext, Suite } from '../scenario.js';

const BATCH = 1024;

export function codecSuite(ctx: SuiteContext): Suite {
  const events: Event[] = ctx.inputs.map(literalEvent);
  const batches: Event[][] = [];
  for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH));
  const codec = new Codec();
  let sink = 0;
  const bytesPerEvent = (bytes: number) => ({ bytesPerEvent: Math.round(bytes / events.length) });

  const jsonPerEvent: Scenario = {
    id: 'codec.json-event',
    suite: 'codec',
    name: 'JSON, per event',
    role: 'peer',
    events: events.length,
    run() {
      for (const e of events) sink += (JSON.parse(Buffer.from(JSON.stringify(e)).toString()) as Event).payload === null ? 0 : 1;
    },
    extras: () => bytesPerEvent(events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0)),
  };
  const msgpackPerEvent: Scenario = {
    id: 'codec.msgpackr-event',
    suite: 'codec',
    name: 'msgpackr with records, per event',
    role: 'eventrail',
    events: events.length,
    run() {
      // encodeView: the bytes stay in the codec's arena, as the intake encodes events.
      for (const e of events) sink += codec.decode<Event>(codec.encodeView(e)).payload === null ? 0 : 1;
    },
    extras: () => bytesPerEvent(events.reduce((n, e) => n + codec.encode(e).length, 0)),
  };
  const jsonPerBatch: Scenario = {
    id: 'codec.json-batch',
    suite: 'codec',
    name: `JSON, per batch of ${BATCH}`,
    role: 'peer',
    events: events.length,
    run() {
      for (const b of batches) sink += (JSON.parse(Buffer.from(JSON.stringify(b)).toString()) as Event[]).length;
    },
    extras: () => bytesPerEvent(batches.reduce((n, b) => n + Buffer.byteLength(JSON.stringify(b)), 0)),
  };
  // As the bus does it: each event encoded once into the codec's arena, the batch copied into one buffer it owns.
  const packBatch = (b: Event[]) => Buffer.concat(b.map((e) => codec.encodeView(e)));
  const msgpackPerBatch: Scenario = {
    id: 'codec.msgpackr-batch',
    suite: 'codec',
    name: `msgpackr with records, per batch of ${BATCH}`,
    role: 'eventrail',
    events: events.length,
    run() {
      for (const b of batches) sink += codec.decodeMany<Event>(packBatch(b)).length;
    },
    extras: () => ({ ...bytesPerEvent(batches.reduce((n, b) => n + packBatch(b).length, 0)), checksum: sink > 0 ? 1 : 0 }),
  };
  return {
    scenarios: [jsonPerEvent, msgpackPerEvent, jsonPerBatch, msgpackPerBatch],
    ratios: [
      { name: 'msgpackr / JSON, per event', of: 'codec.msgpackr-event', to: 'codec.json-event' },
      { name: 'msgpackr / JSON, per batch', of: 'codec.msgpackr-batch', to: 'codec.json-batch' },
    ],
  };
}
