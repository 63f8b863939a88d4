/**
 * Overload: a producer that emits several times faster than the consumer can
 * handle. backpressure.maxPending bounds what the bus holds, so memory stays
 * flat however many events go through; 'wait' holds the excess in emit order
 * (per-key order kept), 'reject' turns it away with a coded error and loses
 * nothing it accepted. Real workers and real lmdb; the consumer (Busy) spins
 * for a time the test chooses: ten times what an emit costs the producer on
 * this machine, capped at 60 µs so the run stays short on a slow or loaded
 * machine (where the factor is then smaller).
 *
 * That the producer did outrun the consumer is asserted, not assumed, and in
 * a way the producer alone cannot bring about: it never has more than WINDOW
 * (< maxPending) emits whose receipts have not resolved, and a receipt
 * resolves once the event is durable. `bus.pending` counts events accepted and
 * not yet handled, so it can reach maxPending only when at least
 * maxPending - WINDOW durable events were waiting for the consumer. An emit
 * made while `bus.pending` is at the bound cannot be accepted at once (the
 * intake's rule): those are counted, and most emits must be among them.
 * Every test counts exactly what was stored (replay), delivered (by event id,
 * once each) and dead-lettered (none).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BackpressureError, createBus, EventrailError, type EventBus, type Receipt } from '../src/index.js';
import { fixture, metricValue, recorder, tempDir, uuid, withBus, type Recorder } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MAX_PENDING = 1000;
/** At most this many emits in flight (not yet durable): half the bound, so the producer alone cannot fill it. */
const WINDOW = 500;
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

interface Produced {
  /** The receipts, in emit order, when asked to keep them. */
  readonly receipts: Receipt[];
  readonly count: number;
  /** Emits made while bus.pending was at maxPending: none of them could be accepted at once. */
  readonly waited: number;
  /** The highest bus.pending seen just before an emit. */
  readonly maxPending: number;
}

/**
 * Emits `n` events in order, with at most WINDOW receipts outstanding (it
 * awaits the receipt of emit i - WINDOW before making emit i; waiting emits
 * are accepted in order, so receipts resolve in order). Receipts are kept
 * only when `keep` is set (the memory test must not hold 100k of them);
 * `each` runs every 10 000 emits.
 */
async function produce(
  bus: EventBus,
  n: number,
  make: (i: number) => ReturnType<typeof event>,
  { keep = true, each }: { keep?: boolean; each?: () => void } = {},
): Promise<Produced> {
  const window = new Array<Promise<Receipt>>(WINDOW);
  const receipts: Receipt[] = [];
  let count = 0;
  let waited = 0;
  let maxPending = 0;
  const settle = async (p: Promise<Receipt>) => {
    const receipt = await p;
    count++;
    if (keep) receipts.push(receipt);
  };
  for (let i = 0; i < n; i++) {
    const slot = i % WINDOW;
    if (i >= WINDOW) await settle(window[slot]!);
    const pending = bus.pending;
    if (pending >= MAX_PENDING) waited++;
    maxPending = Math.max(maxPending, pending);
    window[slot] = bus.emit(make(i));
    if (each !== undefined && i % 10_000 === 9_999) each();
  }
  for (let i = Math.max(0, n - WINDOW); i < n; i++) await settle(window[i % WINDOW]!);
  return { receipts, count, waited, maxPending };
}

/**
 * Microseconds an emit costs the producer on this machine now, measured on
 * the bus under test with a consumer that does nothing and the producer the
 * test uses: the consumer is then made ten times slower than that.
 */
async function producerCostUs(bus: EventBus, user: string): Promise<{ us: number; receipts: Receipt[] }> {
  const n = 5000;
  const started = performance.now();
  const { receipts } = await produce(bus, n, (i) => event(i, user, 0));
  const us = ((performance.now() - started) * 1000) / n;
  await bus.flush();
  return { us, receipts };
}

/** The ids of fresh events' receipts (a duplicate receipt would name an event stored before). */
function ids(receipts: readonly Receipt[]): string[] {
  assert.ok(receipts.every((r) => !r.duplicate), 'no receipt is a duplicate');
  return receipts.map((r) => r.event_id);
}

/** Every stored event id, in store order (a full replay). */
async function storedIds(bus: EventBus): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of bus.replay()) ids.push(e.event_id);
  return ids;
}

