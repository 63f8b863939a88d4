import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Codec, type EventDraft } from '../src/codec.js';
import { randomUUID } from 'node:crypto';
import { IdSource, generatedIdTime } from '../src/event/ids.js';
import type { Event } from '../src/index.js';

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ minLength: 80, maxLength: 400 }),
  fc.string({ unit: 'grapheme', minLength: 20, maxLength: 200 }),
  fc.constant('x'.repeat(70_000)),
);
const numbers = fc.oneof(
  fc.integer({ min: -200, max: 300 }),
  fc.constantFrom(
    0x3f,
    0x40,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x10000,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    -(2 ** 31),
    -(2 ** 31) - 1,
    -0x8000,
    -0x8001,
    -0x81,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    0.5,
    -1.25,
    1e300,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const json = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), numbers),
  fc.array(numbers, { maxLength: 20 }),
  fc.array(fc.constant(1), { minLength: 16, maxLength: 70_000 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.boolean(), { minKeys: 16, maxKeys: 40 }),
);
const uuid = fc.uuid();
const event: fc.Arbitrary<Event> = fc.record({
  event_id: uuid,
  timestamp: fc.constantFrom('2026-11-28T16:24:56.123Z', '2026-11-28T16:24:56Z'),
  event_type: fc.oneof(
    fc.constantFrom('UserLoggedIn' as const, 'WorkflowStateChanged' as const),
    text.map((Custom) => ({ Custom })),
  ),
  // Objects holding a key __proto__ are written in a form of their own (null-prototype on decode): test/serde-accepts.
  payload: json.filter((v) => !JSON.stringify(v).includes('"__proto__"')),
  metadata: fc.record({
    correlation_id: uuid,
    causation_id: fc.option(uuid, { nil: null }),
    user_id: fc.option(uuid, { nil: null }),
    tenant_id: fc.option(uuid, { nil: null }),
    source: text,
  }),
}) as fc.Arbitrary<Event>;

/** A copy made of ordinary objects (fast-check's records have no prototype), -0 kept. */
function plainCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainCopy);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = plainCopy((value as Record<string, unknown>)[key]);
  return out;
}

