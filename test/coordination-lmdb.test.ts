/**
 * Coordination across processes on one lmdb folder (the service-instance
 * shape of Node's cluster mode): two processes run rounds against each other
 * until they split the partitions, and a waiter in one process wakes when
 * another process appends. Also: migrating a store written with the layout
 * before consumer groups (per-instance checkpoints under `cp` keys).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { StoreLayout } from '../src/store/layout/keys.js';
import { LmdbStore } from '../src/store/lmdb.js';
import { commitEnd, comparePositions, type Position } from '../src/store/store.js';
import { jsonLines, runScript } from './fixtures/cli-run.js';
import { tempDir } from './helpers.js';
import { testEvents } from './store-conformance.js';

const child = fileURLToPath(new URL('./fixtures/coordinate-child.js', import.meta.url));
const hex = (p: Position | null) => (p === null ? null : p.toString('hex'));

describe('coordination on lmdb across processes', () => {
  it('splits 16 partitions 8/8 between two processes, never granting one epoch twice, never fencing a holder out', async () => {
    const dir = tempDir();
    try {
      const path = dir.file('store');
      const [a, b] = await Promise.all([
        runScript(child, ['coordinate', path, 'a', '2']),
        runScript(child, ['coordinate', path, 'b', '2']),
      ]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      type Line = { took?: [number, number]; lost?: unknown; held?: number[]; done?: boolean };
      const lines = { a: jsonLines<Line>(a.stdout), b: jsonLines<Line>(b.stdout) };
      assert.deepEqual(
        [...lines.a, ...lines.b].filter((l) => l.lost),
        [],
        'a holder never finds its lease lost',
      );
      const takes = [...lines.a, ...lines.b].flatMap((l) => (l.took ? [l.took.join('@')] : []));
      assert.equal(new Set(takes).size, takes.length, `every (partition, epoch) is granted once: ${takes.join(' ')}`);
      const end = (ls: Line[]) => ls[ls.length - 1]!;
      assert.deepEqual(end(lines.a), { held: [0, 2, 4, 6, 8, 10, 12, 14], done: true });
      assert.deepEqual(end(lines.b), { held: [1, 3, 5, 7, 9, 11, 13, 15], done: true });
      const store = await LmdbStore.open({ path, prefix: 'eventrail' });
      try {
        const leases = await store.readLeases();
        assert.deepEqual(
          leases.map((l) => l.owner),
          Array.from({ length: 16 }, (_, p) => (p % 2 ? 'b' : 'a')),
        );
        // Each lease's epoch is the last one granted for it.
        for (const lease of leases) {
          const granted = takes.filter((t) => t.startsWith(`${lease.partition}@`)).map((t) => Number(t.split('@')[1]));
          assert.equal(lease.epoch, Math.max(...granted));
        }
      } finally {
        await store.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('wakes a waiter when another process appends', async () => {
    const dir = tempDir();
    const path = dir.file('store');
    const store = await LmdbStore.open({ path, prefix: 'eventrail', pollMs: 5 });
    try {
      await store.append(testEvents(1).map((e) => e.item));
      const head = await store.head();
      let woken = false;
      const waiting = store.waitForAppend(head, new AbortController().signal).then(() => (woken = true));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(woken, false, 'nothing was appended yet');
      const run = await runScript(child, ['append', path]);
      assert.equal(run.code, 0, run.stderr);
      const keepAlive = setInterval(() => {}, 1_000);
      try {
        await waiting;
      } finally {
        clearInterval(keepAlive);
      }
      const appended = Buffer.from(jsonLines<{ appended: string }>(run.stdout)[0]!.appended, 'hex');
      assert.equal(hex(await store.head()), hex(commitEnd(appended)));
      assert.ok(comparePositions((await store.head())!, head!) > 0);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});

describe('coordination on lmdb: a store of the layout before consumer groups', () => {
  it('turns the old checkpoints into cursors at the lowest of them, for every group, and clears them', async () => {
    const dir = tempDir();
    const path = dir.file('store');
    try {
      const layout = new StoreLayout('eventrail');
      let store = await LmdbStore.open({ path, prefix: 'eventrail' });
      const positions: Position[] = [];
      for (let i = 0; i < 3; i++) positions.push(...(await store.append(testEvents(4).map((e) => e.item))).positions);
      await store.close();
      // What the bus before groups wrote: a checkpoint per instance and consumer, and one for the bus itself.
      const raw = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary', cache: false });
      const old: [string, Position][] = [
        ['pod-1/$bus', positions[9]!],
        ['pod-1/Mailer', positions[5]!],
        ['pod-2/$bus', positions[11]!],
        ['pod-2/Audit', positions[7]!],
      ];
      for (const [name, position] of old) await raw.put(layout.checkpointKey(name), position);
      await raw.close();

      store = await LmdbStore.open({ path, prefix: 'eventrail' });
      try {
        const round = await store.coordinate({
          instance: 'pod-1',
          groups: [
            { name: 'Mailer', startFrom: 'now' },
            { name: 'New', startFrom: 'now' },
          ],
          partitions: 2,
          leaseMs: 10_000,
          now: Date.now(),
        });
        assert.equal(round.partitions, 2);
        assert.ok(
          round.held.every((h) => hex(h.cursor) === hex(positions[5]!)),
          'from the lowest checkpoint: nothing is skipped',
        );
        assert.deepEqual(
          (await store.readCursors()).map((c) => [c.group, c.partition, hex(c.position)]),
          ['Audit', 'Mailer', 'New'].flatMap((g) => [
            [g, 0, hex(positions[5]!)],
            [g, 1, hex(positions[5]!)],
          ]),
        );
        // Migrated once: a later group starts from the head as asked.
        const later = await store.coordinate({
          instance: 'pod-1',
          groups: [{ name: 'Later', startFrom: 'now' }],
          partitions: 2,
          leaseMs: 10_000,
          now: Date.now(),
        });
        assert.ok(later.held.every((h) => hex(h.cursor) === hex(commitEnd(positions[11]!))));
      } finally {
        await store.close();
      }
      const after = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary', cache: false });
      try {
        const range = layout.checkpointRange();
        assert.deepEqual([...after.getKeys({ start: range.start, end: range.end })], [], 'the old keys are gone');
      } finally {
        await after.close();
      }
    } finally {
      dir.remove();
    }
  });
});
