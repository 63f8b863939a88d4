/**
 * planRound (src/store/coordination.ts) on its own: a coordination round
 * decided from a snapshot, with no database. A small in-memory model applies
 * each round's changes, so rounds of several instances can follow each other
 * as they would on a store (the backends apply the same changes in one
 * transaction each; test/store-conformance.ts runs them for real).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planRound, type RoundPlan, type RoundSnapshot } from '../src/store/coordination.js';
import type { GroupRecord, Membership } from '../src/store/layout/groups.js';
import {
  commitEnd,
  type CoordinateRequest,
  type CursorRecord,
  type GroupSpec,
  type LeaseRecord,
  type Position,
} from '../src/store/store.js';

const LEASE_MS = 1_000;
const T0 = 1_700_000_000_000;

const pos = (n: number, index = 0): Position => {
  const p = Buffer.alloc(12);
  p.writeBigUInt64BE(BigInt(n), 0);
  p.writeUInt16BE(index, 10);
  return p;
};
const hex = (p: Position | null) => (p === null ? null : p.toString('hex'));
const id = (group: string, partition: number) => `${group}/${partition}`;

/** A store as planRound sees it, changed by each round's changes as a backend would. */
class Model {
  partitions: number | null = null;
  members = new Map<string, Membership>();
  groups = new Map<string, GroupRecord>();
  leases = new Map<string, LeaseRecord>();
  cursors = new Map<string, CursorRecord>();
  checkpoints = new Map<string, Position>();
  head: Position | null = null;
  holdsEvents = false;

  snapshot(): RoundSnapshot {
    return {
      partitions: this.partitions,
      members: new Map(this.members),
      groups: new Map(this.groups),
      leases: [...this.leases.values()],
      cursors: [...this.cursors.values()],
      head: this.head,
      checkpoints: this.partitions === null ? new Map(this.checkpoints) : new Map(),
      holdsEvents: this.holdsEvents,
    };
  }

  round(request: Partial<CoordinateRequest> & { instance: string; now: number }): RoundPlan {
    const full: CoordinateRequest = {
      groups: [{ name: 'G', startFrom: 'beginning' }],
      partitions: 4,
      leaseMs: LEASE_MS,
      ...request,
    };
    const plan = planRound(this.snapshot(), full);
    const c = plan.changes;
    if (c.partitions !== null) this.partitions = c.partitions;
    for (const [m, member] of c.putMembers) this.members.set(m, member);
    for (const m of c.deleteMembers) this.members.delete(m);
    for (const [g, record] of c.putGroups) this.groups.set(g, record);
    for (const lease of c.putLeases) this.leases.set(id(lease.group, lease.partition), lease);
    for (const cursor of c.putCursors) {
      const stored = this.cursors.get(id(cursor.group, cursor.partition))?.position;
      // The changes must never move a cursor backwards by themselves.
      if (stored) assert.ok(Buffer.compare(cursor.position, stored) > 0, `cursor ${id(cursor.group, cursor.partition)} moves forward`);
      this.cursors.set(id(cursor.group, cursor.partition), cursor);
    }
    for (const name of c.deleteCheckpoints) this.checkpoints.delete(name);
    return plan;
  }

  owners(group = 'G'): string[] {
    return Array.from({ length: this.partitions ?? 0 }, (_, p) => this.leases.get(id(group, p))?.owner ?? '-');
  }
}

const heldIds = (plan: RoundPlan) => plan.result.held.map((h) => id(h.group, h.partition));

describe('planRound: membership and partitions', () => {
  it('records the partition count once; the stored count wins', () => {
    const m = new Model();
    const first = m.round({ instance: 'a', now: T0, partitions: 8 });
    assert.equal(first.changes.partitions, 8);
    assert.equal(first.result.partitions, 8);
    const second = m.round({ instance: 'b', now: T0, partitions: 3 });
    assert.equal(second.changes.partitions, null);
    assert.equal(second.result.partitions, 8);
  });

  it('writes its membership, drops expired members, and lists live ones sorted', () => {
    const m = new Model();
    m.round({ instance: 'c', now: T0 });
    m.round({ instance: 'a', now: T0 + 500 });
    const plan = m.round({ instance: 'b', now: T0 + 600 });
    assert.deepEqual(plan.result.members, ['a', 'b', 'c']);
    assert.deepEqual(m.members.get('b'), { expiresAt: T0 + 600 + LEASE_MS, groups: ['G'] });
    // c's membership lapsed at T0 + 1000: it is deleted and no longer counts.
    const later = m.round({ instance: 'b', now: T0 + LEASE_MS });
    assert.deepEqual(later.changes.deleteMembers, ['c']);
    assert.deepEqual(later.result.members, ['a', 'b']);
    assert.ok(!m.members.has('c'));
  });

  it('removes a leaving member, renews nothing and takes nothing for it', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0 });
    const before = m.leases.get('G/0')!;
    const plan = m.round({ instance: 'a', now: T0 + 100, leaving: true });
    assert.ok(!m.members.has('a'));
    assert.deepEqual(plan.result.members, []);
    assert.equal(m.leases.get('G/0')!.expiresAt, before.expiresAt, 'not renewed');
    // Still its own until they lapse or are released: listed, and all to hand over.
    assert.equal(plan.result.held.length, 4);
    assert.equal(plan.result.handOver.length, 4);
  });

  it('refuses a request that makes no sense', () => {
    const m = new Model();
    assert.throws(() => m.round({ instance: '', now: T0 }), TypeError);
    assert.throws(() => m.round({ instance: 'a', now: T0, partitions: 0 }), RangeError);
    assert.throws(() => m.round({ instance: 'a', now: T0, leaseMs: 0 }), RangeError);
    assert.throws(
      () =>
        m.round({
          instance: 'a',
          now: T0,
          groups: [
            { name: 'G', startFrom: 'now' },
            { name: 'G', startFrom: 'now' },
          ],
        }),
      TypeError,
    );
  });
});

