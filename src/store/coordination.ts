/**
 * One round of consumer-group coordination, decided without a database: each
 * backend reads a {@link RoundSnapshot} and applies the {@link RoundChanges}
 * inside one transaction (lmdb: one write transaction; FoundationDB:
 * doTransaction, whose lease reads conflict with a concurrent takeover), so a
 * lease never has two owners with the same epoch.
 *
 * The rules, in the order a round applies them:
 * 1. The store's partition count wins; `request.partitions` is recorded when
 *    there is none.
 * 2. This instance's membership is written (expiresAt = now + leaseMs, its
 *    group names), or deleted when it is leaving; members whose expiresAt is
 *    at or before `now` are deleted.
 * 3. Releases: a lease still held by this instance with the given epoch is
 *    freed (owner '', expiresAt 0, same epoch) and its cursor written; a
 *    stale release is ignored.
 * 4. A group never seen gets its record and, when it starts from 'now', a
 *    cursor at the head for every partition (an empty log: no cursor, which
 *    is the start). A store written before groups existed (no partition count
 *    but events or old checkpoints) is migrated instead: every requested
 *    group and every group named by an old checkpoint gets a cursor at the
 *    lowest old checkpoint for every partition (nothing is skipped: at least
 *    once), none when there were no checkpoints, and the old keys go.
 * 5. Assignment: of the live members running group G, sorted by id, the
 *    desired owner of partition p is `sorted[p % n]`. A lease this instance
 *    holds is renewed (same epoch), and listed in `handOver` when its desired
 *    owner is another; a free lease (none, owner '', or lapsed) whose desired
 *    owner is this instance is taken with epoch + 1; any other lease is left
 *    alone. A leaving instance renews nothing and takes nothing.
 * Cursors never move backwards: a write keeps the greater position.
 */
import {
  encodeGroupRecord,
  encodeLease,
  encodeMembership,
  encodePartitionCount,
  groupPartitionId,
  type GroupRecord,
  type Membership,
} from './layout/groups.js';
import type { StoreLayout } from './layout/keys.js';
import {
  comparePositions,
  type CoordinateRequest,
  type CoordinateResult,
  type CursorRecord,
  type GroupPartition,
  type HeldLease,
  type LeaseRecord,
  type Position,
} from './store.js';

/** What a round reads, in its transaction. */
export interface RoundSnapshot {
  /** The recorded partition count, or null when the store has none yet. */
  readonly partitions: number | null;
  /** Every membership. */
  readonly members: ReadonlyMap<string, Membership>;
  /** The records of the groups of {@link groupsOfRound} that exist. */
  readonly groups: ReadonlyMap<string, GroupRecord>;
  /** The stored leases of those groups. */
  readonly leases: readonly LeaseRecord[];
  /** The stored cursors of those groups (records with a position). */
  readonly cursors: readonly CursorRecord[];
  /** The log's head (`commitEnd` of the last commit), null when empty. */
  readonly head: Position | null;
  /** The old layout's checkpoints, `instance/name` → position: read only when `partitions` is null, else empty. */
  readonly checkpoints: ReadonlyMap<string, Position>;
  /** Whether the store holds any event (read only when `partitions` is null). */
  readonly holdsEvents: boolean;
}

export interface CursorChange extends GroupPartition {
  readonly position: Position;
}

/** What a round writes: every cursor here is already the greater of the stored and the new position. */
export interface RoundChanges {
  /** The partition count to record, or null to leave it. */
  readonly partitions: number | null;
  readonly putMembers: ReadonlyMap<string, Membership>;
  readonly deleteMembers: readonly string[];
  readonly putGroups: ReadonlyMap<string, GroupRecord>;
  readonly putLeases: readonly LeaseRecord[];
  readonly putCursors: readonly CursorChange[];
  /** Old checkpoint names (`instance/name`) to delete. */
  readonly deleteCheckpoints: readonly string[];
}

export interface RoundPlan {
  readonly changes: RoundChanges;
  readonly result: CoordinateResult;
}

/** The old layout's name of the bus-wide checkpoint, which names no group. */
const OLD_BUS_CHECKPOINT = '$bus';

/** A group named by an old checkpoint key `instance/name`, or null for the bus's own. */
export function groupOfCheckpoint(name: string): string | null {
  const slash = name.indexOf('/');
  const group = slash < 0 ? name : name.slice(slash + 1);
  return group === OLD_BUS_CHECKPOINT || group === '' ? null : group;
}

