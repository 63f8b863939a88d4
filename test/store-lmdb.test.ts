import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../src/store/lmdb.js';
import { openStore } from '../src/store/open.js';
import { commitEnd } from '../src/store/store.js';
import { open } from 'lmdb';
import { IdSource, generatedIdTime } from '../src/event/ids.js';
import { StoreLayout } from '../src/store/layout/keys.js';
import { testEvent, testEvents, testStore } from './store-conformance.js';

testStore('lmdb', async () => {
  const path = mkdtempSync(join(tmpdir(), 'eventrail-store-'));
  const open = () => LmdbStore.open({ path, prefix: 'eventrail' });
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => rmSync(path, { recursive: true, force: true }),
  };
});

describe('lmdb store: waiting for appends', () => {
  it('wakes a waiter on its own append at once, whatever pollMs', { timeout: 20_000 }, async () => {
    const path = mkdtempSync(join(tmpdir(), 'eventrail-store-'));
    // Polling once an hour: only the wake on this store's own append can resolve the wait in time.
    const store = await openStore({ kind: 'lmdb', path, prefix: 'eventrail' }, { pollMs: 3_600_000 });
    const keepAlive = setInterval(() => {}, 1_000);
    try {
      assert.ok(store);
      const waiting = store.waitForAppend(null, new AbortController().signal);
      const { positions } = await store.append(testEvents(2).map((e) => e.item));
      await waiting;
      assert.equal((await store.head())!.toString('hex'), commitEnd(positions[1]!).toString('hex'));
    } finally {
      clearInterval(keepAlive);
      await store?.close();
      rmSync(path, { recursive: true, force: true });
    }
  });

  it('refuses a pollMs that is not a positive number', async () => {
    for (const pollMs of [0, -1, Number.NaN, Infinity])
      await assert.rejects(LmdbStore.open({ path: tmpdir(), prefix: 'eventrail', pollMs }), RangeError);
  });
});

describe('lmdb store: the id index', () => {
  it('writes no id key for an id the bus generated in the millisecond of its timestamp, and one for every other', async () => {
    const path = mkdtempSync(join(tmpdir(), 'eventrail-store-'));
    const ids = new IdSource();
    const generated = ids.uuid();
    const otherTime = ids.uuid();
    const events = [
      testEvent({ eventId: generated, timestampMs: generatedIdTime(generated)! }),
      testEvent({ eventId: otherTime, timestampMs: generatedIdTime(otherTime)! + 1 }),
      testEvent(),
      testEvent({ checkDuplicate: true, eventId: ids.uuid() }),
    ];
    events[3] = testEvent({
      checkDuplicate: true,
      eventId: events[3]!.item.eventId,
      timestampMs: generatedIdTime(events[3]!.item.eventId)!,
    });
    const store = await LmdbStore.open({ path, prefix: 'eventrail' });
    try {
      await store.append(events.map((e) => e.item));
    } finally {
      await store.close();
    }
    // The raw store, once the bus's is closed: which id keys are there.
    const db = open<Buffer, Buffer>({ path, noSubdir: false, encoding: 'binary', keyEncoding: 'binary', cache: false });
    try {
      const layout = new StoreLayout('eventrail');
      const present = events.map((e) => db.getBinary(layout.idKey(e.item.eventId)) !== undefined);
      assert.deepEqual(present, [false, true, true, true]);
    } finally {
      await db.close();
      rmSync(path, { recursive: true, force: true });
    }
  });
});
