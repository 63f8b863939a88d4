/**
 * A batch buffer that arrives truncated, garbled or with the wrong count is
 * reported by the worker as a coded `corrupt` outcome (no delivery made), and
 * never as a crash: the same worker goes on to handle a good batch. Runs the
 * real worker entry in a real Piscina, set up as createBus sets it up.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { Piscina } from 'piscina';
import { Codec } from '../src/codec.js';
import type { Event } from '../src/index.js';
import { PROGRESS_SLOTS, type BatchResult, type BatchTask, type WorkerInit } from '../src/protocol.js';
import { fixture, recorder, tempDir, uuid } from './helpers.js';

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
      consumers: [pathToFileURL(fixture('recorder')).href],
      handlerTimeoutMs: 5_000,
      maxDepth: 64,
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
      fc.asyncProperty(
        fc.integer({ min: 0, max: bytes.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        async (at, value) => {
          const garbled = Uint8Array.from(bytes);
          garbled[at] = value;
          // Some changes leave a valid batch (a different payload digit, say): then it is handled
          // like any batch. Either way the worker answers with a result, never a rejection.
          const result = await run(task(garbled, events.length));
          if (result.corrupt !== null) assertCorrupt(result, `byte ${at} set to ${value}`);
          else assert.ok(Array.isArray(result.failures));
        },
      ),
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