describe('planRound: assignment', () => {
  it('spreads 16 partitions over 3 members as 6/5/5, each taking only its own', () => {
    const m = new Model();
    const request = { partitions: 16 };
    m.round({ instance: 'a', now: T0, ...request });
    m.round({ instance: 'b', now: T0 + 1, ...request });
    m.round({ instance: 'c', now: T0 + 2, ...request });
    // a took everything while alone; it hands over what is b's and c's now.
    const a = m.round({ instance: 'a', now: T0 + 3, ...request });
    assert.equal(a.result.held.length, 16);
    assert.deepEqual(
      a.result.handOver.map((h) => h.partition),
      [1, 2, 4, 5, 7, 8, 10, 11, 13, 14],
    );
    // Still held by a: b and c take nothing of it.
    assert.equal(m.round({ instance: 'b', now: T0 + 4, ...request }).result.held.length, 0);
    // a releases what it hands over (after draining), then b and c take theirs.
    m.round({
      instance: 'a',
      now: T0 + 5,
      ...request,
      release: a.result.handOver.map((h) => ({ ...h, epoch: 1, cursor: null })),
    });
    const b = m.round({ instance: 'b', now: T0 + 6, ...request });
    const c = m.round({ instance: 'c', now: T0 + 7, ...request });
    assert.deepEqual(
      b.result.held.map((h) => h.partition),
      [1, 4, 7, 10, 13],
    );
    assert.deepEqual(
      c.result.held.map((h) => h.partition),
      [2, 5, 8, 11, 14],
    );
    const counts = new Map<string, number>();
    for (const owner of m.owners()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(counts), { a: 6, b: 5, c: 5 });
    // Every take after a release is a new epoch.
    assert.ok(b.result.held.every((h) => h.epoch === 2));
    assert.equal(m.round({ instance: 'a', now: T0 + 8, ...request }).result.handOver.length, 0);
  });

  it('counts only the members that run the group', () => {
    const m = new Model();
    const groups: GroupSpec[] = [{ name: 'Other', startFrom: 'beginning' }];
    m.round({ instance: 'a', now: T0, groups });
    const b = m.round({ instance: 'b', now: T0 + 1 });
    assert.deepEqual(heldIds(b), ['G/0', 'G/1', 'G/2', 'G/3'], 'a does not run G: b takes all of it');
    assert.deepEqual(b.result.handOver, []);
  });

  it('takes over the leases of an expired member with the next epoch, which fences the old owner', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 2 });
    m.round({ instance: 'b', now: T0 + 1, partitions: 2 });
    // b never takes a live lease of a's.
    assert.deepEqual(m.owners(), ['a', 'a']);
    // a stops renewing; its membership and leases lapse at T0 + 1000.
    const late = T0 + LEASE_MS + 1;
    const b = m.round({ instance: 'b', now: late, partitions: 2 });
    assert.deepEqual(b.result.members, ['b']);
    assert.deepEqual(
      b.result.held.map((h) => [h.partition, h.epoch, h.expiresAt]),
      [
        [0, 2, late + LEASE_MS],
        [1, 2, late + LEASE_MS],
      ],
    );
    assert.deepEqual(m.owners(), ['b', 'b']);
    // a comes back: its old epoch is gone, and it takes nothing that b holds live.
    const a = m.round({ instance: 'a', now: late + 10, partitions: 2 });
    assert.deepEqual(a.result.held, []);
  });

  it('takes the leases of a member known to be gone at once, before they lapse', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 2 });
    m.round({ instance: 'b', now: T0 + 1, partitions: 2 });
    assert.deepEqual(m.owners(), ['a', 'a']);
    // a's process is gone (b found its pid missing): long before a's leases lapse, b takes them with the next epoch.
    const b = m.round({ instance: 'b', now: T0 + 2, partitions: 2, lapsed: ['a'] });
    assert.deepEqual(b.result.members, ['b']);
    assert.deepEqual(
      b.result.held.map((h) => [h.partition, h.epoch]),
      [
        [0, 2],
        [1, 2],
      ],
    );
    // Naming itself, or a member that is not there, changes nothing.
    const again = m.round({ instance: 'b', now: T0 + 3, partitions: 2, lapsed: ['b', 'nobody'] });
    assert.deepEqual(again.result.members, ['b']);
    assert.deepEqual(m.owners(), ['b', 'b']);
  });

  it('renews a lease it still holds, even lapsed when nobody took it, with the same epoch', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 1 });
    const again = m.round({ instance: 'a', now: T0 + 5 * LEASE_MS, partitions: 1 });
    assert.deepEqual(
      again.result.held.map((h) => [h.epoch, h.expiresAt]),
      [[1, T0 + 6 * LEASE_MS]],
    );
  });

  it('never takes a free lease whose desired owner is another live member', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 2 });
    m.round({ instance: 'b', now: T0 + 1, partitions: 2 });
    // a releases partition 1 (b's): a round of a's does not take it back.
    const a = m.round({ instance: 'a', now: T0 + 2, partitions: 2, release: [{ group: 'G', partition: 1, epoch: 1, cursor: null }] });
    assert.deepEqual(heldIds(a), ['G/0']);
    assert.deepEqual(m.leases.get('G/1'), { group: 'G', partition: 1, owner: '', expiresAt: 0, epoch: 1 });
    assert.deepEqual(heldIds(m.round({ instance: 'a', now: T0 + 3, partitions: 2 })), ['G/0']);
    assert.deepEqual(heldIds(m.round({ instance: 'b', now: T0 + 4, partitions: 2 })), ['G/1']);
  });
});