/**
 * The groups whose records, leases and cursors a round must read: the
 * requested ones, those of its releases, and when the store is being migrated
 * (no partition count), those named by its old checkpoints.
 */
export function groupsOfRound(request: CoordinateRequest, checkpoints: Iterable<string>): string[] {
  const names = new Set(request.groups.map((g) => g.name));
  for (const release of request.release ?? []) names.add(release.group);
  for (const name of checkpoints) {
    const group = groupOfCheckpoint(name);
    if (group !== null) names.add(group);
  }
  return [...names];
}

export function checkRequest(request: CoordinateRequest): void {
  const positiveInt = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (typeof request.instance !== 'string' || request.instance.length === 0)
    throw new TypeError(`coordinate: instance must be a non-empty string, got ${JSON.stringify(request.instance)}`);
  if (!positiveInt(request.partitions) || request.partitions > 0xffffffff)
    throw new RangeError(`coordinate: partitions must be a positive integer, got ${request.partitions}`);
  if (!(request.leaseMs > 0)) throw new RangeError(`coordinate: leaseMs must be positive, got ${request.leaseMs}`);
  if (!Number.isFinite(request.now)) throw new RangeError(`coordinate: now must be a number of milliseconds, got ${request.now}`);
  const seen = new Set<string>();
  for (const group of request.groups) {
    if (typeof group.name !== 'string' || group.name.length === 0)
      throw new TypeError('coordinate: a group name must be a non-empty string');
    if (seen.has(group.name)) throw new TypeError(`coordinate: group ${group.name} is named twice`);
    if (group.startFrom !== 'beginning' && group.startFrom !== 'now')
      throw new TypeError(`coordinate: group ${group.name} must start from 'beginning' or 'now', got ${String(group.startFrom)}`);
    seen.add(group.name);
  }
}

