/**
 * Overload: a producer that emits faster than the consumer handles.
 * backpressure.maxPending bounds what the bus holds, so memory stays flat
 * however many events go through; 'wait' holds the excess in emit order
 * (per-key order kept), 'reject' turns it away with a coded error and loses
 * nothing it accepted. Real workers and real lmdb.
 *
 * How far the consumer gets is set by counts, not by how fast this machine
 * is: the consumer (Gated) handles event `n` only once the test's gate is
 * open past it, and the producer opens it to LAG (> maxPending) events behind
 * the emit it is making. So before emit i at most i - LAG events are handled,
 * the other accepted ones are pending, and from the maxPending-th emit on
 * every emit finds pending at the bound: under 'wait' exactly N - maxPending
 * emits must wait, under 'reject' some must be rejected. The producer keeps
 * at most WINDOW receipts outstanding (its own memory stays bounded); LAG is
 * small enough that the events it waits for can always be handled.
 * Every test counts exactly what was stored (replay), delivered (by event id,
 * once each) and dead-lettered (none).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BroadcastChannel } from 'node:worker_threads';
import { BackpressureError, EventrailError, type EventBus, type Receipt } from '../../src/index.js';
import { GATE_CHANNEL, type GateMessage } from '../fixtures/gated.js';
import { fixture, metricValue, uuid, withBus, type Recorder } from '../helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MAX_PENDING = 1000;
/** At most this many emits in flight (not yet durable). */
const WINDOW = 500;
/** The consumer may handle events up to this many emits behind the producer: more than maxPending. */
const LAG = 1100;
/** The gate opens in steps of this many events (one message to the workers per step). */
const STEP = 50;
/**
 * lanes × maxBatch of the 'wait' buses: a batch is released whole once handled, and each lane has one in
 * flight, so at most this many handled events are not yet released (with lanes ≤ the pool's task slots).
 */
const UNRELEASED = 256;
// The receipt the producer awaits (emit i - WINDOW) needs i - WINDOW - maxPending events released; the gate lets
// i - LAG - STEP be handled, of which all but UNRELEASED are released.
assert.ok(LAG > MAX_PENDING && LAG + STEP + UNRELEASED < MAX_PENDING + WINDOW);
/** ~550 bytes encoded with the envelope. */
const PAD = 'p'.repeat(400);
const MB = 1024 * 1024;

/** Heap and off-heap (Buffers, the codec's arenas) memory after a full collection. */
function memory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Event `n` of the test (the gate's count); `seq` counts per key when the test checks per-key order. */
const event = (n: number, user: string, seq = n) => ({
  event_type: 'SessionExtended' as const,
  payload: { n, seq, key: user, pad: PAD },
  metadata: { source: 'overload-test', user_id: user },
});

/** The test's end of the Gated fixture's gate: the consumer in every worker handles event `n` once `n` is below `opened`. */
class Gate {
  #opened = 0;
  readonly #channel = new BroadcastChannel(GATE_CHANNEL);

  constructor() {
    // A worker asks where the gate stands when it starts handling: it missed what was said before.
    this.#channel.onmessage = (message) => {
      if ('hello' in (message as { data: GateMessage }).data) this.#channel.postMessage({ open: this.#opened } satisfies GateMessage);
    };
  }

  open(n: number): void {
    if (n <= this.#opened) return;
    this.#opened = n;
    this.#channel.postMessage({ open: n } satisfies GateMessage);
  }

  /** Opens the gate LAG events behind emit `n`, a STEP at a time. */
  trail(n: number): void {
    this.open(Math.floor((n - LAG) / STEP) * STEP);
  }

  /** An open channel keeps the process alive. */
  close(): void {
    this.#channel.close();
  }
}

/** Runs `body` with a fresh gate, closed afterwards whatever happens. */
async function withGate<T>(body: (gate: Gate) => Promise<T>): Promise<T> {
  const gate = new Gate();
  try {
    return await body(gate);
  } finally {
    gate.close();
  }
}

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
 * Emits events `first` to `first + n - 1` in order, with at most WINDOW
 * receipts outstanding (it awaits the receipt of emit i - WINDOW before
 * making emit i; waiting emits are accepted in order, so receipts resolve in
 * order), opening `gate` LAG events behind each emit and fully at the end.
 * Receipts are kept only when `keep` is set (the memory test must not hold
 * 100k of them); `each` runs every 10 000 emits.
 */
async function produce(
  bus: EventBus,
  gate: Gate,
  first: number,
  n: number,
  make: (n: number) => ReturnType<typeof event>,
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
    gate.trail(first + i);
    const slot = i % WINDOW;
    if (i >= WINDOW) await settle(window[slot]!);
    const pending = bus.pending;
    if (pending >= MAX_PENDING) waited++;
    maxPending = Math.max(maxPending, pending);
    window[slot] = bus.emit(make(first + i));
    if (each !== undefined && i % 10_000 === 9_999) each();
  }
  gate.open(first + n);
  for (let i = Math.max(0, n - WINDOW); i < n; i++) await settle(window[i % WINDOW]!);
  return { receipts, count, waited, maxPending };
}