describe('planRound: releases and cursors', () => {
  it('ignores a release with a stale epoch, or of a lease it does not hold', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 1 });
    const stale = m.round({ instance: 'a', now: T0 + 1, partitions: 1, release: [{ group: 'G', partition: 0, epoch: 7, cursor: pos(9) }] });
    assert.deepEqual(stale.changes.putCursors, []);
    assert.equal(m.leases.get('G/0')!.owner, 'a');
    const other = m.round({ instance: 'b', now: T0 + 2, partitions: 1, release: [{ group: 'G', partition: 0, epoch: 1, cursor: pos(9) }] });
    assert.deepEqual(other.changes.putCursors, []);
    assert.equal(m.leases.get('G/0')!.owner, 'a');
  });

  it('releases a lease of a group it no longer runs', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 1, groups: [{ name: 'Old', startFrom: 'beginning' }] });
    const plan = m.round({
      instance: 'a',
      now: T0 + 1,
      partitions: 1,
      groups: [],
      release: [{ group: 'Old', partition: 0, epoch: 1, cursor: pos(3) }],
    });
    assert.deepEqual(plan.result.held, []);
    assert.equal(m.leases.get('Old/0')!.owner, '');
    assert.equal(hex(m.cursors.get('Old/0')!.position), hex(pos(3)));
  });

  it('writes a release cursor, never backwards, and resumes the next owner from it', () => {
    const m = new Model();
    m.round({ instance: 'a', now: T0, partitions: 1 });
    m.round({ instance: 'a', now: T0 + 1, partitions: 1, release: [{ group: 'G', partition: 0, epoch: 1, cursor: pos(5, 3) }] });
    assert.equal(hex(m.cursors.get('G/0')!.position), hex(pos(5, 3)));
    // a takes it again (it is the only member): epoch 2, from the cursor.
    const again = m.round({ instance: 'a', now: T0 + 2, partitions: 1 });
    assert.deepEqual(
      again.result.held.map((h) => [h.epoch, hex(h.cursor)]),
      [[2, hex(pos(5, 3))]],
    );
    // A lower final cursor leaves the stored one.
    const lower = m.round({ instance: 'a', now: T0 + 3, partitions: 1, release: [{ group: 'G', partition: 0, epoch: 2, cursor: pos(4) }] });
    assert.deepEqual(lower.changes.putCursors, []);
    assert.equal(hex(m.cursors.get('G/0')!.position), hex(pos(5, 3)));
    // null leaves it too.
    m.round({ instance: 'a', now: T0 + 4, partitions: 1 });
    m.round({ instance: 'a', now: T0 + 5, partitions: 1, release: [{ group: 'G', partition: 0, epoch: 3, cursor: null }] });
    assert.equal(hex(m.cursors.get('G/0')!.position), hex(pos(5, 3)));
  });
});

