/**
 * Backpressure: at most backpressure.maxPending events are accepted and not
 * yet handled. Past that, 'reject' fails the emit with BackpressureError and
 * 'wait' holds it until there is room, in emit order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackpressureError, type BusOptions, type EventBus, type Receipt } from '../src/index.js';
import { fixture, uuid, withBus } from './helpers.js';

/** The Slow fixture taking 20 ms per event (it records into the file withBus gives it). */
const SLOW = { module: fixture('slow'), options: { ms: 20 } };

const MAX_PENDING = 8;

/** A bus whose one consumer (Slow) takes a while per event, so that emits outrun it. */
const options = (onOverflow: 'reject' | 'wait', pool: { concurrentTasksPerWorker?: number } = {}): BusOptions => ({
  store: { kind: 'none' },
  consumers: [SLOW],
  pool: { maxThreads: 1, ...pool },
  dispatch: { maxBatch: 4, lingerMs: 0 },
  backpressure: { maxPending: MAX_PENDING, onOverflow },
});

/**
 * bus.pending now and on every turn of the event loop until `work` settles:
 * each reply from a worker releases events and admits waiting ones in one
 * turn, so a turn that let pending past the bound is seen.
 */
async function samplePending<T>(bus: EventBus, work: Promise<T>): Promise<{ result: T; samples: number[] }> {
  const samples = [bus.pending];
  let settled = false;
  const sampling = (async () => {
    while (!settled) {
      await new Promise((resolve) => setImmediate(resolve));
      samples.push(bus.pending);
    }
  })();
  try {
    return { result: await work, samples };
  } finally {
    settled = true;
    await sampling;
  }
}

