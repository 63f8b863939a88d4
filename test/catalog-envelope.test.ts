/**
 * What is stored beside an event (catalogue version, trace context): the
 * enveloped bytes decode, with the shared codec, to the same Event (the
 * envelope hidden from its keys and JSON), back to back with plain events,
 * and a damaged envelope decodes to something the readers reject as not an
 * event rather than to a wrong event.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Codec } from '../src/codec.js';
import { envelopeOf, storedVersion, wrapEnvelope, ENVELOPE_EXT } from '../src/event/envelope.js';
import type { Event } from '../src/index.js';
import { uuid } from './helpers.js';

const event = (n: number): Event => ({
  event_id: uuid(),
  timestamp: '2026-12-04T04:00:00.123Z',
  event_type: { Custom: 'OrderPlaced' },
  payload: { n, items: [{ sku: 'A', qty: 2 }], note: 'é ✓' },
  metadata: { correlation_id: uuid(), causation_id: null, user_id: uuid(), tenant_id: null, source: 'shop' },
});

describe('event envelope', () => {
  it('round-trips the version and the trace context beside an unchanged event', () => {
    const codec = new Codec();
    const tp = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    for (const envelope of [{ v: 2 }, { v: 64 }, { v: 127 }, { v: 70000 }, { tp }, { v: 3, tp, ts: 'vendor=x,other=y' }]) {
      const e = event(1);
      const plain = codec.encode(e);
      const wrapped = wrapEnvelope(plain, 0, plain.length, envelope);
      assert.deepEqual([wrapped[0], wrapped[1]], [0xd4, ENVELOPE_EXT]);
      assert.ok(wrapped.subarray(wrapped.length - plain.length).equals(plain), 'the event record is stored unchanged');
      const back = codec.decode<Event>(wrapped);
      assert.deepEqual(back, e, 'deepStrictEqual does not see the envelope');
      assert.equal(JSON.stringify(back), JSON.stringify(e));
      assert.deepEqual(envelopeOf(back), envelope);
      assert.equal(storedVersion(back), envelope.v ?? 1);
    }
    assert.equal(envelopeOf(codec.decode<Event>(codec.encode(event(2)))), undefined, 'a plain event has none');
  });

  it('enveloped and plain events decode back to back, as in a stored block or a worker batch', () => {
    const codec = new Codec();
    const events = [event(1), event(2), event(3)];
    const parts = events.map((e, i) => {
      const bytes = codec.encode(e);
      return i === 1 ? wrapEnvelope(bytes, 0, bytes.length, { v: 5 }) : bytes;
    });
    const decoded = codec.decodeMany<Event>(Buffer.concat(parts));
    assert.deepEqual(decoded, events);
    assert.deepEqual(decoded.map(storedVersion), [1, 5, 1]);
  });

  it('a damaged envelope is not taken for an event', () => {
    const codec = new Codec();
    const bytes = codec.encode(event(1));
    const wrapped = wrapEnvelope(bytes, 0, bytes.length, { v: 2 });
    // The array of two becomes an array of one: the reader gets an array, which no reader takes for an event.
    const damaged = Buffer.from(wrapped);
    damaged[3] = 0x91;
    let value: unknown;
    try {
      value = codec.decodeMany<unknown>(damaged)[0];
    } catch {
      value = null;
    }
    assert.ok(value === null || Array.isArray(value), 'an array or a decode error, never an event');
  });
});