/** Decides one round (see the top of this file). Pure: the snapshot is not changed. */
export function planRound(snapshot: RoundSnapshot, request: CoordinateRequest): RoundPlan {
  checkRequest(request);
  const { instance: me, now, leaseMs } = request;
  const migrating = snapshot.partitions === null && (snapshot.holdsEvents || snapshot.checkpoints.size > 0);
  const partitions = snapshot.partitions ?? request.partitions;

  // Memberships.
  const putMembers = new Map<string, Membership>();
  const deleteMembers: string[] = [];
  const live = new Map<string, Membership>();
  // Instances known to be gone count as lapsed now: their membership goes and their leases are free.
  const gone = new Set((request.lapsed ?? []).filter((id) => id !== me));
  for (const [id, member] of snapshot.members) {
    if (id === me) continue;
    if (member.expiresAt <= now || gone.has(id)) deleteMembers.push(id);
    else live.set(id, member);
  }
  if (request.leaving) {
    if (snapshot.members.has(me)) deleteMembers.push(me);
  } else {
    const mine: Membership = { expiresAt: now + leaseMs, groups: request.groups.map((g) => g.name) };
    putMembers.set(me, mine);
    live.set(me, mine);
  }

  // Leases and cursors as they stand, changed in place as the round goes.
  const leases = new Map<string, LeaseRecord>();
  for (const lease of snapshot.leases) leases.set(groupPartitionId(lease.group, lease.partition), lease);
  const cursors = new Map<string, Position>();
  for (const cursor of snapshot.cursors)
    if (cursor.position !== null) cursors.set(groupPartitionId(cursor.group, cursor.partition), cursor.position);
  const changedLeases = new Map<string, LeaseRecord>();
  const changedCursors = new Map<string, CursorChange>();
  const setLease = (lease: LeaseRecord) => {
    const id = groupPartitionId(lease.group, lease.partition);
    leases.set(id, lease);
    changedLeases.set(id, lease);
  };
  /** Never backwards. */
  const moveCursor = (group: string, partition: number, position: Position) => {
    const id = groupPartitionId(group, partition);
    const stored = cursors.get(id);
    if (stored !== undefined && comparePositions(stored, position) >= 0) return;
    const copy = Buffer.from(position);
    cursors.set(id, copy);
    changedCursors.set(id, { group, partition, position: copy });
  };

  // Releases.
  for (const release of request.release ?? []) {
    const lease = leases.get(groupPartitionId(release.group, release.partition));
    if (lease === undefined || lease.owner !== me || lease.epoch !== release.epoch) continue;
    setLease({ group: release.group, partition: release.partition, owner: '', expiresAt: 0, epoch: lease.epoch });
    if (release.cursor !== null) moveCursor(release.group, release.partition, release.cursor);
  }

  // Groups never seen, and the migration of the old layout.
  const putGroups = new Map<string, GroupRecord>();
  const deleteCheckpoints: string[] = [];
  if (migrating) {
    let lowest: Position | null = null;
    for (const [name, position] of snapshot.checkpoints) {
      if (lowest === null || comparePositions(position, lowest) < 0) lowest = position;
      deleteCheckpoints.push(name);
    }
    const groups = new Set(request.groups.map((g) => g.name));
    for (const name of snapshot.checkpoints.keys()) {
      const group = groupOfCheckpoint(name);
      if (group !== null) groups.add(group);
    }
    for (const group of groups) {
      if (snapshot.groups.has(group)) continue;
      putGroups.set(group, { startFrom: 'migrated', createdAt: now });
      if (lowest !== null) for (let p = 0; p < partitions; p++) moveCursor(group, p, lowest);
    }
  } else {
    for (const group of request.groups) {
      if (snapshot.groups.has(group.name)) continue;
      putGroups.set(group.name, { startFrom: group.startFrom, createdAt: now });
      if (group.startFrom === 'now' && snapshot.head !== null)
        for (let p = 0; p < partitions; p++) moveCursor(group.name, p, snapshot.head);
    }
  }

  // Assignment.
  const held: HeldLease[] = [];
  const handOver: GroupPartition[] = [];
  for (const { name: group } of request.groups) {
    const runners = [...live].filter(([, m]) => m.groups.includes(group)).map(([id]) => id);
    runners.sort(compareIds);
    for (let p = 0; p < partitions; p++) {
      const desired = runners.length === 0 ? null : runners[p % runners.length]!;
      const lease = leases.get(groupPartitionId(group, p));
      let mine: LeaseRecord | null = null;
      if (lease !== undefined && lease.owner === me) {
        // Nobody took it since, expired or not: the epoch still fences every other writer out.
        mine = request.leaving ? lease : { ...lease, expiresAt: now + leaseMs };
        if (!request.leaving) setLease(mine);
      } else if (desired === me && (lease === undefined || lease.owner === '' || lease.expiresAt <= now || gone.has(lease.owner))) {
        mine = { group, partition: p, owner: me, expiresAt: now + leaseMs, epoch: (lease?.epoch ?? 0) + 1 };
        setLease(mine);
      }
      if (mine === null) continue;
      held.push({
        group,
        partition: p,
        epoch: mine.epoch,
        expiresAt: mine.expiresAt,
        cursor: cursors.get(groupPartitionId(group, p)) ?? null,
      });
      if (desired !== me) handOver.push({ group, partition: p });
    }
  }

  return {
    changes: {
      partitions: snapshot.partitions === null ? partitions : null,
      putMembers,
      deleteMembers,
      putGroups,
      putLeases: [...changedLeases.values()],
      putCursors: [...changedCursors.values()],
      deleteCheckpoints,
    },
    result: { partitions, held, handOver, members: [...live.keys()].sort(compareIds) },
  };
}

/** Instance ids sort by code unit, the same everywhere (not by locale). */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A round's changes as key writes: `sets` and `clears` as they are, `maxes` kept only if greater than the stored value (bytewise). */
export interface RoundWrites {
  readonly sets: { key: Buffer; value: Buffer }[];
  /** Cursors: a backend with a bytewise-max write (FoundationDB's BYTE_MAX) need not have read them. */
  readonly maxes: { key: Buffer; value: Buffer }[];
  readonly clears: Buffer[];
}

export function roundWrites(layout: StoreLayout, changes: RoundChanges): RoundWrites {
  const sets: { key: Buffer; value: Buffer }[] = [];
  const clears: Buffer[] = [];
  if (changes.partitions !== null) sets.push({ key: layout.partitionsKey, value: encodePartitionCount(changes.partitions) });
  for (const [id, member] of changes.putMembers) sets.push({ key: layout.memberKey(id), value: encodeMembership(member) });
  for (const id of changes.deleteMembers) clears.push(layout.memberKey(id));
  for (const [group, record] of changes.putGroups) sets.push({ key: layout.groupKey(group), value: encodeGroupRecord(record) });
  for (const lease of changes.putLeases) sets.push({ key: layout.leaseKey(lease.group, lease.partition), value: encodeLease(lease) });
  for (const name of changes.deleteCheckpoints) clears.push(layout.checkpointKey(name));
  const maxes = changes.putCursors.map((c) => ({ key: layout.cursorKey(c.group, c.partition), value: c.position }));
  return { sets, maxes, clears };
}
