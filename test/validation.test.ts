/**
 * Invalid events are rejected by emit with an error that names the field, and
 * nothing of them is stored or delivered; the bus keeps working afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventTooLargeError, InvalidEventError, type EventInput } from '../src/index.js';
import { fixture, suiteBus, uuid } from './helpers.js';

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const valid = (payload: Record<string, unknown> = {}): EventInput => ({
  event_type: 'UserLoggedIn',
  payload: payload as EventInput['payload'],
  metadata: { source: 'test', user_id: uuid() },
});

const withPayload = (payload: unknown) => ({ event_type: 'UserLoggedIn', payload, metadata: { source: 'test' } });

function circular(): unknown {
  const root: Record<string, unknown> = { a: { b: {} } };
  ((root.a as Record<string, unknown>).b as Record<string, unknown>).back = root;
  return root;
}

function nested(depth: number): unknown {
  let value: unknown = {};
  for (let i = 1; i < depth; i++) value = { next: value };
  return value;
}

const MAX_DEPTH = 8;

/** [name, input, text every message must contain (the field, and what was received or expected)] */
const INVALID: Array<[name: string, input: unknown, mentions: readonly (string | RegExp)[]]> = [
  ['an unknown event_type string', { event_type: 'UserSignedUp', metadata: { source: 'test' } }, ['event_type', 'UserSignedUp']],
  ['a lowercase builtin name', { event_type: 'userLoggedIn', metadata: { source: 'test' } }, ['event_type', 'userLoggedIn']],
  ['{ Custom: 42 }', { event_type: { Custom: 42 }, metadata: { source: 'test' } }, ['event_type', 'Custom', '42']],
  ['{ Custom } with another key', { event_type: { Custom: 'A', extra: 1 }, metadata: { source: 'test' } }, ['event_type']],
  ['a number as event_type', { event_type: 42, metadata: { source: 'test' } }, ['event_type', '42']],
  ['a missing event_type', { metadata: { source: 'test' } }, ['event_type']],
  [
    'a bad uuid in event_id',
    { event_id: 'not-a-uuid', event_type: 'UserLoggedIn', metadata: { source: 'test' } },
    ['event_id', 'not-a-uuid'],
  ],
  ['a bad uuid in user_id', { event_type: 'UserLoggedIn', metadata: { source: 'test', user_id: 'u-123' } }, ['metadata.user_id', 'u-123']],
  [
    'a bad uuid in correlation_id',
    { event_type: 'UserLoggedIn', metadata: { source: 'test', correlation_id: '1234-5678' } },
    ['metadata.correlation_id', '1234-5678'],
  ],
  [
    'a uuid with a missing digit in tenant_id',
    { event_type: 'UserLoggedIn', metadata: { source: 'test', tenant_id: '7b0c3a52-3d5e-4f1a-9c2b-8e7d6f5a4b3' } },
    ['metadata.tenant_id'],
  ],
  ['a number as user_id', { event_type: 'UserLoggedIn', metadata: { source: 'test', user_id: 42 } }, ['metadata.user_id', '42']],
  ['a missing metadata.source', { event_type: 'UserLoggedIn', metadata: { user_id: uuid() } }, ['metadata.source']],
  ['a number as metadata.source', { event_type: 'UserLoggedIn', metadata: { source: 42 } }, ['metadata.source', '42']],
  ['a missing metadata', { event_type: 'UserLoggedIn' }, ['metadata']],
  ['a string as metadata', { event_type: 'UserLoggedIn', metadata: 'test' }, ['metadata', 'object']],
  [
    'a timestamp without a time zone',
    { timestamp: '2026-01-31T12:00:00', event_type: 'UserLoggedIn', metadata: { source: 'test' } },
    ['timestamp'],
  ],
  [
    'a timestamp that is not a date',
    { timestamp: 'yesterday', event_type: 'UserLoggedIn', metadata: { source: 'test' } },
    ['timestamp', 'yesterday'],
  ],
  [
    'an impossible date (February 30)',
    { timestamp: '2026-02-30T00:00:00Z', event_type: 'UserLoggedIn', metadata: { source: 'test' } },
    ['timestamp', '2026-02-30'],
  ],
  [
    'an impossible time (24:00)',
    { timestamp: '2026-01-31T24:00:00Z', event_type: 'UserLoggedIn', metadata: { source: 'test' } },
    ['timestamp', '24:00'],
  ],
  [
    'a number as timestamp',
    { timestamp: 1767225600000, event_type: 'UserLoggedIn', metadata: { source: 'test' } },
    ['timestamp', '1767225600000'],
  ],
  ['a function in the payload', withPayload({ handler() {} }), ['payload.handler', 'function']],
  ['a function as the payload', withPayload(() => 1), ['payload', 'function']],
  ['a BigInt beyond u64 in the payload', withPayload({ n: 1n << 64n }), ['payload.n', '64 bits', '18446744073709551616n']],
  ['a BigInt below i64 in the payload', withPayload({ n: [-(1n << 63n) - 1n] }), ['payload.n[0]', '64 bits']],
  ['a symbol in the payload', withPayload({ s: Symbol('s') }), ['payload.s', 'symbol']],
  ['a symbol key in the payload', withPayload({ [Symbol('k')]: 1 }), ['payload', 'symbol']],
  ['undefined in a payload object', withPayload({ u: undefined }), ['payload.u', 'undefined']],
  ['undefined in a payload array', withPayload({ list: [1, undefined] }), ['payload.list[1]', 'undefined']],
  ['NaN in the payload', withPayload({ x: NaN }), ['payload.x', 'NaN']],
  ['Infinity in the payload', withPayload({ x: Infinity }), ['payload.x', 'Infinity']],
  ['-Infinity in the payload', withPayload({ y: [-Infinity] }), ['payload.y[0]', 'Infinity']],
  ['a Date in the payload', withPayload({ at: new Date(0) }), ['payload.at', 'Date']],
  ['a Map in the payload', withPayload({ m: new Map([['k', 1]]) }), ['payload.m', 'Map']],
  ['a Set in the payload', withPayload({ s: new Set([1]) }), ['payload.s', 'Set']],
  ['a class instance in the payload', withPayload({ p: new Point(1, 2) }), ['payload.p', 'Point']],
  ['a Uint8Array in the payload', withPayload({ bytes: new Uint8Array(2) }), ['payload.bytes', 'Uint8Array']],
  ['a circular reference in the payload', withPayload(circular()), ['payload', 'circular']],
  [`a payload nested deeper than limits.maxDepth (${MAX_DEPTH})`, withPayload(nested(MAX_DEPTH + 1)), ['payload', 'maxDepth']],
  ['an unknown top-level field', { event_type: 'UserLoggedIn', metadata: { source: 'test' }, priority: 1 }, ['priority']],
  ['a misspelled top-level field', { eventType: 'UserLoggedIn', metadata: { source: 'test' } }, ['eventType']],
  ['an unknown metadata field', { event_type: 'UserLoggedIn', metadata: { source: 'test', userId: uuid() } }, ['metadata', 'userId']],
  ['null', null, ['object', 'null']],
  ['a number', 42, ['object', '42']],
  ['a string', 'x', ['object', '"x"']],
  ['an array', [], ['object', 'array']],
  ['undefined', undefined, ['object', 'undefined']],
];

