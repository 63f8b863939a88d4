/**
 * close({ timeoutMs }) that gives up draining also settles what waits on the
 * bus: emits and emitMany calls waiting for room (backpressure 'wait') reject
 * with BusClosedError, posts waiting for room are counted in the warning and
 * in eventrail_emits_rejected_total, flush() rejects with BusClosedError. And
 * every append started before the give-up has settled by the time close()
 * resolves: the store is closed after it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BusClosedError, createBus, type EventInput, type Receipt } from '../src/index.js';
import { fixture, metricValue, tempDir, uuid } from './helpers.js';

const login = (seq: number): EventInput => ({
  event_type: 'UserLoggedIn',
  payload: { seq },
  metadata: { source: 'test', user_id: uuid() },
});

interface Outcome {
  settled: boolean;
  value?: unknown;
  error?: unknown;
}

/** Follows a promise from now on (so that its rejection is handled): whether it settled, and how. */
function track(promise: Promise<unknown>): Outcome {
  const outcome: Outcome = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { settled: true, value }),
    (error: unknown) => Object.assign(outcome, { settled: true, error }),
  );
  return outcome;
}

describe('close({ timeoutMs }) and the calls waiting on the bus', () => {
  it('rejects waiting emits, emitMany calls and flush() with BusClosedError, and counts waiting posts', async () => {
    const dir = tempDir();
    try {
      const bus = await createBus({
        store: { kind: 'lmdb', path: dir.file('store') },
        // Each handler waits until close() aborts it: the two events accepted stay pending for ever.
        consumers: [{ module: fixture('signal-waiter'), options: { out: dir.file('waiter.jsonl') } }],
        pool: { minThreads: 1, maxThreads: 1 },
        delivery: { handlerTimeoutMs: 600_000, maxAttempts: 1 },
        backpressure: { maxPending: 2, onOverflow: 'wait' },
        dispatch: { maxBatch: 1 },
      });
      const warnings: string[] = [];
      bus.on('warning', (message) => warnings.push(message));
      const accepted = [bus.emit(login(0)), bus.emit(login(1))];
      await Promise.all(accepted);
      assert.equal(bus.pending, 2);

      // No room: these wait.
      const waitingEmit = track(bus.emit(login(2)));
      const waitingMany = track(bus.emitMany([login(3), login(4)]));
      assert.equal(bus.post(login(5)), null, 'a post waiting for room returns null, like an accepted one');
      const flushed = track(bus.flush());
      await nextTurn();
      assert.equal(waitingEmit.settled, false);
      assert.equal(bus.pending, 2, 'nothing waiting was accepted');

      await bus.close({ timeoutMs: 200 });

      for (const [what, promise] of [
        ['the waiting emit', waitingEmit],
        ['the waiting emitMany', waitingMany],
        ['flush()', flushed],
      ] as const) {
        assert.ok(promise.error instanceof BusClosedError, `${what} rejected with BusClosedError: ${JSON.stringify(promise)}`);
        assert.equal(promise.error.code, 'ERR_EVENTRAIL_CLOSED');
      }
      const warning = warnings.find((w) => w.includes('gave up'));
      assert.ok(warning !== undefined, `a warning says what was given up: ${warnings.join(' | ')}`);
      assert.match(warning, /with 2 events not handled/);
      assert.match(warning, /4 events waiting for room were not accepted \(1 of them posted/);
      assert.equal(metricValue(await bus.metrics(), 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_CLOSED"}'), 4);

      // Nothing of what waited was stored: a new bus on the store holds the two accepted events only.
      const again = await createBus({ store: { kind: 'lmdb', path: dir.file('store') } });
      try {
        const stored: number[] = [];
        for await (const e of again.replay()) stored.push((e.payload as { seq: number }).seq);
        assert.deepEqual(stored, [0, 1]);
      } finally {
        await again.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('resolves only once the appends started before the give-up have settled, and their emits with them', async () => {
    const dir = tempDir();
    try {
      const store = { kind: 'lmdb', path: dir.file('store') } as const;
      const bus = await createBus({
        store,
        consumers: [{ module: fixture('signal-waiter'), options: { out: dir.file('waiter.jsonl') } }],
        pool: { minThreads: 1, maxThreads: 1 },
        delivery: { handlerTimeoutMs: 600_000, maxAttempts: 1 },
        // One batch, committed by close() itself (it commits what is gathering before it waits).
        dispatch: { lingerMs: 60_000, maxBatch: 65_535 },
        backpressure: { maxPending: 65_535 },
      });
      // Big enough that the append is still on its way when a zero timeout runs out.
      const blob = 'x'.repeat(4096);
      const receipts: Outcome[] = [];
      for (let seq = 0; seq < 2000; seq++) receipts.push(track(bus.emit({ ...login(seq), payload: { seq, blob } })));
      await bus.close({ timeoutMs: 0 });
      const stored = receipts.filter((o) => o.settled && (o.value as Receipt).position !== undefined).length;
      assert.equal(stored, receipts.length, `every emit heard of its append before close() resolved: ${JSON.stringify(receipts[0])}`);

      const again = await createBus({ store });
      try {
        let count = 0;
        for await (const _ of again.replay()) count++;
        assert.equal(count, receipts.length);
      } finally {
        await again.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('applies an append in flight before the last checkpoint and the store close: no write to a closed store', async () => {
    const dir = tempDir();
    try {
      const options = {
        store: { kind: 'lmdb', path: dir.file('store') },
        // The checkpoint is written as soon as a group finishes: an all-duplicate batch finishes when applied.
        checkpoint: { intervalMs: 0 },
        dispatch: { lingerMs: 60_000, maxBatch: 65_535 },
        backpressure: { maxPending: 65_535 },
      } as const;
      const blob = 'x'.repeat(4096);
      const inputs = Array.from({ length: 4000 }, (_, seq) => ({ ...login(seq), event_id: uuid(), payload: { seq, blob } }));
      const first = await createBus(options);
      await first.emitMany(inputs);
      await first.close();

      const bus = await createBus(options);
      const warnings: string[] = [];
      bus.on('warning', (message) => warnings.push(message));
      // One batch of duplicates, committed by close() itself; a zero timeout gives up before it is applied.
      const receipts = inputs.map((input) => track(bus.emit(input)));
      await bus.close({ timeoutMs: 0 });
      assert.deepEqual(
        warnings.filter((w) => !w.includes('gave up')),
        [],
        'nothing was written to the closed store',
      );
      assert.ok(
        receipts.every((o) => o.settled && (o.value as Receipt).duplicate === true),
        `every duplicate emit heard of its append before close() resolved: ${JSON.stringify(receipts[0]?.error ?? receipts[0])}`,
      );
    } finally {
      dir.remove();
    }
  });
});
