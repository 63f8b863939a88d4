/**
 * Cursors (src/bus/cursors.ts): a consumer's watermark is the last position
 * of the longest prefix of routed groups whose deliveries to it are all
 * finished, whatever order the groups finish in; one consumer's progress
 * never waits for another's, and a poisoned group holds every consumer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommitGroup } from '../src/bus/accepted.js';
import { Cursors } from '../src/bus/cursors.js';

const at = (n: number) => {
  const position = Buffer.alloc(12);
  position.writeUInt32BE(n, 6);
  return position;
};

/** A routed group with `deliveries[c]` deliveries to consumer c, ending at position `end`. */
function routed(cursors: Cursors, end: number, deliveries: number[]): CommitGroup {
  const group = new CommitGroup(0);
  cursors.track(group);
  group.lastPosition = at(end);
  deliveries.forEach((n, c) => (group.left![c] = n));
  cursors.routed(group);
  return group;
}

const mark = (cursors: Cursors, c: number) => {
  const { position, seq } = cursors.watermark(c);
  return { at: position === null ? null : position.readUInt32BE(6), seq };
};

describe('cursors', () => {
  it('move over the finished prefix only, per consumer', () => {
    let moves = 0;
    const cursors = new Cursors(2, () => moves++);
    const first = routed(cursors, 10, [1, 1]);
    const second = routed(cursors, 20, [1, 0]);
    assert.deepEqual(mark(cursors, 0), { at: null, seq: 0 });
    assert.deepEqual(mark(cursors, 1), { at: null, seq: 0 });
    // The second group finishes first: nothing moves past the unfinished first.
    cursors.handled(second, 0);
    assert.deepEqual(mark(cursors, 0), { at: null, seq: 0 });
    cursors.handled(first, 1);
    // Consumer 1 had nothing in the second group: it passes both.
    assert.deepEqual(mark(cursors, 1), { at: 20, seq: 2 });
    assert.deepEqual(mark(cursors, 0), { at: null, seq: 0 });
    cursors.handled(first, 0);
    assert.deepEqual(mark(cursors, 0), { at: 20, seq: 2 });
    assert.ok(moves >= 2);
  });

  it('do not pass a group that is tracked but not routed yet', () => {
    const cursors = new Cursors(1, () => undefined);
    const open = new CommitGroup(0);
    cursors.track(open);
    open.lastPosition = at(5);
    const later = routed(cursors, 9, [0]);
    assert.deepEqual(mark(cursors, 0), { at: null, seq: 0 }, 'the unrouted group holds the watermark');
    cursors.routed(open);
    assert.deepEqual(mark(cursors, 0), { at: 9, seq: later.seq });
  });

  it('a poisoned group holds every consumer for good', () => {
    const cursors = new Cursors(2, () => undefined);
    const bad = routed(cursors, 10, [1, 1]);
    routed(cursors, 20, [0, 0]);
    bad.poisoned = true;
    cursors.handled(bad, 0);
    cursors.handled(bad, 1);
    assert.deepEqual(mark(cursors, 0), { at: null, seq: 0 });
    assert.deepEqual(mark(cursors, 1), { at: null, seq: 0 });
  });

  it('a group without a position (nothing read) moves the seq but keeps the position', () => {
    const cursors = new Cursors(1, () => undefined);
    routed(cursors, 7, [0]);
    const empty = new CommitGroup(0);
    cursors.track(empty);
    cursors.routed(empty);
    assert.deepEqual(mark(cursors, 0), { at: 7, seq: 2 });
  });

  it('keeps working after thousands of groups (the finished ones are dropped)', () => {
    const cursors = new Cursors(1, () => undefined);
    const groups = Array.from({ length: 5000 }, (_, i) => routed(cursors, i + 1, [1]));
    for (const group of groups) cursors.handled(group, 0);
    assert.deepEqual(mark(cursors, 0), { at: 5000, seq: 5000 });
    const last = routed(cursors, 6000, [1]);
    cursors.handled(last, 0);
    assert.deepEqual(mark(cursors, 0), { at: 6000, seq: 5001 });
  });
});