describe('planRound: groups never seen', () => {
  it("starts a 'now' group at the head on every partition, a 'beginning' group with no cursor", () => {
    const m = new Model();
    m.partitions = 3;
    m.holdsEvents = true;
    m.head = commitEnd(pos(41, 7));
    const plan = m.round({
      instance: 'a',
      now: T0,
      groups: [
        { name: 'Late', startFrom: 'now' },
        { name: 'Early', startFrom: 'beginning' },
      ],
    });
    assert.deepEqual(
      plan.result.held.map((h) => [h.group, h.partition, hex(h.cursor)]),
      [
        ['Late', 0, hex(commitEnd(pos(41)))],
        ['Late', 1, hex(commitEnd(pos(41)))],
        ['Late', 2, hex(commitEnd(pos(41)))],
        ['Early', 0, null],
        ['Early', 1, null],
        ['Early', 2, null],
      ],
    );
    assert.deepEqual(m.groups.get('Late'), { startFrom: 'now', createdAt: T0 });
    assert.deepEqual(m.groups.get('Early'), { startFrom: 'beginning', createdAt: T0 });
    // Seen: a later head does not move the group's cursors.
    m.head = commitEnd(pos(99));
    const later = m.round({ instance: 'a', now: T0 + 1, groups: [{ name: 'Late', startFrom: 'now' }] });
    assert.deepEqual(later.changes.putGroups, new Map());
    assert.deepEqual(later.changes.putCursors, []);
    assert.equal(hex(later.result.held[0]!.cursor), hex(commitEnd(pos(41))));
  });

  it("starts a 'now' group on an empty log from the beginning", () => {
    const m = new Model();
    const plan = m.round({ instance: 'a', now: T0, groups: [{ name: 'G', startFrom: 'now' }] });
    assert.deepEqual(plan.changes.putCursors, []);
    assert.ok(plan.result.held.every((h) => h.cursor === null));
  });
});

describe('planRound: a store of the layout before groups', () => {
  it('gives every group the lowest old checkpoint on every partition, and clears the old keys', () => {
    const m = new Model();
    m.holdsEvents = true;
    m.head = commitEnd(pos(50));
    m.checkpoints = new Map([
      ['pod-1/$bus', pos(30)],
      ['pod-1/Mailer', pos(20, 4)],
      ['pod-2/$bus', pos(40)],
      ['pod-2/Audit', pos(35)],
    ]);
    const plan = m.round({
      instance: 'a',
      now: T0,
      partitions: 2,
      groups: [
        { name: 'Mailer', startFrom: 'now' },
        { name: 'Fresh', startFrom: 'now' },
      ],
    });
    assert.equal(m.partitions, 2);
    assert.deepEqual([...m.checkpoints], []);
    assert.deepEqual(plan.changes.deleteCheckpoints.slice().sort(), ['pod-1/$bus', 'pod-1/Mailer', 'pod-2/$bus', 'pod-2/Audit']);
    // Requested groups, and Audit (named by an old key only), all from the lowest: nothing is skipped.
    assert.deepEqual([...m.groups.keys()].sort(), ['Audit', 'Fresh', 'Mailer']);
    assert.ok([...m.groups.values()].every((g) => g.startFrom === 'migrated'));
    assert.deepEqual(
      [...m.cursors.values()].map((c) => [c.group, c.partition, hex(c.position)]).sort(),
      ['Audit', 'Fresh', 'Mailer'].flatMap((g) => [
        [g, 0, hex(pos(20, 4))],
        [g, 1, hex(pos(20, 4))],
      ]),
    );
    assert.ok(plan.result.held.every((h) => hex(h.cursor) === hex(pos(20, 4))));
    // Done once: the next round sees a partition count and migrates nothing.
    const next = m.round({ instance: 'a', now: T0 + 1, partitions: 2, groups: [{ name: 'Mailer', startFrom: 'now' }] });
    assert.deepEqual(next.changes.putCursors, []);
    assert.deepEqual(next.changes.deleteCheckpoints, []);
  });

  it('starts every group from the beginning when the old store holds events but no checkpoint', () => {
    const m = new Model();
    m.holdsEvents = true;
    m.head = commitEnd(pos(12));
    const plan = m.round({ instance: 'a', now: T0, groups: [{ name: 'G', startFrom: 'now' }] });
    assert.deepEqual(plan.changes.putCursors, []);
    assert.deepEqual(m.groups.get('G'), { startFrom: 'migrated', createdAt: T0 });
    assert.ok(plan.result.held.every((h) => h.cursor === null));
  });
});
