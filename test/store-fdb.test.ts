/**
 * The FoundationDB backend. Where the client library (libfdb_c) is missing,
 * as on these machines, selecting it must reject with
 * ERR_EVENTRAIL_FDB_CLIENT_MISSING. Where it loads and FDB_CLUSTER_FILE names
 * a cluster, the store conformance suite and the FoundationDB-specific tests
 * run against it, each under a fresh prefix that is cleared afterwards;
 * otherwise they are skipped, with the reason printed. There is no fake
 * FoundationDB.
 */
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { FdbClientMissingError, createBus } from '../src/index.js';
import { FdbStore } from '../src/store/fdb.js';
import { loadFoundationDb, missingFdbPart } from '../src/store/fdb-client.js';
import { StoreLayout } from '../src/store/layout/keys.js';
import { openStore } from '../src/store/open.js';
import { comparePositions, type EventStore, type Position } from '../src/store/store.js';
import { collect } from './helpers.js';
import { testEvent, testEvents, testStore } from './store-conformance.js';

const loaded = await loadFoundationDb();
const clusterFile = process.env.FDB_CLUSTER_FILE;

/** Why the FoundationDB integration tests cannot run here, or false when they can. */
const integrationSkip: string | false = !loaded.ok
  ? `FoundationDB integration tests skipped: the FoundationDB client library does not load here (${describeCause(loaded.error)})`
  : clusterFile === undefined || clusterFile === ''
    ? 'FoundationDB integration tests skipped: FDB_CLUSTER_FILE is not set (point it at a cluster file to run them)'
    : false;
if (integrationSkip) process.stderr.write(`${integrationSkip}\n`);

function describeCause(error: Error): string {
  const cause = error.cause;
  return cause instanceof Error ? cause.message : error.message;
}

const hex = (p: Position) => p.toString('hex');

describe(
  'fdb store: selected without the FoundationDB client',
  { skip: loaded.ok ? 'the FoundationDB client library loads here' : false },
  () => {
    const missing = (err: unknown) => {
      assert.ok(err instanceof FdbClientMissingError, `expected FdbClientMissingError, got ${String(err)}`);
      assert.equal(err.code, 'ERR_EVENTRAIL_FDB_CLIENT_MISSING');
      assert.equal(err.name, 'FdbClientMissingError');
      assert.match(err.message, /FoundationDB client library \(libfdb_c\)/);
      assert.match(err.message, /Install the FoundationDB client package/);
      assert.equal(err.missing, 'library');
      // The loader's own error is kept as the cause.
      assert.ok(err.cause instanceof Error);
      return true;
    };

    it('openStore rejects with ERR_EVENTRAIL_FDB_CLIENT_MISSING', async () => {
      await assert.rejects(openStore({ kind: 'fdb', prefix: 'eventrail', apiVersion: 720, maxTransactionBytes: 1_000_000 }), missing);
    });

    it('createBus({ store: { kind: "fdb" } }) rejects with ERR_EVENTRAIL_FDB_CLIENT_MISSING', async () => {
      await assert.rejects(createBus({ store: { kind: 'fdb' } }), missing);
    });

    it('says so whatever the cluster file', async () => {
      await assert.rejects(FdbStore.open({ prefix: 'eventrail', clusterFile: '/nowhere/fdb.cluster' }), {
        code: 'ERR_EVENTRAIL_FDB_CLIENT_MISSING',
      });
    });
  },
);