describe('invalid events', () => {
  const suite = suiteBus({
    store: { kind: 'none' },
    consumers: [fixture('recorder')],
    pool: { maxThreads: 1 },
    limits: { maxDepth: MAX_DEPTH, maxEventBytes: 1024 },
  });

  /** The bus still accepts and delivers a valid event. */
  async function stillWorks(): Promise<void> {
    const receipt = await suite.bus.emit(valid({ probe: true }));
    await suite.bus.flush();
    assert.ok(
      suite.out.read().some((d) => d.event_id === receipt.event_id),
      'a valid event emitted after the rejection is delivered',
    );
  }

  for (const [name, input, mentions] of INVALID) {
    it(`rejects ${name}`, async () => {
      const deliveredBefore = suite.out.read().length;
      await assert.rejects(suite.bus.emit(input as EventInput), (err: unknown) => {
        assert.ok(err instanceof InvalidEventError, `an InvalidEventError, got ${String(err)}`);
        assert.equal(err.code, 'ERR_EVENTRAIL_INVALID_EVENT');
        for (const m of mentions) {
          if (typeof m === 'string') assert.ok(err.message.includes(m), `the message names ${m}: ${err.message}`);
          else assert.match(err.message, m);
        }
        assert.ok(err.issues.length > 0);
        assert.doesNotMatch(err.message, /payload payload/);
        return true;
      });
      assert.equal(suite.out.read().length, deliveredBefore, 'nothing was delivered');
      await stillWorks();
    });
  }

  it('does not report a present value of the wrong type as missing', async () => {
    const wrongTypes = [
      { event_type: 'UserLoggedIn', metadata: { source: 42 } },
      { event_type: 'UserLoggedIn', metadata: 'test' },
      { event_type: 'UserLoggedIn', timestamp: 5, metadata: { source: 'test' } },
      { event_type: 'UserLoggedIn', metadata: { source: 'test', user_id: 42 } },
      null,
      42,
    ];
    for (const input of wrongTypes) {
      await assert.rejects(suite.bus.emit(input as unknown as EventInput), (err: Error) => {
        assert.doesNotMatch(err.message, /is required/, `${JSON.stringify(input)} is present: ${err.message}`);
        return true;
      });
    }
    await assert.rejects(
      suite.bus.emit({ event_type: 'UserLoggedIn', metadata: {} } as EventInput),
      /metadata\.source.*(required|undefined)/,
    );
  });

  it('names the path of every issue', async () => {
    await assert.rejects(
      suite.bus.emit({ event_type: 'Nope', metadata: { source: 42, user_id: 'x' } } as never),
      (err: InvalidEventError) => {
        assert.deepEqual(new Set(err.issues.map((i) => i.path)), new Set(['event_type', 'metadata.source', 'metadata.user_id']));
        return true;
      },
    );
  });

  it(`accepts a payload exactly limits.maxDepth (${MAX_DEPTH}) deep`, async () => {
    const receipt = await suite.bus.emit({ event_type: 'UserLoggedIn', payload: nested(MAX_DEPTH) as never, metadata: { source: 'test' } });
    await suite.bus.flush();
    assert.ok(suite.out.read().some((d) => d.event_id === receipt.event_id));
  });

  it('rejects hostile nesting (200 000 levels) with InvalidEventError, not a stack overflow', async () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    await assert.rejects(suite.bus.emit(withPayload(deep) as EventInput), InvalidEventError);
    await stillWorks();
  });

  it('rejects an event over limits.maxEventBytes with EventTooLargeError', async () => {
    await assert.rejects(suite.bus.emit(valid({ blob: 'x'.repeat(2000) })), (err: unknown) => {
      assert.ok(err instanceof EventTooLargeError, `an EventTooLargeError, got ${String(err)}`);
      assert.equal(err.code, 'ERR_EVENTRAIL_EVENT_TOO_LARGE');
      assert.match(err.message, /maxEventBytes/);
      assert.match(err.message, /1024/);
      return true;
    });
    await stillWorks();
    // Just under the limit is fine.
    const receipt = await suite.bus.emit(valid({ blob: 'x'.repeat(700) }));
    await suite.bus.flush();
    assert.ok(suite.out.read().some((d) => d.event_id === receipt.event_id));
  });

  it('emitMany with one invalid input rejects and accepts none of them', async () => {
    const ids = [uuid(), uuid(), uuid()];
    const inputs = [
      { ...valid({ batch: 1 }), event_id: ids[0] },
      { ...valid({ batch: 1 }), event_id: ids[1] },
      { event_type: 'UserLoggedIn', event_id: ids[2], metadata: { source: 'test', user_id: 'bad' } },
    ];
    await assert.rejects(suite.bus.emitMany(inputs as EventInput[]), (err: unknown) => {
      assert.ok(err instanceof InvalidEventError);
      assert.match(err.message, /metadata\.user_id/);
      assert.match(err.message, /\[2\]/, 'the message names the index of the bad input');
      return true;
    });
    await stillWorks();
    const delivered = new Set(suite.out.read().map((d) => d.event_id));
    for (const id of ids) assert.equal(delivered.has(id), false, `${id} was not delivered`);
  });

  it('emitMany with one oversized input rejects and accepts none of them', async () => {
    const ids = [uuid(), uuid()];
    const inputs = [
      { ...valid({ n: 1 }), event_id: ids[0] },
      { ...valid({ blob: 'y'.repeat(5000) }), event_id: ids[1] },
    ];
    await assert.rejects(suite.bus.emitMany(inputs), EventTooLargeError);
    await stillWorks();
    const delivered = new Set(suite.out.read().map((d) => d.event_id));
    for (const id of ids) assert.equal(delivered.has(id), false, `${id} was not delivered`);
  });

  it('emitMany rejects a non-array', async () => {
    await assert.rejects(suite.bus.emitMany(valid() as never), InvalidEventError);
    await stillWorks();
  });
});
