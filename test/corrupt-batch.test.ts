/**
 * A batch buffer that arrives truncated, garbled or with the wrong count is
 * reported by the worker as a coded `corrupt` outcome (no delivery made), and
 * never as a crash: the same worker goes on to handle a good batch. Runs the
 * real worker entry in a real Piscina, set up as createBus sets it up.
 *
 * Through the bus, the real path by which such bytes reach a worker is
 * recovery: it decodes each stored event on the main thread (undecodable
 * bytes are reported and skipped there) but does not check that what decoded
 * is an event, and dispatches the stored bytes as they are. Stored bytes that
 * decode to an event-like value the worker rejects (a timestamp that is not a
 * string, no payload) come back as the coded `corrupt` outcome, fail each
 * attempt, and end as dead letters with ERR_EVENTRAIL_CORRUPT_BATCH.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { Piscina } from 'piscina';
import { Codec } from '../src/codec.js';
import { createBus, type Event } from '../src/index.js';
import { openStore } from '../src/store/open.js';
import type { AppendItem } from '../src/store/store.js';
import { PROGRESS_SLOTS, type BatchResult, type BatchTask, type WorkerInit } from '../src/protocol.js';
import { fixture, metricValue, recorder, tempDir, uuid, type Recorder, type TempDir } from './helpers.js';

const CORRUPT = 'ERR_EVENTRAIL_CORRUPT_BATCH';

function event(seq: number): Event {
  return {
    event_id: uuid(),
    timestamp: '2026-01-31T12:00:00.123Z',
    event_type: seq % 2 === 0 ? 'SessionExtended' : { Custom: 'Pinged' },
    payload: { seq, note: 'x'.repeat(seq % 7) },
    metadata: { correlation_id: uuid(), causation_id: null, user_id: uuid(), tenant_id: null, source: 'corrupt-batch-test' },
  };
}

/** `count` events encoded back to back, as the dispatcher packs a batch. */
function encodeBatch(codec: Codec, events: readonly Event[]): Uint8Array {
  return Buffer.concat(events.map((e) => codec.encode(e)));
}

