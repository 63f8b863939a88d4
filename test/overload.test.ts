/**
 * Overload: a producer that emits several times faster than the consumer can
 * handle. backpressure.maxPending bounds what the bus holds, so memory stays
 * flat however many events go through; 'wait' holds the excess in emit order
 * (per-key order kept), 'reject' turns it away with a coded error and loses
 * nothing it accepted. Real workers and real lmdb; the consumer (Busy) spins
 * for a time the test chooses: ten times what an emit costs the producer on
 * this machine, capped at 60 µs so the run stays short on a slow or loaded
 * machine (where the factor is then smaller). That the producer did outrun the
 * consumer is asserted, not assumed: pending reaches maxPending.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BackpressureError, createBus, EventrailError, type EventBus, type Receipt } from '../src/index.js';
import { fixture, metricValue, tempDir, uuid, withBus } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MAX_PENDING = 1000;
/** ~300 bytes encoded with the envelope. */
const PAD = 'p'.repeat(150);
const MB = 1024 * 1024;

/** Heap and off-heap (Buffers, the codec's arenas) memory after a full collection. */
function memory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const event = (seq: number, user: string, busyUs: number) => ({
  event_type: 'SessionExtended' as const,
  payload: { seq, key: user, busyUs, pad: PAD },
  metadata: { source: 'overload-test', user_id: user },
});

/**
 * Microseconds an emit costs the producer on this machine now (awaiting every
 * 1000th), measured on the bus under test with a consumer that does nothing:
 * the consumer is then made ten times slower than that.
 */
async function producerCostUs(bus: EventBus, user: string): Promise<number> {
  const n = 5000;
  const started = performance.now();
  let last: Promise<Receipt> = Promise.resolve({} as Receipt);
  for (let i = 0; i < n; i++) {
    last = bus.emit(event(i, user, 0));
    if (i % 1000 === 999) await last;
  }
  await last;
  const us = ((performance.now() - started) * 1000) / n;
  await bus.flush();
  return us;
}

async function count(source: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of source) n++;
  return n;
}

