/**
 * Typed event catalogues at run time, on a real lmdb store with consumers in
 * real workers: emit checks payloads against their type's schema (a coded
 * error naming the type, the field path and what was expected), and a
 * versioned type's older stored events reach replay and consumers upcast to
 * the current version, while the version itself never shows in the event's
 * JSON.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  createBus,
  defineEvents,
  InvalidConsumerError,
  PayloadSchemaError,
  UpcastError,
  type Event,
  type EventrailError,
} from '../src/index.js';
import { catalogV1 } from './fixtures/catalog-v1.js';
import { catalogV2 } from './fixtures/catalog-v2.js';
import type { OrderDelivery } from './fixtures/catalog-orders.js';
import { fixture, linesOf, recorder, tempDir, uuid, withBus } from './helpers.js';

const SERDE_KEYS = ['event_id', 'timestamp', 'event_type', 'payload', 'metadata'];

async function replayAll(bus: { replay(): AsyncIterable<Event> }): Promise<Event[]> {
  const events: Event[] = [];
  for await (const e of bus.replay()) events.push(e);
  return events;
}

describe('typed event catalogues', () => {
  it('emit rejects a payload its schema rejects, with ERR_EVENTRAIL_PAYLOAD_SCHEMA naming the type, the field path and what was expected', async () => {
    await withBus(
      (dir) => ({
        store: { kind: 'lmdb', path: dir.file('store') },
        events: catalogV2,
        consumers: [fixture('catalog-orders')],
        pool: { maxThreads: 1 },
      }),
      async ({ bus, out }) => {
        const metadata = { source: 'shop' };
        const bad = bus.emit({
          event_type: { Custom: 'OrderPlaced' },
          payload: { items: [{ sku: 'A-1', qty: 'two' as unknown as number }], currency: 'EUR' },
          metadata,
        });
        await assert.rejects(bad, (err: EventrailError) => {
          assert.ok(err instanceof PayloadSchemaError);
          assert.equal(err.code, 'ERR_EVENTRAIL_PAYLOAD_SCHEMA');
          assert.equal(err.eventType, 'OrderPlaced');
          assert.deepEqual(
            err.issues.map((i) => i.path),
            ['payload.items[0].qty'],
          );
          assert.match(err.message, /OrderPlaced payload: payload\.items\[0\]\.qty .*expected number, received string/);
          return true;
        });
        // A builtin type in the catalogue is checked too, and a missing field is named.
        await assert.rejects(
          bus.emit({ event_type: 'UserLoggedIn', payload: {} as { user_id: string }, metadata }),
          (err: PayloadSchemaError) => {
            assert.equal(err.code, 'ERR_EVENTRAIL_PAYLOAD_SCHEMA');
            assert.equal(err.eventType, 'UserLoggedIn');
            assert.equal(err.issues[0]?.path, 'payload.user_id');
            return true;
          },
        );
        // emitMany is all or nothing: one bad payload rejects the call.
        await assert.rejects(
          bus.emitMany([
            { event_type: { Custom: 'OrderPlaced' }, payload: { items: [{ sku: 'B', qty: 1 }], currency: 'EUR' }, metadata },
            { event_type: { Custom: 'OrderPlaced' }, payload: { items: [], currency: 'EUR' }, metadata },
          ]),
          { code: 'ERR_EVENTRAIL_PAYLOAD_SCHEMA' },
        );

        // A good one is stored as the schema outputs it: defaults filled, unknown keys of z.object dropped.
        const ok = await bus.emit({
          event_type: { Custom: 'OrderPlaced' },
          payload: { items: [{ sku: 'C', qty: 2 }], currency: 'USD', note: 'dropped' } as never,
          metadata,
        });
        const refund = await bus.emit({ event_type: { Custom: 'Refunded' }, payload: { order_id: ok.event_id }, metadata });
        // A type the catalogue does not name is not checked.
        await bus.emit({ event_type: { Custom: 'Unlisted' } as never, payload: { anything: [1, 'x'] } as never, metadata });
        await bus.flush();

        const stored = await replayAll(bus);
        assert.deepEqual(
          stored.map((e) => e.event_type),
          [{ Custom: 'OrderPlaced' }, { Custom: 'Refunded' }, { Custom: 'Unlisted' }],
          'nothing rejected was stored',
        );
        assert.deepEqual(stored[0]!.payload, { items: [{ sku: 'C', qty: 2 }], currency: 'USD' });
        assert.equal(stored[1]!.event_id, refund.event_id);
        assert.deepEqual(stored[1]!.payload, { order_id: ok.event_id, amount: 0 });
        const delivered = linesOf<OrderDelivery>(out.path, 'OrderRecorder');
        assert.deepEqual(
          delivered.map((d) => d.event_id),
          [ok.event_id],
          'only the accepted order reached the consumer',
        );
      },
    );
  });

  it('upcasts version-1 events on replay and on delivery; version 2 is stored beside the event, never in its JSON', async () => {
    const dir = tempDir();
    try {
      const out = recorder(dir);
      const path = dir.file('store');
      const metadata = { source: 'shop' };
      // Written by an older release of the application: catalogue version 1, no consumers.
      const v1bus = await createBus({ store: { kind: 'lmdb', path }, events: catalogV1, pool: { maxThreads: 1 } });
      const old = await v1bus.emit({ event_type: { Custom: 'OrderPlaced' }, payload: { sku: 'OLD-1', qty: 3 }, metadata });
      await v1bus.close();

      // The new release: catalogue version 2, and a consumer whose group is new and starts from the beginning of the log.
      const v2bus = await createBus({
        store: { kind: 'lmdb', path },
        events: catalogV2,
        consumers: [out.consumer('catalog-orders')],
        audit: { eventTypes: [{ Custom: 'OrderPlaced' }] },
        pool: { maxThreads: 1 },
      });
      let fresh: string;
      try {
        fresh = (
          await v2bus.emit({
            event_type: { Custom: 'OrderPlaced' },
            payload: { items: [{ sku: 'NEW-1', qty: 1 }], currency: 'GBP' },
            metadata,
          })
        ).event_id;
        await v2bus.flush();

        // On delivery: the worker upcast the old event with the consumer's catalogue, and handed it frozen.
        const delivered = new Map(linesOf<OrderDelivery>(out.path, 'OrderRecorder').map((d) => [d.event_id, d]));
        assert.deepEqual(delivered.get(old.event_id)?.items, [{ sku: 'OLD-1', qty: 3 }]);
        assert.equal(delivered.get(old.event_id)?.currency, 'EUR');
        assert.equal(delivered.get(old.event_id)?.frozen, true);
        assert.deepEqual(delivered.get(fresh)?.items, [{ sku: 'NEW-1', qty: 1 }]);
        for (const d of delivered.values()) assert.deepEqual(Object.keys(JSON.parse(d.json) as object), SERDE_KEYS);

        // On replay: the bus's catalogue upcasts the same way.
        const replayed = await replayAll(v2bus);
        assert.deepEqual(
          replayed.map((e) => e.payload),
          [
            { items: [{ sku: 'OLD-1', qty: 3 }], currency: 'EUR' },
            { items: [{ sku: 'NEW-1', qty: 1 }], currency: 'GBP' },
          ],
        );

        // The audit log records the event as emitted (its store entry is made from the enveloped bytes).
        const audited = [];
        for await (const a of v2bus.audit.query()) audited.push(a);
        assert.deepEqual(
          audited.map((a) => [a.event_id, a.event_type, a.payload]),
          [[fresh, 'Custom("OrderPlaced")', { items: [{ sku: 'NEW-1', qty: 1 }], currency: 'GBP' }]],
        );
        assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(audited[0])) as object), [
          'audit_id',
          'event_id',
          'event_type',
          'timestamp',
          'payload',
          'metadata',
        ]);
      } finally {
        await v2bus.close();
      }

      // Without a catalogue the stored payloads come back as stored, and the version-2 event's JSON is serde's shape only.
      const plain = await createBus({ store: { kind: 'lmdb', path }, pool: { maxThreads: 1 } });
      try {
        const raw = await replayAll(plain);
        assert.deepEqual(
          raw.map((e) => e.payload),
          [
            { sku: 'OLD-1', qty: 3 },
            { items: [{ sku: 'NEW-1', qty: 1 }], currency: 'GBP' },
          ],
        );
        assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(raw[1])) as object), SERDE_KEYS);
        assert.deepEqual(
          Reflect.ownKeys(raw[1]!).filter((k) => typeof k === 'string'),
          SERDE_KEYS,
        );

        // A stored version newer than the catalogue knows cannot be turned back.
        const older = await createBus({ store: { kind: 'lmdb', path }, events: catalogV1, pool: { maxThreads: 1 } });
        try {
          await assert.rejects(replayAll(older), (err: EventrailError) => {
            assert.ok(err instanceof UpcastError);
            assert.equal(err.code, 'ERR_EVENTRAIL_UPCAST');
            assert.match(err.message, /OrderPlaced from version 2 to 1/);
            return true;
          });
        } finally {
          await older.close();
        }
      } finally {
        await plain.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('an upcast that throws or gives a payload the current schema rejects is an UpcastError', () => {
    const event = (payload: unknown) =>
      ({
        event_id: uuid(),
        timestamp: '2026-01-01T00:00:00Z',
        event_type: { Custom: 'X' },
        payload,
        metadata: { correlation_id: uuid(), causation_id: null, user_id: null, tenant_id: null, source: 's' },
      }) as Event;
    const throws = defineEvents({
      X: {
        version: 2,
        schema: z.object({ b: z.number() }),
        upcast: {
          1: () => {
            throw new Error('boom');
          },
        },
      },
    });
    assert.throws(
      () => throws.upcast(event({ a: 1 })),
      (err: UpcastError) => err.code === 'ERR_EVENTRAIL_UPCAST' && /upcast\[1\] threw: boom/.test(err.message),
    );
    const wrong = defineEvents({
      X: { version: 2, schema: z.object({ b: z.number() }), upcast: { 1: (p: { a: number }) => ({ b: String(p.a) }) } },
    });
    assert.throws(() => wrong.upcast(event({ a: 1 })), /does not match version 2: payload\.b/);
    assert.throws(
      () => defineEvents({ X: { version: 3, schema: z.object({}), upcast: { 1: (p: unknown) => p } } }),
      /upcast\[2\] must be a function/,
    );
    assert.throws(() => catalogV2.consumer({ name: 'C', eventTypes: ['Nope' as 'OrderPlaced'], handle() {} }), InvalidConsumerError);
  });

  it('createBus rejects an events option that is not a catalogue', async () => {
    await assert.rejects(
      createBus({ store: { kind: 'none' }, events: { OrderPlaced: {} } as never }),
      /events must be an event catalogue made by defineEvents\(\)/,
    );
  });
});