/** A task over a fresh buffer the test owns (the buffer is transferred). */
function task(bytes: Uint8Array, count: number, targets: Uint32Array | null = null): BatchTask {
  const buffer = new ArrayBuffer(bytes.length);
  new Uint8Array(buffer).set(bytes);
  const progress = new Int32Array(new SharedArrayBuffer(PROGRESS_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  return { kind: 'batch', buffer, count, targets, progress };
}

describe('corrupt batches in a worker', () => {
  const dir = tempDir();
  const out = recorder(dir);
  const codec = new Codec();
  let pool: Piscina;
  let workersCreated = 0;
  let poolErrors = 0;

  before(() => {
    const init: WorkerInit = {
      consumers: [{ url: pathToFileURL(fixture('recorder')).href, options: { out: out.path } }],
      handlerTimeoutMs: 5_000,
      maxDepth: 64,
      control: `eventrail-test-${crypto.randomUUID()}`,
    };
    pool = new Piscina({
      filename: new URL('../src/worker/worker.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: 1,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      workerData: init,
    });
    pool.on('workerCreate', () => workersCreated++);
    pool.on('error', () => poolErrors++);
  });
  after(async () => {
    await pool.destroy();
    dir.remove();
  });

  async function run(t: BatchTask): Promise<BatchResult> {
    return (await pool.run(t, { transferList: [t.buffer] })) as BatchResult;
  }

  function assertCorrupt(result: BatchResult, what: string): void {
    assert.ok(result.corrupt !== null, `${what}: reported as corrupt, got ${JSON.stringify(result)}`);
    assert.equal(result.corrupt.code, CORRUPT, what);
    assert.equal(result.corrupt.name, 'CorruptBatchError', what);
    assert.match(result.corrupt.message, /corrupt batch/, what);
    assert.deepEqual([result.failures, result.followUps, result.metrics], [[], [], []], `${what}: no delivery was made`);
  }

  /** A good batch right after: handled by the same worker, every event delivered. */
  async function goodBatchStillWorks(): Promise<void> {
    const events = [event(1), event(2), event(3)];
    const before = out.read().length;
    const result = await run(task(encodeBatch(codec, events), events.length));
    assert.equal(result.corrupt, null);
    assert.deepEqual(result.failures, []);
    const delivered = out.read().slice(before);
    assert.deepEqual(
      delivered.map((d) => d.event_id),
      events.map((e) => e.event_id),
      'the good batch is delivered in order',
    );
    assert.equal(workersCreated, 1, 'the one worker was never replaced');
    assert.equal(poolErrors, 0);
  }

  it('handles a good batch (the baseline the other cases are measured against)', async () => {
    await goodBatchStillWorks();
  });

  it('every truncation of a batch is reported as corrupt, and nothing of it is delivered', async () => {
    const events = [event(0), event(1), event(2)];
    const bytes = encodeBatch(codec, events);
    const delivered = out.read().length;
    for (let cut = 0; cut < bytes.length; cut++) {
      assertCorrupt(await run(task(bytes.subarray(0, cut), events.length)), `cut to ${cut} of ${bytes.length} bytes`);
    }
    assert.equal(out.read().length, delivered, 'no event of a truncated batch reached the consumer');
    await goodBatchStillWorks();
  });

  it('a batch declaring the wrong count is reported as corrupt', async () => {
    const events = [event(0), event(1), event(2)];
    const bytes = encodeBatch(codec, events);
    const delivered = out.read().length;
    for (const count of [0, 1, 2, 4, 1000]) {
      assertCorrupt(await run(task(bytes, count)), `3 events declared as ${count}`);
    }
    assertCorrupt(await run(task(new Uint8Array(0), 1)), 'an empty buffer declared as 1 event');
    assert.equal(out.read().length, delivered);
    await goodBatchStillWorks();
  });

  it('well-formed msgpack that is not a batch of events is reported as corrupt', async () => {
    const notEvents: Array<[string, unknown[]]> = [
      ['numbers', [1, 2]],
      ['null', [null]],
      ['a string', ['UserLoggedIn']],
      ['an array', [[event(0)]]],
      ['an object without metadata', [{ event_id: uuid(), event_type: 'UserLoggedIn', payload: {} }]],
      ['an event whose event_type is a number', [{ ...event(0), event_type: 7 }]],
      ['an event whose event_type is an unknown name', [{ ...event(0), event_type: 'NoSuchType' }]],
      ['an event whose metadata is a string', [{ ...event(0), metadata: 'm' }]],
      ['a good event followed by a number', [event(0), 5]],
    ];
    const delivered = out.read().length;
    for (const [what, values] of notEvents) {
      const bytes = Buffer.concat(values.map((v) => codec.encode(v)));
      assertCorrupt(await run(task(bytes, values.length)), what);
    }
    assert.equal(out.read().length, delivered, 'nothing was delivered');
    await goodBatchStillWorks();
  });

  it('a single flipped or overwritten byte never crashes the worker', async () => {
    const events = [event(0), event(1)];
    const bytes = encodeBatch(codec, events);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), async (at, value) => {
        const garbled = Uint8Array.from(bytes);
        garbled[at] = value;
        // Some changes leave a valid batch (a different payload digit, say): then it is handled
        // like any batch. Either way the worker answers with a result, never a rejection.
        const result = await run(task(garbled, events.length));
        if (result.corrupt !== null) assertCorrupt(result, `byte ${at} set to ${value}`);
        else assert.ok(Array.isArray(result.failures));
      }),
      { numRuns: 300 },
    );
    await goodBatchStillWorks();
  });

  it('a garbled byte that redefines the event structure does not change how later batches decode', async () => {
    // A record definition (ext 0x72) of id 0x40, the shared event structure, as ['a'], with the value { a: 1 }:
    // one byte changed in a reference to an in-band structure makes exactly this.
    const redefinition = Uint8Array.from([0xd4, 0x72, 0x40, 0x91, 0xa1, 0x61, 0x01]);
    const events = [event(0), event(1)];
    const delivered = out.read().length;
    assertCorrupt(await run(task(Buffer.concat([redefinition, encodeBatch(codec, events)]), 3)), 'a redefinition, then events');
    assert.equal(out.read().length, delivered, 'nothing was delivered');
    await goodBatchStillWorks();
  });

  it('random bytes are reported as corrupt', async () => {
    const delivered = out.read().length;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.integer({ min: 1, max: 4 }), async (bytes, count) => {
        assertCorrupt(await run(task(bytes, count)), `${bytes.length} random bytes as ${count} events`);
      }),
      { numRuns: 300 },
    );
    assert.equal(out.read().length, delivered, 'nothing was delivered');
    await goodBatchStillWorks();
  });

  it('a corrupt batch of targeted deliveries (retries, redrives) is reported as corrupt too', async () => {
    const events = [event(0), event(1)];
    const bytes = encodeBatch(codec, events);
    const targets = Uint32Array.from([0, 0, 2, 1, 0, 3]);
    assertCorrupt(await run(task(bytes.subarray(0, bytes.length - 3), events.length, targets)), 'truncated, with targets');
    assertCorrupt(await run(task(bytes, 3, targets)), 'wrong count, with targets');
    await goodBatchStillWorks();
  });
});

/**
 * Appends events to a real lmdb store through the store's own append (one
 * commit), as a bus would after encoding them, except that the bytes are
 * whatever the test gives: what a faulty writer or a failing disk leaves.
 */
async function storeRaw(dir: TempDir, values: ReadonlyArray<{ id: string; value: unknown; tenant?: string | null }>): Promise<void> {
  const codec = new Codec();
  const store = (await openStore({ kind: 'lmdb', path: dir.file('store'), prefix: 'eventrail' }))!;
  try {
    const items: AppendItem[] = values.map(({ id, value, tenant }) => ({
      eventId: id,
      checkDuplicate: false,
      bytes: codec.encode(value),
      tenantId: tenant ?? null,
      timestampMs: Date.parse('2026-01-31T12:00:00.123Z'),
      auditId: null,
    }));
    await store.append(items);
  } finally {
    await store.close();
  }
}

