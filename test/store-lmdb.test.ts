import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../src/store/lmdb.js';
import { openStore } from '../src/store/open.js';
import { commitEnd } from '../src/store/store.js';
import { testEvents, testStore } from './store-conformance.js';

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