/** Stored, delivered and dead-lettered: exactly the acknowledged events (by id), each once, and no dead letter. */
async function assertExactCounts(bus: EventBus, out: Recorder, ids: readonly string[]): Promise<void> {
  const expected = new Set(ids);
  assert.equal(expected.size, ids.length, 'every acknowledged event is a distinct event');

  const stored = await storedIds(bus);
  assert.equal(stored.length, ids.length, `stored exactly the ${ids.length} acknowledged events`);
  assert.deepEqual(new Set(stored), expected);

  const copies = new Map<string, number>();
  for (const d of out.read()) copies.set(d.event_id, (copies.get(d.event_id) ?? 0) + 1);
  assert.equal(copies.size, ids.length, `delivered exactly the ${ids.length} acknowledged events`);
  for (const id of ids) assert.equal(copies.get(id), 1, `event ${id} delivered exactly once`);
  assert.equal(metricValue(await bus.metrics(), 'eventrail_deliveries_total{consumer="Busy"}'), ids.length);

  assert.deepEqual(await bus.deadLetters.list(), [], 'no dead letters');
  assert.equal(metricValue(await bus.metrics(), 'eventrail_dead_letters_total{consumer="Busy"}') ?? 0, 0);
  assert.equal(bus.pending, 0);
}