describe('corrupt stored bytes reaching a worker through the bus (recovery, real lmdb, real workers)', () => {
  const MAX_ATTEMPTS = 3;

  async function recoverWith(dir: TempDir, out: Recorder, maxBatch: number) {
    const bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [out.consumer('recorder')],
      pool: { maxThreads: 1 },
      dispatch: { maxBatch },
      delivery: { maxAttempts: MAX_ATTEMPTS, backoff: { initialMs: 1, maxMs: 2 } },
    });
    const workerErrors: unknown[] = [];
    bus.on('worker-error', (e) => workerErrors.push(e));
    await bus.flush();
    return { bus, workerErrors };
  }

  it('an event-like value the worker rejects, alone in its batch: dead-lettered with the coded error after maxAttempts; the good events delivered once', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    try {
      const good = [event(1), event(2)];
      const bad = { ...event(3), timestamp: 1_769_860_800_123 };
      await storeRaw(dir, [
        { id: good[0]!.event_id, value: good[0] },
        { id: bad.event_id, value: bad },
        { id: good[1]!.event_id, value: good[1] },
      ]);
      const { bus, workerErrors } = await recoverWith(dir, out, 1);
      try {
        // Replay yields events only: the stored non-event is reported through onCorrupt, as every reader does.
        const stored: string[] = [];
        const unreadable: string[] = [];
        for await (const e of bus.replay({ onCorrupt: (err) => unreadable.push(err.message) })) stored.push(e.event_id);
        assert.deepEqual(stored, [good[0]!.event_id, good[1]!.event_id], 'replayed: the two events, once each');
        assert.equal(unreadable.length, 1);
        assert.match(unreadable[0]!, /is not an event: event_id and timestamp must be strings/);

        // One event per batch (maxBatch 1): the corrupt one fails alone.
        const delivered = out.read().map((d) => d.event_id);
        assert.deepEqual(
          delivered.sort(),
          good.map((e) => e.event_id).sort(),
          'delivered: the good events, once each; the corrupt one never',
        );

        const dead = await bus.deadLetters.list();
        assert.equal(dead.length, 1, 'dead-lettered: exactly the corrupt event');
        assert.equal(dead[0]!.event.event_id, bad.event_id);
        assert.equal(dead[0]!.error.code, CORRUPT);
        assert.equal(dead[0]!.error.name, 'CorruptBatchError');
        assert.match(dead[0]!.error.message, /value 0 is not an event: event_id and timestamp must be strings/);
        assert.equal(dead[0]!.attempts, MAX_ATTEMPTS);

        const metrics = await bus.metrics();
        assert.equal(metricValue(metrics, 'eventrail_delivery_failures_total{consumer="Recorder"}'), MAX_ATTEMPTS);
        assert.equal(metricValue(metrics, 'eventrail_dead_letters_total{consumer="Recorder"}'), 1);
        assert.equal(metricValue(metrics, 'eventrail_deliveries_total{consumer="Recorder"}'), 2);
        assert.deepEqual(workerErrors, [], 'reported as an outcome, never as a crashed worker');

        // The bus goes on: a fresh event is stored and delivered once.
        const receipt = await bus.emit({ event_type: 'SessionCreated', metadata: { source: 'corrupt-batch-test' } });
        await bus.flush();
        assert.deepEqual(out.read().filter((d) => d.event_id === receipt.event_id).length, 1);
      } finally {
        await bus.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('a corrupt event in a batch with good ones: only the corrupt one is dead-lettered', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    try {
      // One user for all three: one lane, one batch.
      const user = uuid();
      const withUser = (e: Event): Event => ({ ...e, metadata: { ...e.metadata, user_id: user } });
      const good = [withUser(event(1)), withUser(event(2))];
      const bad = { ...withUser(event(3)), payload: undefined };
      delete bad.payload;
      await storeRaw(dir, [
        { id: good[0]!.event_id, value: good[0] },
        { id: bad.event_id, value: bad },
        { id: good[1]!.event_id, value: good[1] },
      ]);
      const { bus } = await recoverWith(dir, out, 16);
      try {
        const dead = await bus.deadLetters.list();
        assert.deepEqual(
          dead.map((d) => d.event.event_id),
          [bad.event_id],
          'dead-lettered: exactly the corrupt event',
        );
        assert.equal(dead[0]!.error.code, CORRUPT);
        assert.deepEqual(
          out
            .read()
            .map((d) => d.event_id)
            .sort(),
          good.map((e) => e.event_id).sort(),
          'the good events delivered once each',
        );
      } finally {
        await bus.close();
      }
    } finally {
      dir.remove();
    }
  });
});