describe('fdb store: which part of the client is missing', () => {
  /** The error a real loader throws, in a scratch folder outside this package's node_modules. */
  const thrownIn = async (body: (dir: string) => Promise<unknown>): Promise<unknown> => {
    const dir = mkdtempSync(join(tmpdir(), 'eventrail-fdb-load-'));
    try {
      await body(dir);
    } catch (err) {
      return err;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.fail('expected the loader to fail');
  };

  it('names the npm package when it is not installed', async () => {
    const err = await thrownIn(async (dir) => {
      const file = join(dir, 'load.mjs');
      writeFileSync(file, "import 'foundationdb';\n");
      await import(pathToFileURL(file).href);
    });
    assert.equal((err as { code?: string }).code, 'ERR_MODULE_NOT_FOUND');
    assert.equal(missingFdbPart(err), 'package');
    const error = new FdbClientMissingError(err, 'package');
    assert.equal(error.code, 'ERR_EVENTRAIL_FDB_CLIENT_MISSING');
    assert.match(error.message, /npm package `foundationdb`, which is not installed/);
    assert.match(error.message, /npm install foundationdb/);
    assert.match(error.message, /libfdb_c/, 'the client library is needed too');
  });

  it('names the native build when none exists for this platform', async () => {
    // node-gyp-build, as foundationdb calls it, over a folder with no build in it.
    const err = await thrownIn(async (dir) => {
      createRequire(import.meta.url)('node-gyp-build')(dir);
    });
    assert.match((err as Error).message, /No native build was found/);
    assert.equal(missingFdbPart(err), 'native-build');
    const error = new FdbClientMissingError(err, 'native-build');
    assert.match(error.message, /none is built for this platform/);
    assert.match(error.message, /npm rebuild foundationdb/);
    assert.match(error.message, /libfdb_c/);
    assert.equal(error.cause, err);
  });

  it('names libfdb_c when the native module cannot link it, and leaves other failures alone', () => {
    if (!loaded.ok)
      assert.equal(
        loaded.error instanceof FdbClientMissingError && loaded.error.missing,
        'library',
        'this machine has the package but not libfdb_c',
      );
    assert.equal(
      missingFdbPart(Object.assign(new Error('libfdb_c.so: cannot open shared object file'), { code: 'ERR_DLOPEN_FAILED' })),
      'library',
    );
    assert.equal(missingFdbPart(new SyntaxError('Unexpected token')), null);
    assert.equal(missingFdbPart(Object.assign(new Error("Cannot find package 'other'"), { code: 'ERR_MODULE_NOT_FOUND' })), null);
    assert.equal(missingFdbPart('not an error'), null);
    assert.equal(new FdbClientMissingError(new Error('x')).missing, 'library', 'the default, as before');
  });
});

if (integrationSkip) {
  test('store conformance: fdb', { skip: integrationSkip }, () => {});
  test('fdb store: FoundationDB specifics', { skip: integrationSkip }, () => {});
} else {
  const open = (prefix: string, maxTransactionBytes = 1_000_000) =>
    FdbStore.open({ clusterFile, prefix, apiVersion: 720, maxTransactionBytes });
  const clear = async (prefix: string) => {
    const store = await open(prefix);
    try {
      await store.clearAll();
    } finally {
      await store.close();
    }
  };

  testStore('fdb', async () => {
    const prefix = `eventrail-test-${randomUUID()}`;
    return { store: await open(prefix), reopen: () => open(prefix), cleanup: () => clear(prefix) };
  });

  describe('fdb store: FoundationDB specifics', () => {
    /** Runs a test on stores opened under one fresh prefix, then closes them and clears the prefix. */
    const withPrefix = (body: (open: (maxTransactionBytes?: number) => Promise<EventStore>) => Promise<void>) => async () => {
      const prefix = `eventrail-test-${randomUUID()}`;
      const opened: EventStore[] = [];
      try {
        await body(async (maxTransactionBytes) => opened[opened.push(await open(prefix, maxTransactionBytes)) - 1]!);
      } finally {
        for (const store of opened) await store.close();
        await clear(prefix);
      }
    };

    it(
      'gives receipts the commit versionstamp',
      withPrefix(async (openHere) => {
        const store = await openHere();
        const { positions } = await store.append(testEvents(3).map((e) => e.item));
        for (const position of positions) assert.notEqual(hex(position.subarray(0, 10)), '00'.repeat(10), 'not the placeholder stamp');
        assert.deepEqual(
          positions.map((p) => p.readUInt16BE(10)),
          [0, 1, 2],
        );
        assert.ok(
          positions.every((p) => p.subarray(0, 10).equals(positions[0]!.subarray(0, 10))),
          'one commit, one stamp',
        );
      }),
    );

    it(
      'splits a batch over maxTransactionBytes into several commits, positions still in batch order',
      withPrefix(async (openHere) => {
        const store = await openHere(20_000);
        const events = testEvents(200, () => ({ padding: 1_000 }));
        const { positions, duplicate } = await store.append(events.map((e) => e.item));
        assert.ok(duplicate.every((d) => !d));
        const stamps = new Set(positions.map((p) => hex(p.subarray(0, 10))));
        assert.ok(stamps.size > 5, `${stamps.size} commits`);
        for (let i = 1; i < positions.length; i++) assert.ok(comparePositions(positions[i - 1]!, positions[i]!) < 0);
        const read = await collect(store.readEvents({ pageSize: 17 }));
        assert.deepEqual(
          read.map((e) => hex(e.position)),
          positions.map(hex),
        );
        assert.equal((await store.stats()).events, 200);
      }),
    );

    it(
      'lets several instances append to one log at once, without duplicating ids',
      withPrefix(async (openHere) => {
        const [a, b] = [await openHere(), await openHere()];
        const shared = testEvent({ checkDuplicate: true });
        const batches = Array.from({ length: 16 }, () => [...testEvents(20).map((e) => e.item), { ...shared.item }]);
        const results = await Promise.all(batches.map((batch, i) => (i % 2 ? a : b).append(batch)));
        const stored = results.flatMap((r) => r.positions.filter((_, i) => !r.duplicate[i]).map(hex));
        assert.equal(new Set(stored).size, stored.length, 'every stored position is unique');
        // The shared id is stored once: one batch stored it, every other one got its position.
        const sharedAt = new Set(results.map((r) => hex(r.positions[r.positions.length - 1]!)));
        assert.equal(sharedAt.size, 1);
        assert.equal(results.filter((r) => !r.duplicate[r.duplicate.length - 1]).length, 1);
        const read = await collect(b.readEvents());
        assert.deepEqual(
          read.map((e) => hex(e.position)),
          [...stored].sort(),
        );
        assert.equal(stored.length, 16 * 20 + 1);
        assert.equal((await a.stats()).events, stored.length);
      }),
    );

    it(
      'answers duplicate: true to every instance but one when several append the same supplied event_id at once',
      withPrefix(async (openHere) => {
        // Each batch is the shared id alone, so every append plans it at index 0: the commits race on the id
        // key, the losers' commits conflict and are retried, and a retry finds the id at index 0 of another
        // instance's stamp. Only its own nonce may make a retry take a commit for its own.
        const stores = [await openHere(), await openHere(), await openHere()];
        for (let round = 0; round < 20; round++) {
          const shared = testEvent({ checkDuplicate: true });
          const results = await Promise.all(
            stores.flatMap((store) => [store.append([{ ...shared.item }]), store.append([{ ...shared.item }])]),
          );
          assert.equal(results.filter((r) => !r.duplicate[0]).length, 1, `round ${round}: exactly one append stored it`);
          assert.equal(new Set(results.map((r) => hex(r.positions[0]!))).size, 1, `round ${round}: every receipt has the stored position`);
        }
        assert.equal((await stores[0]!.stats()).events, 20);
      }),
    );

    it('leaves no append nonce behind once the stores are closed', async () => {
      const prefix = `eventrail-test-${randomUUID()}`;
      const [a, b] = [await open(prefix), await open(prefix, 20_000)];
      // Opened after the stores, which selected the API version.
      const db = loaded.ok ? loaded.fdb.open(clusterFile) : assert.fail('the client loads');
      const nonces = () => {
        const range = new StoreLayout(prefix).nonceRange();
        return db.getRangeAll(range.start, range.end);
      };
      try {
        const shared = testEvent({ checkDuplicate: true });
        const split = b.append(testEvents(200, () => ({ padding: 1_000 })).map((e) => e.item));
        await Promise.all([a.append(testEvents(50).map((e) => e.item)), split, a.append([shared.item]), b.append([{ ...shared.item }])]);
        const commits = new Set((await split).positions.map((p) => hex(p.subarray(0, 10)))).size;
        assert.ok(commits > 5, `${commits} commits`);
        await a.append(testEvents(1).map((e) => e.item));
        // Each part clears the nonces of the parts before it: what is left is the last commit of each store, and of b's concurrent append.
        assert.ok((await nonces()).length <= 3, `${(await nonces()).length} nonces left after ${commits + 3} commits`);
        await Promise.all([a.close(), b.close()]);
        assert.deepEqual(await nonces(), []);
      } finally {
        await Promise.allSettled([a.close(), b.close()]);
        db.close();
        await clear(prefix);
      }
    });

    it(
      'refuses an event over FoundationDB’s transaction limit, writing nothing of its batch',
      withPrefix(async (openHere) => {
        const store = await openHere();
        const huge = testEvent({ padding: 10_500_000 });
        await assert.rejects(store.append([testEvent().item, huge.item]), {
          code: 'ERR_EVENTRAIL_STORE_WRITE',
          message: /over FoundationDB's 10000000-byte limit/,
        });
        assert.equal((await store.stats()).events, 0);
      }),
    );

    it(
      'replays across short transactions while the reader is slower than FoundationDB’s 5 s limit',
      withPrefix(async (openHere) => {
        const store = await openHere();
        const { positions } = await store.append(testEvents(30).map((e) => e.item));
        const read: Position[] = [];
        for await (const event of store.readEvents({ pageSize: 10 })) {
          read.push(event.position);
          // One pause longer than a transaction may live: a single long read would now fail with transaction_too_old.
          if (read.length === 10) await sleep(6_000);
        }
        assert.deepEqual(read.map(hex), positions.map(hex));
      }),
    );
  });
}