describe('overload', { timeout: 180_000 }, () => {
  it(`'wait': 100k events through maxPending ${MAX_PENDING}: memory stays flat, every event stored and handled once`, async () => {
    delete process.env.RECORDER_OUT;
    const dir = tempDir();
    const bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [fixture('busy')],
      pool: { maxThreads: 1 },
      dispatch: { maxBatch: 256 },
      backpressure: { maxPending: MAX_PENDING, onOverflow: 'wait' },
    });
    try {
      const users = Array.from({ length: 8 }, () => uuid());
      // Warm-up and calibration in one: JIT, arenas, lmdb pages and the worker are all warm before the baseline.
      const costUs = await producerCostUs(bus, users[0]!);
      // Bounded so the test takes seconds on a loaded machine; still several times the producer's cost.
      const busyUs = Math.min(60, Math.max(10, Math.round(10 * costUs)));
      const N = 100_000;
      const baseline = memory();
      let peak = 0;
      let maxPending = 0;
      let accepted = 0;
      const failures: unknown[] = [];
      let last: Promise<void> = Promise.resolve();
      for (let i = 0; i < N; i++) {
        // Only every 1000th emit is awaited: the rest pile up as the bus lets them.
        last = bus.emit(event(i, users[i % users.length]!, busyUs)).then(
          () => void accepted++,
          (err: unknown) => void failures.push(err),
        );
        maxPending = Math.max(maxPending, bus.pending);
        if (i % 1000 === 999) await last;
        if (i % 10_000 === 9_999) peak = Math.max(peak, memory() - baseline);
      }
      await last;
      await bus.flush();
      peak = Math.max(peak, memory() - baseline);

      assert.deepEqual(failures, []);
      assert.equal(accepted, N);
      assert.equal(maxPending, MAX_PENDING, 'the producer outran the consumer: backpressure held it at maxPending');
      // Holding every event would take far more: their bytes alone are ~30 MB, the objects around them several times that.
      assert.ok(peak < 30 * MB, `memory grew by ${(peak / MB).toFixed(1)} MB over 100k events`);
      const handled = metricValue(await bus.metrics(), 'eventrail_deliveries_total{consumer="Busy"}');
      assert.equal(handled, N + 5000, 'every event handled once');
      assert.equal(await count(bus.replay()), N + 5000, 'every event stored');
      assert.equal(bus.pending, 0);
    } finally {
      await bus.close();
      dir.remove();
    }
  });

  it("'wait' keeps per-key order and emit order under overload (2 threads, 4 lanes)", async () => {
    await withBus((dir) => ({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [fixture('busy')],
      pool: { maxThreads: 2, concurrentTasksPerWorker: 2 },
      dispatch: { lanes: 4, maxBatch: 64 },
      backpressure: { maxPending: MAX_PENDING, onOverflow: 'wait' },
    }), async ({ bus, out }) => {
      const users = Array.from({ length: 10 }, () => uuid());
      const costUs = await producerCostUs(bus, uuid());
      const busyUs = Math.min(60, Math.max(10, Math.round(10 * costUs)));
      const before = out.read().length;
      const N = 20_000;
      const receipts: Array<Promise<Receipt>> = [];
      let maxPending = 0;
      for (let i = 0; i < N; i++) {
        const user = users[i % users.length]!;
        receipts.push(bus.emit(event(Math.floor(i / users.length), user, busyUs)));
        maxPending = Math.max(maxPending, bus.pending);
        if (i % 1000 === 999) await receipts[i];
      }
      const all = await Promise.all(receipts);
      await bus.flush();
      assert.equal(maxPending, MAX_PENDING, 'backpressure engaged');
      const positions = all.map((r) => r.position);
      assert.deepEqual([...positions].sort(), positions, 'waiting emits were accepted and stored in emit order');

      const delivered = out.read().slice(before);
      assert.equal(delivered.length, N, 'each event delivered once');
      assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(all.map((r) => r.event_id)));
      for (const user of users) {
        const seqs = delivered.filter((d) => d.key === user).map((d) => d.seq);
        assert.deepEqual(seqs, Array.from({ length: N / users.length }, (_, k) => k), `user ${user} in emit order`);
      }
    });
  });

  it("'reject': the excess is rejected with ERR_EVENTRAIL_BACKPRESSURE; accepted receipts == delivered == stored, exactly", async () => {
    await withBus((dir) => ({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [fixture('busy')],
      pool: { maxThreads: 1 },
      dispatch: { maxBatch: 128 },
      backpressure: { maxPending: MAX_PENDING, onOverflow: 'reject' },
    }), async ({ bus, out }) => {
      const users = Array.from({ length: 8 }, () => uuid());
      const N = 30_000;
      const accepted: Receipt[] = [];
      let rejectedEvents = 0;
      let rejectedCalls = 0;
      let maxPending = 0;
      const settle = (p: Promise<Receipt[]>, size: number) =>
        p.then(
          (receipts) => {
            assert.equal(receipts.length, size);
            accepted.push(...receipts);
          },
          (err: unknown) => {
            assert.ok(err instanceof BackpressureError, `a BackpressureError, got ${String(err)}`);
            assert.ok(err instanceof EventrailError && err.code === 'ERR_EVENTRAIL_BACKPRESSURE');
            rejectedEvents += size;
            rejectedCalls++;
          },
        );
      const pending: Array<Promise<void>> = [];
      let seq = 0;
      while (seq < N) {
        // Single emits and emitMany groups of 10, mixed; a group is accepted whole or rejected whole.
        const size = seq % 100 === 0 ? 10 : 1;
        const inputs = Array.from({ length: size }, (_, k) => event(seq + k, users[(seq + k) % users.length]!, 40));
        pending.push(size === 1 ? settle(bus.emit(inputs[0]!).then((r) => [r]), 1) : settle(bus.emitMany(inputs), size));
        seq += size;
        maxPending = Math.max(maxPending, bus.pending);
        // Let the consumer drain now and then, so some later emits fit again.
        if (pending.length % 2000 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await Promise.all(pending);
      await bus.flush();

      assert.ok(maxPending <= MAX_PENDING, `pending reached ${maxPending}`);
      assert.equal(accepted.length + rejectedEvents, N, 'every event was either accepted or rejected');
      assert.ok(rejectedEvents > 0, 'the producer outran the consumer');
      assert.ok(accepted.length >= MAX_PENDING, `at least maxPending events were accepted (${accepted.length})`);

      const acceptedIds = new Set(accepted.map((r) => r.event_id));
      assert.equal(acceptedIds.size, accepted.length);
      const delivered = out.read();
      assert.equal(delivered.length, accepted.length, 'delivered exactly the accepted events, once each');
      assert.deepEqual(new Set(delivered.map((d) => d.event_id)), acceptedIds);

      const stored: string[] = [];
      for await (const e of bus.replay()) stored.push(e.event_id);
      assert.equal(stored.length, accepted.length, 'stored exactly the accepted events');
      assert.deepEqual(new Set(stored), acceptedIds);

      const metrics = await bus.metrics();
      assert.equal(metricValue(metrics, 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_BACKPRESSURE"}'), rejectedCalls, 'one rejection counted per call');
    });
  });
});

