import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createBus } from '../src/index.js';
import { fixture, tempDir } from './helpers.js';

/**
 * Four events on four lanes, one per batch, on one worker: the Overlap
 * consumer holds each until `together` of them are in flight on the worker,
 * and records the most it saw at once.
 */
async function peakInFlight(concurrentTasksPerWorker: number, together: number, waitMs: number): Promise<number[]> {
  const dir = tempDir();
  const out = dir.file('overlap.jsonl');
  const bus = await createBus({
    store: { kind: 'lmdb', path: dir.file('store') },
    consumers: [{ module: fixture('overlap'), options: { out } }],
    pool: { minThreads: 1, maxThreads: 1, concurrentTasksPerWorker },
    dispatch: { lanes: 4, maxBatch: 1, lingerMs: 0 },
    delivery: { handlerTimeoutMs: 30_000 },
  });
  try {
    // User ids ending in 0..3: lanes 0..3 (the lane is the id's last eight hex digits modulo the lane count).
    await bus.emitMany(
      [0, 1, 2, 3].map((lane) => ({
        event_type: 'SessionExtended' as const,
        payload: { together, waitMs },
        metadata: { source: 'overlap-test', user_id: `0190a1b2-c3d4-7e5f-8a6b-00000000000${lane}` },
      })),
    );
    await bus.flush();
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4, 'each event handled once');
    assert.equal((await bus.deadLetters.list()).length, 0);
    return lines.map((l) => (JSON.parse(l) as { peak: number }).peak);
  } finally {
    await bus.close();
    dir.remove();
  }
}

describe('pool.concurrentTasksPerWorker', () => {
  it('lets one worker run that many batches at once (async handlers overlap)', async () => {
    // Each handler waits for all four: they finish only if the worker runs the four batches together.
    const peaks = await peakInFlight(4, 4, 20_000);
    assert.equal(Math.max(...peaks), 4);
  });

  it('at 1, runs one batch at a time', async () => {
    const peaks = await peakInFlight(1, 2, 100);
    assert.deepEqual(peaks, [1, 1, 1, 1]);
  });
});
