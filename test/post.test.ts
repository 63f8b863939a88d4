/** bus.post(): emit without a receipt. And emitMany(), one promise per call, still resolving a receipt per event. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackpressureError, BusClosedError, InvalidEventError, createBus, type EventInput } from '../src/index.js';
import { fixture, tempDir, uuid, withBus } from './helpers.js';

const login = (seq: number, user = uuid()): EventInput => ({
  event_type: 'UserLoggedIn',
  payload: { seq },
  metadata: { source: 'test', user_id: user },
});

describe('post', () => {
  it('accepts events without a receipt; flush() waits for them and they are stored and delivered in order', async () => {
    await withBus(
      (dir) => ({ store: { kind: 'lmdb', path: dir.file('db') }, consumers: [fixture('recorder')], pool: { maxThreads: 1 } }),
      async ({ bus, out }) => {
        const user = uuid();
        for (let seq = 0; seq < 50; seq++) assert.equal(bus.post(login(seq, user)), null);
        await bus.flush();
        assert.deepEqual(
          out.read().map((d) => d.seq),
          Array.from({ length: 50 }, (_, i) => i),
        );
        const stored = [];
        for await (const e of bus.replay()) stored.push((e.payload as { seq: number }).seq);
        assert.equal(stored.length, 50);
      },
    );
  });

  it('returns the error emit() rejects with, with the same issues', async () => {
    await withBus({ store: { kind: 'none' } }, async ({ bus }) => {
      const bad = { event_type: 'NoSuchType', metadata: { source: 'test' } } as unknown as EventInput;
      const posted = bus.post(bad);
      const emitted = await bus.emit(bad).then(
        () => null,
        (err: unknown) => err,
      );
      assert.ok(posted instanceof InvalidEventError);
      assert.ok(emitted instanceof InvalidEventError);
      assert.deepEqual(posted.issues, emitted.issues);
      assert.equal(bus.pending, 0, 'nothing was accepted');
    });
  });

  it("returns a BackpressureError when the bus is full under 'reject'", async () => {
    await withBus(
      {
        store: { kind: 'none' },
        dispatch: { maxBatch: 1 },
        backpressure: { maxPending: 2, onOverflow: 'reject' },
        consumers: [fixture('slow')],
      },
      async ({ bus }) => {
        assert.equal(bus.post(login(0)), null);
        assert.equal(bus.post(login(1)), null);
        assert.ok(bus.post(login(2)) instanceof BackpressureError);
        await bus.flush();
        assert.equal(bus.post(login(3)), null);
        await bus.flush();
      },
    );
  });

  it('returns a BusClosedError once close() was called', async () => {
    const dir = tempDir();
    try {
      const bus = await createBus({ store: { kind: 'none' } });
      const closing = bus.close();
      assert.ok(bus.post(login(0)) instanceof BusClosedError);
      await closing;
    } finally {
      dir.remove();
    }
  });
});

describe('emitMany', () => {
  it('resolves one receipt per event, in order, across several batches', async () => {
    await withBus(
      (dir) => ({ store: { kind: 'lmdb', path: dir.file('db') }, consumers: [fixture('recorder')], dispatch: { maxBatch: 7 } }),
      async ({ bus }) => {
        const inputs = Array.from({ length: 30 }, (_, i) => ({ ...login(i), event_id: uuid() }));
        const receipts = await bus.emitMany(inputs);
        assert.deepEqual(
          receipts.map((r) => r.event_id),
          inputs.map((i) => i.event_id),
        );
        const positions = receipts.map((r) => r.position);
        assert.deepEqual([...positions].sort(), positions, 'positions follow the call order');
        assert.equal(new Set(positions).size, 30);
        const again = await bus.emitMany(inputs.slice(0, 3));
        assert.deepEqual(
          again.map((r) => [r.duplicate, r.position]),
          receipts.slice(0, 3).map((r) => [true, r.position]),
        );
      },
    );
  });

  it('resolves an empty list for an empty call', async () => {
    await withBus({ store: { kind: 'none' } }, async ({ bus }) => {
      assert.deepEqual(await bus.emitMany([]), []);
    });
  });
});
