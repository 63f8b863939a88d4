import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createBus, type BusOptions } from '../../src/index.js';
import { recorder, tempDir, uuid } from '../helpers.js';

const N = 40;
const POISON = new Set([7, 23]);

/**
 * Emits N events, two of which make the Faulty consumer misbehave, next to a
 * well-behaved Recorder, on real lmdb and real workers. Whatever the fault:
 * every event is stored, the Recorder gets every event, Faulty handles every
 * other event, and exactly the two poisoned (event, Faulty) deliveries end as
 * dead letters after maxAttempts.
 */
async function faultRun(fault: string, options: Partial<BusOptions> = {}, expectWorkerErrors = true) {
  const dir = tempDir();
  const out = recorder(dir);
  const bus = await createBus({
    store: { kind: 'lmdb', path: dir.file('store') },
    consumers: [out.consumer('faulty'), out.consumer('recorder')],
    pool: { maxThreads: 1, concurrentTasksPerWorker: 2 },
    dispatch: { lanes: 4, maxBatch: 8, lingerMs: 0 },
    delivery: { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 5 }, handlerTimeoutMs: 300 },
    ...options,
  });
  const workerErrors: Error[] = [];
  bus.on('worker-error', (err) => workerErrors.push(err));
  try {
    const receipts = await bus.emitMany(
      Array.from({ length: N }, (_, seq) => ({
        event_type: 'SessionExtended' as const,
        payload: POISON.has(seq) ? { seq, fault } : ({ seq } as { seq: number; fault?: string }),
        metadata: { source: 'fault-test', user_id: uuid() },
      })),
    );
    await bus.flush();

    let stored = 0;
    for await (const _ of bus.replay()) stored++;
    assert.equal(stored, N, 'every event is stored');

    const seen = out.read();
    const recorded = new Set(seen.filter((d) => d.consumer === 'Recorder').map((d) => d.event_id));
    assert.equal(recorded.size, N, 'the well-behaved consumer got every event');

    const dead = await bus.deadLetters.list();
    assert.equal(
      dead.length,
      POISON.size,
      `exactly the poisoned deliveries are dead letters: ${JSON.stringify(dead.map((d) => d.error.message))}`,
    );
    assert.ok(dead.every((d) => d.consumer === 'Faulty' && d.attempts === 2));
    assert.deepEqual(new Set(dead.map((d) => (d.event.payload as { seq: number }).seq)), POISON);

    const faultySeen = new Set(seen.filter((d) => d.consumer === 'Faulty').map((d) => d.event_id));
    assert.equal(faultySeen.size, N, 'Faulty was called for every event');
    const metrics = await bus.metrics();
    if (expectWorkerErrors) {
      assert.ok(workerErrors.length > 0, 'the bus reported the worker fault');
      assert.ok(workerErrors.every((e) => (e as { code?: string }).code === 'ERR_EVENTRAIL_WORKER_CRASHED'));
      assert.match(metrics, /eventrail_worker_errors_total [1-9]/);
    }
    assert.match(metrics, /eventrail_dead_letters_total\{consumer="Faulty"\} 2/);
    return { receipts, dead };
  } finally {
    await bus.close();
    dir.remove();
  }
}

describe('worker faults lose nothing', { timeout: 120_000 }, () => {
  it('a consumer calling process.exit()', async () => {
    await faultRun('exit');
  });

  it('a consumer throwing from a timer outside handle', async () => {
    await faultRun('timerThrow');
  });

  it('a handler that never settles (past handlerTimeoutMs)', async () => {
    const { dead } = await faultRun('hang', {}, false);
    assert.ok(dead.every((d) => d.error.code === 'ERR_EVENTRAIL_HANDLER_TIMEOUT'));
  });

  it('a handler looping forever synchronously (the watchdog stops the worker)', async () => {
    const { dead } = await faultRun('spin');
    assert.ok(
      dead.every((d) => d.error.code === 'ERR_EVENTRAIL_HANDLER_TIMEOUT'),
      JSON.stringify(dead.map((d) => d.error)),
    );
  });

  it("a handler exceeding the pool's resourceLimits", async () => {
    await faultRun('oom', { pool: { maxThreads: 1, concurrentTasksPerWorker: 2, resourceLimits: { maxOldGenerationSizeMb: 48 } } });
  });
});