describe('overload', { timeout: 180_000 }, () => {
  it(`'wait': 100k events through maxPending ${MAX_PENDING}: memory stays flat, every event stored and handled once`, async (t) => {
    const dir = tempDir();
    const out = recorder(dir);
    const bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [out.consumer('busy')],
      pool: { maxThreads: 1 },
      dispatch: { maxBatch: 256 },
      backpressure: { maxPending: MAX_PENDING, onOverflow: 'wait' },
    });
    try {
      const users = Array.from({ length: 8 }, () => uuid());
      // Warm-up and calibration in one: JIT, arenas, lmdb pages and the worker are all warm before the baseline.
      const calibration = await producerCostUs(bus, users[0]!);
      // Bounded so the test takes seconds on a loaded machine; still several times the producer's cost.
      const busyUs = Math.min(60, Math.max(10, Math.round(10 * calibration.us)));
      const N = 100_000;
      const baseline = memory();
      let peak = 0;
      const run = await produce(bus, N, (i) => event(i, users[i % users.length]!, busyUs), {
        keep: false,
        each: () => (peak = Math.max(peak, memory() - baseline)),
      });
      await bus.flush();
      peak = Math.max(peak, memory() - baseline);

      t.diagnostic(`consumer ${busyUs} µs/event; ${run.waited} of ${N} emits waited; memory peak +${(peak / MB).toFixed(1)} MB`);
      assert.equal(run.count, N, 'every emit was acknowledged');
      assert.equal(run.maxPending, MAX_PENDING, 'pending reached the bound: the consumer lagged by at least maxPending - WINDOW durable events');
      assert.ok(run.waited > N / 2, `most emits waited for room (${run.waited} of ${N}): the producer outran the consumer`);
      // Holding every event would take far more: their bytes alone are ~30 MB, the objects around them several times that.
      assert.ok(peak < 30 * MB, `memory grew by ${(peak / MB).toFixed(1)} MB over 100k events`);
      // The receipts were not kept (memory): the stored events are the acknowledged ones, counted, and the
      // calibration's, by id; then stored, delivered and dead-lettered must match exactly as in the other tests.
      const stored = await storedIds(bus);
      assert.equal(stored.length, N + calibration.receipts.length, 'stored exactly the acknowledged events');
      const calibrationIds = new Set(calibration.receipts.map((r) => r.event_id));
      assert.equal(stored.filter((id) => calibrationIds.has(id)).length, calibrationIds.size);
      await assertExactCounts(bus, out, stored);
    } finally {
      await bus.close();
      dir.remove();
    }
  });

  it("'wait' keeps per-key order and emit order under overload (2 threads, 4 lanes)", async (t) => {
    await withBus((dir) => ({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [fixture('busy')],
      pool: { maxThreads: 2, concurrentTasksPerWorker: 2 },
      dispatch: { lanes: 4, maxBatch: 64 },
      backpressure: { maxPending: MAX_PENDING, onOverflow: 'wait' },
    }), async ({ bus, out }) => {
      const users = Array.from({ length: 10 }, () => uuid());
      const calibration = await producerCostUs(bus, uuid());
      const busyUs = Math.min(60, Math.max(10, Math.round(10 * calibration.us)));
      const before = out.read().length;
      const N = 20_000;
      const run = await produce(bus, N, (i) => event(Math.floor(i / users.length), users[i % users.length]!, busyUs));
      await bus.flush();
      t.diagnostic(`consumer ${busyUs} µs/event; ${run.waited} of ${N} emits waited`);
      assert.equal(run.maxPending, MAX_PENDING, 'backpressure engaged: the consumer lagged');
      assert.ok(run.waited > N / 2, `most emits waited for room (${run.waited} of ${N})`);
      const positions = run.receipts.map((r) => r.position);
      assert.deepEqual([...positions].sort(), positions, 'waiting emits were accepted and stored in emit order');

      const delivered = out.read().slice(before);
      assert.equal(delivered.length, N, 'each event delivered once');
      assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(run.receipts.map((r) => r.event_id)));
      for (const user of users) {
        const seqs = delivered.filter((d) => d.key === user).map((d) => d.seq);
        assert.deepEqual(seqs, Array.from({ length: N / users.length }, (_, k) => k), `user ${user} in emit order`);
      }
      await assertExactCounts(bus, out, ids([...calibration.receipts, ...run.receipts]));
    });
  });

  it("'reject': the excess is rejected with ERR_EVENTRAIL_BACKPRESSURE; accepted receipts == delivered == stored, exactly", async (t) => {
    await withBus((dir) => ({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [fixture('busy')],
      pool: { maxThreads: 1 },
      dispatch: { maxBatch: 128 },
      backpressure: { maxPending: MAX_PENDING, onOverflow: 'reject' },
    }), async ({ bus, out }) => {
      const users = Array.from({ length: 8 }, () => uuid());
      const N = 30_000;
      /** Producers, each with one call in flight: at most PRODUCERS * GROUP (< maxPending) events are accepted and not yet durable. */
      const PRODUCERS = 64;
      const GROUP = 10;
      assert.ok(PRODUCERS * GROUP < MAX_PENDING);
      const accepted: Receipt[] = [];
      let rejectedEvents = 0;
      let rejectedCalls = 0;
      let maxPending = 0;
      let seq = 0;
      const producer = async () => {
        while (seq < N) {
          // Single emits and emitMany groups of 10, mixed; a group is accepted whole or rejected whole.
          const size = seq % 100 === 0 ? GROUP : 1;
          const first = seq;
          seq += size;
          const inputs = Array.from({ length: size }, (_, k) => event(first + k, users[(first + k) % users.length]!, 100));
          maxPending = Math.max(maxPending, bus.pending);
          try {
            const receipts = size === 1 ? [await bus.emit(inputs[0]!)] : await bus.emitMany(inputs);
            assert.equal(receipts.length, size);
            accepted.push(...receipts);
          } catch (err) {
            assert.ok(err instanceof BackpressureError, `a BackpressureError, got ${String(err)}`);
            assert.ok(err instanceof EventrailError && err.code === 'ERR_EVENTRAIL_BACKPRESSURE');
            rejectedEvents += size;
            rejectedCalls++;
            // A rejection settles at once: yield to the event loop, or the producers would starve the commits and the workers' replies.
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
      };
      await Promise.all(Array.from({ length: PRODUCERS }, producer));
      await bus.flush();

      t.diagnostic(`${accepted.length} accepted, ${rejectedEvents} rejected in ${rejectedCalls} calls`);
      assert.ok(maxPending <= MAX_PENDING, `pending reached ${maxPending}`);
      assert.equal(accepted.length + rejectedEvents, N, 'every event was either accepted or rejected');
      // With at most PRODUCERS * GROUP events not yet durable, a rejection means the consumer was behind by the rest of the bound.
      assert.ok(rejectedEvents > 0, 'the producer outran the consumer');
      assert.ok(accepted.length >= MAX_PENDING, `at least maxPending events were accepted (${accepted.length})`);
      await assertExactCounts(bus, out, ids(accepted));

      const metrics = await bus.metrics();
      assert.equal(metricValue(metrics, 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_BACKPRESSURE"}'), rejectedCalls, 'one rejection counted per call');
    });
  });
});