describe('the event codec', () => {
  it('encodeEvent round-trips any event, decodes like the generic encoding, and keeps earlier views intact', () => {
    const codec = new Codec();
    const reader = new Codec();
    const kept: Array<{ bytes: Buffer; event: Event }> = [];
    fc.assert(
      fc.property(event, (e) => {
        const bytes = codec.encodeEvent(e);
        // The generic encoding writes -0 as 0; the event writer keeps -0 (serde_json keeps -0.0).
        const generic = JSON.parse(JSON.stringify(e)) as Event;
        const expected = plainCopy(e) as Event;
        assert.deepStrictEqual(reader.decode(bytes), expected);
        assert.deepStrictEqual(reader.decode(codec.encodeView(e)), generic);
        assert.equal(JSON.stringify(reader.decode(bytes)), JSON.stringify(e), 'same field order');
        kept.push({ bytes, event: expected });
      }),
      { numRuns: 1500 },
    );
    // Views stay valid after the arena has moved on (several arenas were filled above).
    for (const { bytes, event: e } of kept) assert.deepStrictEqual(reader.decode(bytes), e);
    // Back to back, as blocks and batches hold them.
    const all = Buffer.concat(kept.map((k) => k.bytes));
    assert.deepStrictEqual(
      reader.decodeMany(all),
      kept.map((k) => k.event),
    );
  });

  it('payload objects of every header size round-trip (fixmap, map16, map32)', () => {
    const codec = new Codec();
    const reader = new Codec();
    for (const size of [0, 1, 15, 16, 17, 300, 65_535, 65_536, 70_000]) {
      const payload: Record<string, number | string> = {};
      for (let i = 0; i < size; i++) payload[`k${i}`] = i % 2 === 0 ? i : `v${i}`;
      const e: Event = {
        event_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
        timestamp: '2026-11-28T16:24:56.123Z',
        event_type: { Custom: 'Wide' },
        payload: { before: 1, wide: payload, after: [payload, 'é'] },
        metadata: {
          correlation_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c',
          causation_id: null,
          user_id: null,
          tenant_id: null,
          source: 'codec-test',
        },
      };
      const bytes = codec.encodeEvent(e, 64);
      assert.deepStrictEqual(reader.decode(bytes), e, `${size} keys`);
      assert.deepStrictEqual(reader.decode(bytes), reader.decode(codec.encode(e)), `${size} keys, like the generic encoding`);
    }
  });

  it('writes the same bytes for a name the first time and from its kept encoding later', () => {
    const codec = new Codec();
    const reader = new Codec();
    const e = (n: number): Event => ({
      event_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
      timestamp: '2026-11-28T16:24:56.123Z',
      event_type: { Custom: `Kept ${n} é` },
      payload: { [`key ${n}`]: 1, ['ключ' + n]: 'v', [`${n}`.repeat(70)]: null },
      metadata: {
        correlation_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c',
        causation_id: null,
        user_id: null,
        tenant_id: null,
        source: `source-${n}`,
      },
    });
    for (let n = 0; n < 50; n++) {
      const first = Buffer.from(codec.encodeEvent(e(n)));
      const again = Buffer.from(codec.encodeEvent(e(n)));
      assert.deepStrictEqual(again, first, `event ${n}`);
      assert.deepStrictEqual(reader.decode(again), e(n));
    }
  });

  it('generates event_id, timestamp and correlation_id in place, sets them on the draft, and generates again in a new arena', () => {
    const codec = new Codec();
    const reader = new Codec();
    const ids = new IdSource();
    const draft = (payload: unknown, correlation?: string): EventDraft => ({
      event_id: undefined,
      timestamp: undefined,
      event_type: 'UserLoggedIn',
      payload: payload as Event['payload'],
      metadata: { correlation_id: correlation, causation_id: null, user_id: null, tenant_id: null, source: 'codec-test' },
    });
    const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const seen = new Set<string>();
    // The second large payload does not fit after the first: its encoding starts over in a new arena.
    for (const payload of [{ n: 1 }, { big: 'x'.repeat(700_000) }, { big: 'y'.repeat(700_000) }, { n: 2 }]) {
      const d = draft(payload);
      const start = codec.encodeDraft(d, 64, ids);
      const decoded = reader.decode<Event>(codec.lastArena.subarray(start, codec.lastEnd));
      assert.deepStrictEqual(decoded, d, 'the bytes hold what the draft was given');
      assert.match(d.event_id!, V7);
      assert.match(d.metadata.correlation_id!, V7);
      assert.equal(d.timestamp, new Date(ids.nowMs).toISOString().replace(/\.000Z$/, 'Z'));
      assert.ok(!seen.has(d.event_id!) && !seen.has(d.metadata.correlation_id!), 'fresh ids');
      seen.add(d.event_id!).add(d.metadata.correlation_id!);
    }
    // A generated id carries the mark and the millisecond it was made in (the store finds it by time).
    for (const id of seen) {
      assert.equal(id.slice(16, 18), 'e7');
      const ms = generatedIdTime(id);
      assert.ok(ms !== null && Math.abs(ms - ids.nowMs) < 60_000, `${id}: ${ms}`);
    }
    // Fields the draft has are written as given.
    const given = draft({}, '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c');
    given.event_id = '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b';
    given.timestamp = '2026-11-28T16:24:56Z';
    const start = codec.encodeDraft(given, 64, ids);
    assert.deepStrictEqual(reader.decode(codec.lastArena.subarray(start, codec.lastEnd)), given);
    // Without a generator a draft must be complete.
    assert.throws(() => codec.encodeEvent(draft({}) as unknown as Event), TypeError);
  });

  it('tells a generated id and its millisecond from any other id', () => {
    const ids = new IdSource();
    const before = Date.now();
    const id = ids.uuid();
    const ms = generatedIdTime(id)!;
    assert.ok(ms >= before && ms <= Date.now(), `${id}: ${ms}`);
    assert.equal(generatedIdTime('0190a1b2-c3d4-7ee7-8a6b-7c8d9e0f1a2b'), 0x0190a1b2c3d4);
    // Not marked, not v7, not lowercase, not a uuid: no millisecond, so the id index holds it.
    for (const other of [
      '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
      '0190a1b2-c3d4-4ee7-8a6b-7c8d9e0f1a2b',
      '0190A1B2-C3D4-7EE7-8A6B-7C8D9E0F1A2B',
      '0190a1b2-c3d4-7ee7-8a6b-7c8d9e0f1a2',
      '0190a1b2xc3d4-7ee7-8a6b-7c8d9e0f1a2b',
      '0190a1g2-c3d4-7ee7-8a6b-7c8d9e0f1a2b',
      randomUUID(),
    ])
      assert.equal(generatedIdTime(other), null, other);
  });

  it('with maxBytes, gives -1 only for an event over it and never reserves more than 3 * maxBytes for one', () => {
    // Large enough that the bound (3 * MAX) exceeds the arena's default size, so both ways out are taken.
    const MAX = 360_000;
    const ids = new IdSource();
    const sized = (payload: unknown): EventDraft => ({
      event_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
      timestamp: '2026-11-28T16:24:56Z',
      event_type: 'UserLoggedIn',
      payload: payload as Event['payload'],
      metadata: {
        correlation_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c',
        causation_id: null,
        user_id: null,
        tenant_id: null,
        source: 'codec-test',
      },
    });
    const unbounded = new Codec();
    const sizeOf = (d: EventDraft) => {
      const start = unbounded.encodeDraft(d, 64, ids);
      return unbounded.lastEnd - start;
    };
    // Strings around the limit, in ASCII and in 2-, 3- and 4-byte characters (whose worst-case reservation
    // is far over maxBytes while their encoding may still fit), alone or after other fields.
    const piece = fc.constantFrom('a', 'é', '€', '😀');
    let refused = 0;
    fc.assert(
      fc.property(
        piece,
        fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: MAX - 3000, max: MAX + 64 })),
        fc.integer({ min: 0, max: 3 }),
        (ch, units, fields) => {
          const codec = new Codec();
          const text = ch.repeat(Math.ceil(units / ch.length));
          const payload: Record<string, unknown> = {};
          for (let f = 0; f < fields; f++) payload[`f${f}`] = 'z'.repeat(700);
          payload.text = text;
          const d = sized(payload);
          const expected = sizeOf(sized(payload));
          const start = codec.encodeDraft(d, 64, ids, MAX);
          // -1 only for an event that is over; one that is encoded is encoded whole (the caller checks its size).
          if (start < 0) assert.ok(expected > MAX, `an event of ${expected} bytes refused under ${MAX}`);
          else assert.equal(codec.lastEnd - start, expected);
          assert.ok(codec.lastArena.length <= Math.max(1 << 20, 3 * MAX + 16));
          if (start < 0) refused++;
        },
      ),
      { numRuns: 100 },
    );
    assert.ok(refused > 0, 'some events were refused without being encoded');
    // At the edge, as the intake decides (refused, or encoded and then measured): MAX bytes pass, MAX + 1 do not.
    const over = (d: EventDraft) => {
      const codec = new Codec();
      const start = codec.encodeDraft(d, 64, ids, MAX);
      return start < 0 || codec.lastEnd - start > MAX;
    };
    const overhead = sizeOf(sized({ text: '' })) + 4; // a str32 header instead of an empty fixstr
    assert.equal(sizeOf(sized({ text: 'x'.repeat(MAX - overhead) })), MAX);
    assert.equal(over(sized({ text: 'x'.repeat(MAX - overhead) })), false);
    assert.equal(over(sized({ text: 'x'.repeat(MAX - overhead + 1) })), true);
    // A huge string is refused without an arena sized after it.
    const codec = new Codec();
    const limit = 1 << 20;
    assert.equal(codec.encodeDraft(sized({ text: 'x'.repeat(50 * limit) }), 64, ids, limit), -1);
    const start = codec.encodeDraft(sized({ n: 1 }), 64, ids, limit);
    assert.ok(start >= 0);
    assert.ok(codec.lastArena.length <= 3 * limit + 16, `arena of ${codec.lastArena.length} bytes after refusing a 50 MiB string`);
  });

  it('bytes that redefine a shared structure never change how later values decode', () => {
    const codec = new Codec();
    const sample: Event = {
      event_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
      timestamp: '2026-11-28T16:24:56.123Z',
      event_type: 'UserLoggedIn',
      payload: { ip: '10.0.0.1' },
      metadata: {
        correlation_id: '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c',
        causation_id: null,
        user_id: null,
        tenant_id: null,
        source: 'codec-test',
      },
    };
    const good = Buffer.from(codec.encodeEvent(sample));
    // A record definition (ext 0x72) of id 0x40, the event structure, as ['a'], then its value { a: 1 }:
    // what one garbled byte in a batch can turn a reference into.
    const redefinition = Uint8Array.from([0xd4, 0x72, 0x40, 0x91, 0xa1, 0x61, 0x01]);
    assert.deepStrictEqual(codec.decode(redefinition), { a: 1 }, 'the redefinition itself decodes');
    assert.deepStrictEqual(codec.decode(good), sample, 'a single value decodes as declared afterwards');
    assert.deepStrictEqual(codec.decodeMany(Buffer.concat([redefinition, redefinition])), [{ a: 1 }, { a: 1 }]);
    assert.deepStrictEqual(codec.decodeMany(Buffer.concat([good, good])), [sample, sample], 'so does a batch');
    // The same when the redefining input is cut short and fails to decode.
    assert.throws(() => codec.decodeMany(Buffer.concat([redefinition, good.subarray(0, 10)])));
    assert.deepStrictEqual(codec.decodeMany(good), [sample]);
    // Objects of other shapes still round-trip after all this (they define their structures in-band).
    assert.deepStrictEqual(codec.decode(codec.encode({ x: 1, y: [2] })), { x: 1, y: [2] });
  });
});
