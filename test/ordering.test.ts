/**
 * Per-key order: events with the same partition key reach every consumer in
 * emit order, while keys run in parallel on several threads and lanes; every
 * event is delivered exactly once to every consumer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type EventInput, type Receipt } from '../src/index.js';
import type { Delivered } from './fixtures/record.js';
import { fixture, uuid, withBus } from './helpers.js';

const CONSUMERS = ['AsyncRecorder', 'Recorder'];

/** For each consumer, checks that each key's seqs arrive as 0, 1, 2, ... n-1 and that every event came exactly once. */
function assertPerKeyOrder(seen: readonly Delivered[], receipts: readonly Receipt[], keys: readonly string[], perKey: number): void {
  for (const consumer of CONSUMERS) {
    const mine = seen.filter((d) => d.consumer === consumer);
    assert.equal(mine.length, receipts.length, `${consumer} got ${receipts.length} deliveries`);
    assert.deepEqual(new Set(mine.map((d) => d.event_id)), new Set(receipts.map((r) => r.event_id)), `${consumer} got every event`);
    const byKey = new Map<string, number[]>();
    for (const d of mine) {
      const list = byKey.get(d.key!) ?? [];
      list.push(d.seq!);
      byKey.set(d.key!, list);
    }
    assert.equal(byKey.size, keys.length);
    const expected = Array.from({ length: perKey }, (_, i) => i);
    for (const key of keys) assert.deepEqual(byKey.get(key), expected, `${consumer}: key ${key} in order`);
  }
}

describe('ordering', () => {
  it('keeps per-user order on 2 threads × 4 tasks, 8 lanes, 50 interleaved users', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('async-recorder'), fixture('recorder')],
        pool: { minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 4 },
        dispatch: { lanes: 8, maxBatch: 16, lingerMs: 0 },
      },
      async ({ bus, out }) => {
        const users = Array.from({ length: 50 }, () => uuid());
        const perKey = 40;
        const emits: Array<Promise<Receipt>> = [];
        for (let seq = 0; seq < perKey; seq++) {
          for (const user of users) {
            emits.push(bus.emit({ event_type: 'WorkflowStateChanged', payload: { seq }, metadata: { source: 'test', user_id: user } }));
          }
          // Let some batches commit and run between rounds, so lanes are busy while more arrives.
          if (seq % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
        }
        const receipts = await Promise.all(emits);
        await bus.flush();
        assertPerKeyOrder(out.read(), receipts, users, perKey);
      },
    );
  });

  it("keeps per-tenant order with partitionBy 'tenant', whatever the users", async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('async-recorder'), fixture('recorder')],
        pool: { minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 4 },
        dispatch: { lanes: 8, maxBatch: 16, lingerMs: 0, partitionBy: 'tenant' },
      },
      async ({ bus, out }) => {
        const tenants = Array.from({ length: 12 }, () => uuid());
        const perKey = 60;
        const inputs: EventInput[] = [];
        for (let seq = 0; seq < perKey; seq++) {
          for (const tenant of tenants) {
            // A new user for every event: ordering by user would not hold a tenant's events together.
            inputs.push({
              event_type: 'SessionCreated',
              payload: { seq, key: tenant },
              metadata: { source: 'test', tenant_id: tenant, user_id: uuid() },
            });
          }
        }
        const receipts = await bus.emitMany(inputs);
        await bus.flush();
        assertPerKeyOrder(out.read(), receipts, tenants, perKey);
      },
    );
  });

  it('keeps order per correlation_id for events without a user', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('async-recorder'), fixture('recorder')],
        pool: { maxThreads: 2, concurrentTasksPerWorker: 4 },
        dispatch: { lanes: 4, maxBatch: 8, lingerMs: 0 },
      },
      async ({ bus, out }) => {
        const correlations = Array.from({ length: 10 }, () => uuid());
        const perKey = 30;
        const emits: Array<Promise<Receipt>> = [];
        for (let seq = 0; seq < perKey; seq++) {
          for (const c of correlations) {
            emits.push(
              bus.emit({ event_type: 'WorkflowStarted', payload: { seq, key: c }, metadata: { source: 'test', correlation_id: c } }),
            );
          }
        }
        const receipts = await Promise.all(emits);
        await bus.flush();
        assertPerKeyOrder(out.read(), receipts, correlations, perKey);
      },
    );
  });
});