/** The ids of fresh events' receipts (a duplicate receipt would name an event stored before). */
function ids(receipts: readonly Receipt[]): string[] {
  assert.ok(
    receipts.every((r) => !r.duplicate),
    'no receipt is a duplicate',
  );
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
  assert.equal(metricValue(await bus.metrics(), 'eventrail_deliveries_total{consumer="Gated"}'), ids.length);

  assert.deepEqual(await bus.deadLetters.list(), [], 'no dead letters');
  assert.equal(metricValue(await bus.metrics(), 'eventrail_dead_letters_total{consumer="Gated"}') ?? 0, 0);
  assert.equal(bus.pending, 0);
}

describe('overload', { timeout: 180_000 }, () => {
  it(`'wait': 100k events through maxPending ${MAX_PENDING}: memory stays flat, every event stored and handled once`, async (t) => {
    await withGate((gate) =>
      withBus(
        (dir) => ({
          store: { kind: 'lmdb', path: dir.file('store') },
          consumers: [fixture('gated')],
          pool: { maxThreads: 1 },
          // One lane: a lane also keeps up to a few thousand handled events referenced until it compacts its
          // queue, which would be most of the memory measured here with several.
          dispatch: { lanes: 1, maxBatch: UNRELEASED },
          backpressure: { maxPending: MAX_PENDING, onOverflow: 'wait' },
        }),
        async ({ bus, out }) => {
          const users = Array.from({ length: 8 }, () => uuid());
          const make = (n: number) => event(n, users[n % users.length]!);
          // Warm-up through the same path: JIT, arenas, lmdb pages and the worker are all warm before the baseline.
          const WARM_UP = 10_000;
          const warmUp = await produce(bus, gate, 0, WARM_UP, make);
          await bus.flush();
          const N = 100_000;
          const baseline = memory();
          let peak = 0;
          const run = await produce(bus, gate, WARM_UP, N, make, {
            keep: false,
            each: () => (peak = Math.max(peak, memory() - baseline)),
          });
          await bus.flush();
          peak = Math.max(peak, memory() - baseline);

          t.diagnostic(`${run.waited} of ${N} emits waited; memory peak +${(peak / MB).toFixed(1)} MB over the baseline`);
          assert.equal(run.count, N, 'every emit was acknowledged');
          assert.equal(run.maxPending, MAX_PENDING, 'pending reached the bound and never passed it');
          assert.equal(run.waited, N - MAX_PENDING, 'every emit after the first maxPending found the bus full and waited');
          // Holding the events would take at least their padding, N * PAD.length bytes (~38 MB), and more with
          // the rest of each event and the objects around it; the bus holds about maxPending of them at a time.
          const held = N * PAD.length;
          assert.ok(
            peak < held / 2,
            `memory grew by ${(peak / MB).toFixed(1)} MB over ${N} events (holding their padding alone takes ${(held / MB).toFixed(1)} MB)`,
          );
          // The receipts were not kept (memory): the stored events are the acknowledged ones, counted, and the
          // warm-up's, by id; then stored, delivered and dead-lettered must match exactly as in the other tests.
          const stored = await storedIds(bus);
          assert.equal(stored.length, N + WARM_UP, 'stored exactly the acknowledged events');
          const warmUpIds = new Set(ids(warmUp.receipts));
          assert.equal(stored.filter((id) => warmUpIds.has(id)).length, WARM_UP);
          await assertExactCounts(bus, out, stored);
        },
      ),
    );
  });

  it("'wait' keeps per-key order and emit order under overload (2 threads, 4 lanes)", async (t) => {
    await withGate((gate) =>
      withBus(
        (dir) => ({
          store: { kind: 'lmdb', path: dir.file('store') },
          consumers: [fixture('gated')],
          pool: { maxThreads: 2, concurrentTasksPerWorker: 2 },
          dispatch: { lanes: 4, maxBatch: UNRELEASED / 4 },
          backpressure: { maxPending: MAX_PENDING, onOverflow: 'wait' },
        }),
        async ({ bus, out }) => {
          const users = Array.from({ length: 10 }, () => uuid());
          const N = 20_000;
          const run = await produce(bus, gate, 0, N, (n) => event(n, users[n % users.length]!, Math.floor(n / users.length)));
          await bus.flush();
          t.diagnostic(`${run.waited} of ${N} emits waited`);
          assert.equal(run.maxPending, MAX_PENDING, 'pending reached the bound and never passed it');
          assert.equal(run.waited, N - MAX_PENDING, 'every emit after the first maxPending found the bus full and waited');
          const positions = run.receipts.map((r) => r.position);
          assert.deepEqual([...positions].sort(), positions, 'waiting emits were accepted and stored in emit order');

          const delivered = out.read();
          assert.equal(delivered.length, N, 'each event delivered once');
          assert.deepEqual(new Set(delivered.map((d) => d.event_id)), new Set(run.receipts.map((r) => r.event_id)));
          for (const user of users) {
            const seqs = delivered.filter((d) => d.key === user).map((d) => d.seq);
            assert.deepEqual(
              seqs,
              Array.from({ length: N / users.length }, (_, k) => k),
              `user ${user} in emit order`,
            );
          }
          await assertExactCounts(bus, out, ids(run.receipts));
        },
      ),
    );
  });

  it("'reject': the excess is rejected with ERR_EVENTRAIL_BACKPRESSURE; accepted receipts == delivered == stored, exactly", async (t) => {
    await withGate((gate) =>
      withBus(
        (dir) => ({
          store: { kind: 'lmdb', path: dir.file('store') },
          consumers: [fixture('gated')],
          pool: { maxThreads: 1 },
          dispatch: { maxBatch: 128 },
          backpressure: { maxPending: MAX_PENDING, onOverflow: 'reject' },
        }),
        async ({ bus, out }) => {
          const users = Array.from({ length: 8 }, () => uuid());
          const N = 30_000;
          /** Producers, each with one call in flight (a receipt resolves once durable, whatever the consumer does). */
          const PRODUCERS = 64;
          const GROUP = 10;
          const accepted: Receipt[] = [];
          let rejectedEvents = 0;
          let rejectedCalls = 0;
          let maxPending = 0;
          let next = 0;
          const producer = async () => {
            while (next < N) {
              // Single emits and emitMany groups of 10, mixed; a group is accepted whole or rejected whole.
              const size = next % 100 === 0 ? GROUP : 1;
              const first = next;
              next += size;
              // Rejected events count too: the consumer trails every event tried, so it stays LAG behind.
              gate.trail(first);
              const inputs = Array.from({ length: size }, (_, k) => event(first + k, users[(first + k) % users.length]!));
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
          gate.open(N);
          await bus.flush();

          t.diagnostic(`${accepted.length} accepted, ${rejectedEvents} rejected in ${rejectedCalls} calls`);
          assert.ok(maxPending <= MAX_PENDING, `pending reached ${maxPending}`);
          assert.equal(accepted.length + rejectedEvents, N, 'every event was either accepted or rejected');
          // Had none been rejected, the LAG (> maxPending) events the consumer may not handle yet would all be pending.
          assert.ok(rejectedEvents > 0, 'the producer outran the consumer');
          // The first maxPending events fit whatever the consumer did (the first group of 10 after them is event 1000).
          assert.ok(accepted.length >= MAX_PENDING, `at least maxPending events were accepted (${accepted.length})`);
          await assertExactCounts(bus, out, ids(accepted));

          const metrics = await bus.metrics();
          assert.equal(
            metricValue(metrics, 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_BACKPRESSURE"}'),
            rejectedCalls,
            'one rejection counted per call',
          );
        },
      ),
    );
  });
});
