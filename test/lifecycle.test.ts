/**
 * The bus's life: close() drains everything accepted, emits after close are
 * refused, close() twice is harmless; producers preset the source; flush() on
 * an idle bus returns at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BusClosedError, createBus, type Receipt } from '../src/index.js';
import type { JsonDelivery } from './fixtures/json-recorder.js';
import { fixture, linesOf, recorder, tempDir, uuid, waitFor, withBus } from './helpers.js';

/** The Slow fixture taking 10 ms per event (it records into the file withBus gives it). */
const SLOW = { module: fixture('slow'), options: { ms: 10 } };

const isClosed = (err: unknown) => {
  assert.ok(err instanceof BusClosedError, `a BusClosedError, got ${String(err)}`);
  assert.equal(err.code, 'ERR_EVENTRAIL_CLOSED');
  return true;
};

describe('close()', () => {
  it('delivers every accepted event before it resolves, and refuses emits afterwards', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [SLOW],
        pool: { maxThreads: 1, concurrentTasksPerWorker: 2 },
        dispatch: { maxBatch: 5 },
      },
      async ({ bus, out }) => {
        const users = [uuid(), uuid()];
        const emits: Array<Promise<Receipt>> = [];
        for (let seq = 0; seq < 30; seq++) {
          emits.push(bus.emit({ event_type: 'SessionCreated', payload: { seq }, metadata: { source: 'test', user_id: users[seq % 2] } }));
        }
        // No flush: close() itself must drain (30 events at 10 ms each are still running when it is called).
        const closing = bus.close();
        assert.equal(bus.closed, true);
        await assert.rejects(bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } }), isClosed);
        await closing;
        const receipts = await Promise.all(emits);
        const delivered = out.read();
        assert.equal(delivered.length, 30, 'none lost');
        assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(receipts.map((r) => r.event_id)));
        assert.equal(bus.pending, 0);

        await assert.rejects(bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } }), isClosed);
        await assert.rejects(bus.emitMany([{ event_type: 'SessionCreated', metadata: { source: 'test' } }]), isClosed);
        await assert.rejects(bus.producer('late').emit({ event_type: 'SessionCreated' }), isClosed);
        await assert.rejects(bus.deadLetters.redrive(), isClosed);
        // A second close is harmless.
        await bus.close();
        await bus.close();
        assert.equal(out.read().length, 30);
      },
    );
  });

  it('delivers events still waiting for room (backpressure wait) before it resolves', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [SLOW],
        pool: { maxThreads: 1 },
        dispatch: { maxBatch: 2 },
        backpressure: { maxPending: 4, onOverflow: 'wait' },
      },
      async ({ bus, out }) => {
        const user = uuid();
        const emits = Array.from({ length: 20 }, (_, seq) =>
          bus.emit({ event_type: 'SessionCreated', payload: { seq }, metadata: { source: 'test', user_id: user } }),
        );
        assert.equal(bus.pending, 4, 'most emits are waiting for room when close() is called');
        await bus.close();
        const receipts = await Promise.all(emits);
        assert.equal(receipts.length, 20);
        assert.deepEqual(
          out.read().map((d) => d.seq),
          Array.from({ length: 20 }, (_, k) => k),
        );
      },
    );
  });

  it('runs a retry waiting out its backoff at once instead of losing it or waiting', { timeout: 15_000 }, async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('flaky'), fixture('recorder')],
        pool: { maxThreads: 1 },
        // A backoff far longer than the test's timeout: close() must not wait it out.
        delivery: { maxAttempts: 3, backoff: { initialMs: 600_000, maxMs: 600_000 } },
      },
      async ({ bus, out }) => {
        const { event_id } = await bus.emit({ event_type: 'UserLoggedIn', payload: { failTimes: 1 }, metadata: { source: 'test' } });
        await waitFor('the first attempt to fail', () => out.read().some((d) => d.consumer === 'Flaky' && d.event_id === event_id));
        await bus.close();
        assert.deepEqual(
          out
            .read()
            .filter((d) => d.consumer === 'Flaky')
            .map((d) => d.attempt),
          [1, 2],
        );
        assert.deepEqual(await bus.deadLetters.list(), []);
      },
    );
  });
});

describe('producers and flush', () => {
  it("bus.producer('login_handler') emits with metadata.source preset", async () => {
    await withBus({ store: { kind: 'none' }, consumers: [fixture('json-recorder')], pool: { maxThreads: 1 } }, async ({ bus, out }) => {
      const producer = bus.producer('login_handler');
      assert.equal(producer.source, 'login_handler');
      const user = uuid();
      const one = await producer.emit({ event_type: 'UserLoggedIn', payload: { n: 1 }, metadata: { user_id: user } });
      const bare = await producer.emit({ event_type: 'UserLoggedOut' });
      const many = await producer.emitMany([{ event_type: 'TokenRefreshed' }, { event_type: { Custom: 'X' }, payload: [1] }]);
      await bus.flush();
      const events = new Map(
        linesOf<JsonDelivery>(out.path, 'JsonRecorder').map((d) => {
          const e = JSON.parse(d.json) as { metadata: { source: string; user_id: string | null } };
          return [d.event_id, e];
        }),
      );
      for (const r of [one, bare, ...many]) assert.equal(events.get(r.event_id)?.metadata.source, 'login_handler');
      assert.equal(events.get(one.event_id)?.metadata.user_id, user, 'the rest of the metadata is kept');
      assert.throws(() => bus.producer(''), TypeError);
      // A producer's emit validates like emit.
      await assert.rejects(producer.emit({ event_type: 'Nope' as never }), /event_type/);
    });
  });

  it('flush() on an idle bus resolves, before and after traffic', { timeout: 5_000 }, async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const bus = await createBus({ store: { kind: 'none' }, consumers: [out.consumer('recorder')], pool: { maxThreads: 1 } });
    try {
      await bus.flush();
      await bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } });
      await bus.flush();
      await bus.flush();
      await Promise.all([bus.flush(), bus.flush()]);
      assert.equal(bus.pending, 0);
    } finally {
      await bus.close();
      dir.remove();
    }
  });

  it('a bus without consumers accepts events and flushes', { timeout: 5_000 }, async () => {
    const bus = await createBus({ store: { kind: 'none' }, pool: { maxThreads: 1 } });
    try {
      const r = await bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } });
      assert.match(r.position, /^[0-9a-f]{24}$/);
      await bus.flush();
      assert.equal(bus.pending, 0);
    } finally {
      await bus.close();
    }
  });
});
