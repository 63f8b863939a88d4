/**
 * The values of the consumer-group keys (keys.ts): the partition count,
 * memberships, group records and leases. Small records, packed as
 * FoundationDB tuples (npm `fdb-tuple`) so both backends store the same bytes
 * and a record can gain a trailing item later without breaking old readers.
 * Cursors are plain 12-byte positions.
 */
import { pack, unpack } from 'fdb-tuple';
import { StoreCorruptError } from '../../errors.js';
import type { LeaseRecord } from '../store.js';

/** An instance's membership: when it lapses and the groups it runs (an assignment of group G counts only members running G). */
export interface Membership {
  readonly expiresAt: number;
  readonly groups: readonly string[];
}

/** How a group's cursors were first set: from the start, from the head, or from the checkpoints of the layout before groups. */
export type GroupStart = 'beginning' | 'now' | 'migrated';

export interface GroupRecord {
  readonly startFrom: GroupStart;
  /** The Date.now() of the instance that first saw the group. */
  readonly createdAt: number;
}

export type LeaseValue = Omit<LeaseRecord, 'group' | 'partition'>;

const items = (value: Buffer, what: string): unknown[] => {
  try {
    return unpack(value) as unknown[];
  } catch (err) {
    throw new StoreCorruptError(`${what} cannot be decoded: ${(err as Error).message}`, err);
  }
};

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

export function encodePartitionCount(count: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(count, 0);
  return out;
}

export function decodePartitionCount(value: Buffer | undefined): number | null {
  if (value === undefined) return null;
  if (value.length !== 4) throw new StoreCorruptError(`the partition count is ${value.length} bytes, expected 4`);
  const count = value.readUInt32BE(0);
  if (count < 1) throw new StoreCorruptError('the partition count is 0');
  return count;
}

export function encodeMembership(member: Membership): Buffer {
  return pack([member.expiresAt, ...member.groups]);
}

export function decodeMembership(value: Buffer, instance: string): Membership {
  const [expiresAt, ...groups] = items(value, `the membership of ${instance}`);
  if (!isNumber(expiresAt) || !groups.every((g) => typeof g === 'string'))
    throw new StoreCorruptError(`the membership of ${instance} is not (expiresAt, ...groups)`);
  return { expiresAt, groups: groups as string[] };
}

export function encodeGroupRecord(record: GroupRecord): Buffer {
  return pack([record.startFrom, record.createdAt]);
}

export function decodeGroupRecord(value: Buffer, group: string): GroupRecord {
  const [startFrom, createdAt] = items(value, `the record of group ${group}`);
  if ((startFrom !== 'beginning' && startFrom !== 'now' && startFrom !== 'migrated') || !isNumber(createdAt))
    throw new StoreCorruptError(`the record of group ${group} is not (startFrom, createdAt)`);
  return { startFrom, createdAt };
}

export function encodeLease(lease: LeaseValue): Buffer {
  return pack([lease.owner, lease.expiresAt, lease.epoch]);
}

export function decodeLease(value: Buffer, what: string): LeaseValue {
  const [owner, expiresAt, epoch] = items(value, `the lease of ${what}`);
  if (typeof owner !== 'string' || !isNumber(expiresAt) || !isNumber(epoch) || !Number.isInteger(epoch) || epoch < 0)
    throw new StoreCorruptError(`the lease of ${what} is not (owner, expiresAt, epoch)`);
  return { owner, expiresAt, epoch };
}

/** One string per (group, partition), for maps keyed by lease: the partition first, so no group name can collide. */
export const groupPartitionId = (group: string, partition: number): string => `${partition}\u0000${group}`;
