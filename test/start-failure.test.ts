/**
 * A bus whose start fails part-way through recovery stops what it started:
 * the recovered events already routed to the dispatcher are abandoned (not
 * taken for crashed deliveries when the pool is destroyed: no re-runs,
 * retries or dead letters), no checkpoint is written for them, and createBus
 * rejects with the read's error. A later start delivers them all. Real lmdb,
 * real workers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'lmdb';
import { createBus, EventrailError } from '../src/index.js';
import { StoreLayout } from '../src/store/layout/keys.js';
import type { Delivered } from './fixtures/record.js';
import { linesOf, recorder, tempDir } from './helpers.js';

const BLOCKS = 12;
const PER_BLOCK = 100;

describe('a failed start', () => {
  it('abandons what recovery routed and writes no checkpoint', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const path = dir.file('store');
    try {
      // One block per emitMany; no consumers, so nothing is owed and nothing is recovered later but what we unmark.
      const writer = await createBus({ store: { kind: 'lmdb', path }, consumers: [] });
      for (let b = 0; b < BLOCKS; b++) {
        await writer.emitMany(
          Array.from({ length: PER_BLOCK }, (_, i) => ({
            event_type: 'SessionCreated' as const,
            payload: { seq: b * PER_BLOCK + i },
            metadata: { source: 'test' },
          })),
        );
      }
      await writer.close();

      // A group that starts from the beginning: recovery reads the log from its start. After the last block, a key in the block range that is
      // not a block key: the recovery read throws on it, on its second page (a page is 1024 events, whole blocks),
      // after the first page went to the dispatcher.
      const layout = new StoreLayout('eventrail');
      const db = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary' });
      const cps = layout.checkpointRange();
      for (const key of [...db.getKeys({ start: cps.start, end: cps.end })]) await db.remove(key);
      const blocks = layout.blockRange();
      const keys = [...db.getKeys({ start: blocks.start, end: blocks.end })];
      assert.equal(keys.length, BLOCKS, 'one block per emitMany');
      const at = blocks.start.length;
      const bad = Buffer.from(keys[0]!.subarray(0, at + 13));
      bad.fill(0xff, at + 1, at + 11);
      await db.put(bad, Buffer.from('not a block'));
      await db.close();

      const options = {
        store: { kind: 'lmdb' as const, path },
        consumers: [out.consumer('from-beginning')],
        pool: { maxThreads: 1 },
        dispatch: { maxBatch: 16 },
        // A failed delivery would be retried at once and dead-lettered after one more attempt.
        delivery: { maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 } },
        checkpoint: { intervalMs: 1 },
      };
      await assert.rejects(createBus(options), (err: unknown) => {
        assert.ok(err instanceof EventrailError, String(err));
        assert.match(err.message, /not a block key/);
        return true;
      });

      // Whatever the workers ran before the pool was destroyed, nothing was dead-lettered and no checkpoint written.
      const after = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary' });
      try {
        assert.deepEqual([...after.getKeys({ start: cps.start, end: cps.end })], [], 'no checkpoint');
        const dl = layout.deadLetterRange();
        assert.deepEqual([...after.getKeys({ start: dl.start, end: dl.end })], [], 'no dead letters');
        await after.remove(bad);
      } finally {
        await after.close();
      }
      const delivered = linesOf<Delivered>(out.path, 'FromBeginning');
      assert.ok(
        delivered.every((d) => d.attempt === 1),
        'no delivery was retried',
      );

      // With the bad key gone, the next start recovers and delivers every event.
      const bus = await createBus(options);
      await bus.flush();
      await bus.close();
      const seqs = new Set(linesOf<Delivered>(out.path, 'FromBeginning').map((d) => d.seq));
      assert.equal(seqs.size, BLOCKS * PER_BLOCK);
    } finally {
      dir.remove();
    }
  });
});
