/**
 * A synchronous burst of emits hands each full batch to the pool as it fills
 * (store `none`): a worker handles the first batch while the burst is still
 * running, instead of every batch waiting for the burst to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fixture, uuid, withBus } from './helpers.js';

const BATCH = 16;
/** Only bounds a failure: a correct bus is done as soon as the worker has run the first batch. */
const GIVE_UP_MS = 60_000;

test('a worker handles the first batch before a synchronous burst of emits ends', async () => {
  await withBus(
    {
      store: { kind: 'none' },
      consumers: [fixture('recorder')],
      pool: { maxThreads: 1, minThreads: 1 },
      // Only a full batch is committed during the burst: the linger timer could not fire in it anyway.
      dispatch: { maxBatch: BATCH, lingerMs: 1000 },
    },
    async ({ bus, out }) => {
      const user = uuid();
      const emitOne = (seq: number) =>
        bus.emit({ event_type: 'UserLoggedIn', payload: { seq }, metadata: { source: 'test', user_id: user } });
      const receipts = [];
      for (let seq = 0; seq < BATCH; seq++) receipts.push(emitOne(seq));
      // Still inside the burst: the main thread sleeps without ever yielding to its event loop, so only a
      // batch that was handed to the worker during the emits above can be recorded now.
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      const deadline = Date.now() + GIVE_UP_MS;
      while (!existsSync(out.path) && Date.now() < deadline) Atomics.wait(sleeper, 0, 0, 5);
      const handledDuringBurst = out.read().length;
      receipts.push(emitOne(BATCH)); // the burst's last emit
      assert.ok(handledDuringBurst > 0, 'no event of the first batch was handled before the burst ended');
      await Promise.all(receipts);
      await bus.flush();
      const seqs = out.read().map((d) => d.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: BATCH + 1 }, (_, i) => i),
        'every event once, in emit order',
      );
    },
  );
});
