/**
 * `eventrail stats` on the coordination state a store holds: per consumer
 * group its partitions, lowest cursor, lag after it, and lease owners. The
 * store is written through LmdbStore directly (coordination rounds and fenced
 * progress, as instances of a service would), then read by the command.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { statsCommand, type StoreReport } from '../src/cli/stats.js';
import { Output } from '../src/cli/output.js';
import { LmdbStore } from '../src/store/lmdb.js';
import { commitEnd, type Position } from '../src/store/store.js';
import { tempDir } from './helpers.js';
import { testEvents } from './store-conformance.js';

async function stats(args: string[]): Promise<{ code: number; text: string }> {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  const code = await statsCommand(args, new Output(stream));
  return { code, text };
}

describe('eventrail stats: consumer groups', () => {
  it('reports partitions, the lowest cursor, the lag after it and who holds the leases until when', async () => {
    const dir = tempDir();
    const path = dir.file('store');
    try {
      const now = Date.now();
      const leaseMs = 3_600_000;
      const store = await LmdbStore.open({ path, prefix: 'eventrail' });
      let positions: Position[] = [];
      let audit;
      try {
        await store.coordinate({ instance: 'pod-a', groups: [{ name: 'Mailer', startFrom: 'beginning' }], partitions: 4, leaseMs, now });
        positions = (await store.append(testEvents(10).map((e) => e.item))).positions;
        // pod-b runs Mailer too (a holds it all, live) and starts Audit at the head: 10 events behind it do not count.
        audit = await store.coordinate({
          instance: 'pod-b',
          groups: [
            { name: 'Mailer', startFrom: 'beginning' },
            { name: 'Audit', startFrom: 'now' },
          ],
          partitions: 4,
          leaseMs,
          now: now + 1,
        });
        // a hands Mailer's partitions 1 and 3 over to b, with their cursors, and moves 0 and 2 on.
        await store.writeProgress({
          instance: 'pod-a',
          cursors: [
            { group: 'Mailer', partition: 0, epoch: 1, position: positions[6]! },
            { group: 'Mailer', partition: 2, epoch: 1, position: positions[8]! },
          ],
        });
        await store.coordinate({
          instance: 'pod-a',
          groups: [{ name: 'Mailer', startFrom: 'beginning' }],
          partitions: 4,
          leaseMs,
          now: now + 2,
          release: [
            { group: 'Mailer', partition: 1, epoch: 1, cursor: positions[3]! },
            { group: 'Mailer', partition: 3, epoch: 1, cursor: positions[9]! },
          ],
        });
        await store.append(testEvents(5).map((e) => e.item));
      } finally {
        await store.close();
      }
      assert.ok(audit.held.every((h) => h.cursor!.equals(commitEnd(positions[9]!))));

      const json = await stats(['--store', path, '--json']);
      assert.equal(json.code, 0);
      const report = JSON.parse(json.text) as StoreReport;
      assert.equal(report.events, 15);
      const until = (ms: number) => new Date(ms).toISOString();
      assert.deepEqual(report.groups, [
        {
          group: 'Audit',
          partitions: 4,
          cursor: commitEnd(positions[9]!).toString('hex'),
          lag: 5,
          owners: [{ instance: 'pod-b', partitions: 4, until: until(now + 1 + leaseMs) }],
          unowned: 0,
        },
        {
          group: 'Mailer',
          partitions: 4,
          // The lowest of the four: partition 1's, where b will resume.
          cursor: positions[3]!.toString('hex'),
          lag: 6 + 5,
          owners: [{ instance: 'pod-a', partitions: 2, until: until(now + 2 + leaseMs) }],
          unowned: 2,
        },
      ]);

      const text = await stats(['--store', path]);
      assert.equal(text.code, 0);
      assert.match(text.text, /consumer groups \(lag = stored events after the lowest cursor\):/);
      assert.match(text.text, /\n {2}Mailer\s+lag\s+11\s+partitions\s+4\s+from [0-9a-f]{24}\n {4}pod-a: 2 partitions, lease until /);
      assert.match(text.text, /\n {4}unowned: 2 partitions\n/);
    } finally {
      dir.remove();
    }
  });

  it('says when no group has run on the store, and counts a group without cursors from the beginning', async () => {
    const dir = tempDir();
    const path = dir.file('store');
    try {
      const store = await LmdbStore.open({ path, prefix: 'eventrail' });
      try {
        await store.append(testEvents(3).map((e) => e.item));
      } finally {
        await store.close();
      }
      assert.match((await stats(['--store', path])).text, /consumer groups: none/);
      const again = await LmdbStore.open({ path, prefix: 'eventrail' });
      try {
        // An old-layout store (events, never coordinated): the group starts from the beginning.
        await again.coordinate({
          instance: 'x',
          groups: [{ name: 'G', startFrom: 'now' }],
          partitions: 2,
          leaseMs: 1_000,
          now: Date.now(),
        });
      } finally {
        await again.close();
      }
      const report = JSON.parse((await stats(['--store', path, '--json'])).text) as StoreReport;
      assert.deepEqual(
        report.groups.map((g) => [g.group, g.partitions, g.cursor, g.lag]),
        [['G', 2, null, 3]],
      );
    } finally {
      dir.remove();
    }
  });
});