describe('backpressure', () => {
  it("'reject': emits past maxPending reject with BackpressureError; the accepted ones are all delivered", async () => {
    await withBus(options('reject'), async ({ bus, out }) => {
      const user = uuid();
      const outcomes: Array<Promise<{ ok: true; receipt: Receipt } | { ok: false; error: unknown }>> = [];
      let maxSeen = 0;
      // Emitted in one synchronous run: nothing can finish in between, so exactly MAX_PENDING fit.
      for (let seq = 0; seq < 30; seq++) {
        outcomes.push(
          bus.emit({ event_type: 'SessionExtended', payload: { seq }, metadata: { source: 'test', user_id: user } }).then(
            (receipt) => ({ ok: true as const, receipt }),
            (error: unknown) => ({ ok: false as const, error }),
          ),
        );
        maxSeen = Math.max(maxSeen, bus.pending);
      }
      const settled = await Promise.all(outcomes);
      const accepted = settled.flatMap((s) => (s.ok ? [s.receipt] : []));
      const rejected = settled.flatMap((s) => (s.ok ? [] : [s.error]));
      assert.equal(accepted.length, MAX_PENDING);
      assert.equal(rejected.length, 30 - MAX_PENDING);
      for (const error of rejected) {
        assert.ok(error instanceof BackpressureError, `a BackpressureError, got ${String(error)}`);
        assert.equal(error.code, 'ERR_EVENTRAIL_BACKPRESSURE');
        assert.match(error.message, /maxPending/);
      }
      assert.deepEqual(
        settled.map((s) => s.ok),
        Array.from({ length: 30 }, (_, i) => i < MAX_PENDING),
        'the first ones are accepted, the rest rejected',
      );
      assert.ok(maxSeen <= MAX_PENDING, `pending reached ${maxSeen}`);

      await bus.flush();
      const delivered = out.read();
      assert.equal(delivered.length, MAX_PENDING, 'every accepted event delivered, and nothing else');
      assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(accepted.map((r) => r.event_id)));
      assert.equal(bus.pending, 0);

      // Once drained, emits are accepted again.
      const later = await bus.emit({ event_type: 'SessionExtended', payload: { seq: 99 }, metadata: { source: 'test', user_id: user } });
      await bus.flush();
      assert.ok(out.read().some((d) => d.event_id === later.event_id));
    });
  });

  it("'reject': an emitMany that does not fit is rejected whole: none of it is accepted", async () => {
    await withBus(options('reject'), async ({ bus, out }) => {
      const user = uuid();
      const batch = (from: number, n: number) =>
        Array.from({ length: n }, (_, k) => ({
          event_type: 'SessionExtended' as const,
          payload: { seq: from + k },
          metadata: { source: 'test', user_id: user },
        }));
      const first = bus.emitMany(batch(0, 5));
      // 5 pending: 5 more do not fit.
      await assert.rejects(bus.emitMany(batch(100, 5)), BackpressureError);
      assert.ok(bus.pending <= MAX_PENDING, `pending is ${bus.pending}`);
      await first;
      await bus.flush();
      assert.deepEqual(
        out.read().map((d) => d.seq),
        [0, 1, 2, 3, 4],
        'the rejected emitMany left nothing behind',
      );
    });
  });

  it("'wait': 10 × maxPending emits without awaiting all resolve, all are delivered in order per key, pending stays ≤ maxPending", async () => {
    await withBus(options('wait', { concurrentTasksPerWorker: 4 }), async ({ bus, out }) => {
      const users = [uuid(), uuid(), uuid()];
      const total = 10 * MAX_PENDING;
      let maxSeen = 0;
      const sample = () => {
        maxSeen = Math.max(maxSeen, bus.pending);
      };
      const emits: Array<Promise<Receipt>> = [];
      for (let i = 0; i < total; i++) {
        const seq = Math.floor(i / users.length);
        const user = users[i % users.length]!;
        const emitted = bus.emit({ event_type: 'SessionExtended', payload: { seq }, metadata: { source: 'test', user_id: user } });
        sample();
        // Sample again every time an emit resolves, while the queue drains.
        emits.push(emitted.finally(sample));
      }
      assert.equal(bus.pending, MAX_PENDING, 'the first maxPending were accepted at once; the rest wait');
      const receipts = await Promise.all(emits);
      assert.equal(receipts.length, total);
      await bus.flush();
      assert.ok(maxSeen <= MAX_PENDING, `pending reached ${maxSeen}`);
      assert.equal(maxSeen, MAX_PENDING);

      const delivered = out.read();
      assert.equal(delivered.length, total);
      assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(receipts.map((r) => r.event_id)));
      for (const user of users) {
        const seqs = delivered.filter((d) => d.key === user).map((d) => d.seq);
        const expected = Array.from({ length: seqs.length }, (_, k) => k);
        assert.deepEqual(seqs, expected, `user ${user} in emit order`);
      }
      // Receipts of waiting emits resolve in emit order too: positions increase.
      const positions = receipts.map((r) => r.position);
      assert.deepEqual([...positions].sort(), positions);
    });
  });

  it("'wait' applies to emitMany as well, without breaking its order", async () => {
    await withBus(options('wait'), async ({ bus, out }) => {
      const user = uuid();
      const { result: all, samples } = await samplePending(
        bus,
        bus.emitMany(
          Array.from({ length: 3 * MAX_PENDING }, (_, seq) => ({
            event_type: 'SessionExtended' as const,
            payload: { seq },
            metadata: { source: 'test', user_id: user },
          })),
        ),
      );
      await bus.flush();
      assert.equal(samples[0], MAX_PENDING, 'the first maxPending were accepted at once; the rest wait');
      const over = samples.filter((p) => p > MAX_PENDING);
      assert.deepEqual(over, [], `pending stays <= ${MAX_PENDING} while the waiting events are admitted (${samples.length} samples)`);
      // The receipts resolve once the last events are admitted and stored: more than a maxPending of them waited for
      // room, so the bound was reached again after the first releases, not only at the start.
      assert.ok(samples.slice(1).includes(MAX_PENDING), `pending came back to the bound while draining: ${samples.join(' ')}`);
      assert.equal(all.length, 3 * MAX_PENDING);
      assert.deepEqual(
        out.read().map((d) => d.seq),
        Array.from({ length: 3 * MAX_PENDING }, (_, k) => k),
      );
    });
  });
});
