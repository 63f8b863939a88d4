/**
 * Stamps and positions. A stamp is the 10 bytes a commit shares with every
 * event of its block: a FoundationDB commit versionstamp, or on lmdb the
 * commit counter (uint64BE) then 0x0000. A position is `stamp ‖ uint16BE(i)`
 * for the event at index i of the block.
 */
import { StoreCorruptError } from '../../errors.js';
import { POSITION_BYTES, type Position } from '../store.js';

/** The 10-byte commit stamp shared by every event of one block. */
export type Stamp = Buffer;

export const STAMP_BYTES = 10;

/**
 * The stamp a plan is built with before its commit stamp is known: lmdb patches
 * it in the write transaction, FoundationDB fills it in at commit. Never
 * written to by anyone (plans copy stamps out of it, not into it).
 */
export const PLACEHOLDER_STAMP: Stamp = Buffer.alloc(STAMP_BYTES);

/** lmdb's stamp: the commit counter (uint64BE) then 0x0000, shaped like a FoundationDB commit version + batch order. */
export function stampFromCounter(counter: bigint): Stamp {
  const stamp = Buffer.alloc(STAMP_BYTES);
  stamp.writeBigUInt64BE(counter, 0);
  return stamp;
}

export function counterFromStamp(stamp: Stamp): bigint {
  return stamp.readBigUInt64BE(0);
}

export function encodeCounter(counter: bigint): Buffer {
  const value = Buffer.alloc(8);
  value.writeBigUInt64BE(counter, 0);
  return value;
}

export function decodeCounter(value: Buffer | undefined): bigint {
  if (value === undefined) return 0n;
  if (value.length !== 8) throw new StoreCorruptError(`the commit counter is ${value.length} bytes, expected 8`);
  return value.readBigUInt64BE(0);
}

export function positionOf(stamp: Stamp, index: number): Position {
  const position = Buffer.allocUnsafe(POSITION_BYTES);
  stamp.copy(position, 0, 0, STAMP_BYTES);
  position.writeUInt16BE(index, STAMP_BYTES);
  return position;
}

/** The stamp of a position (a view, not a copy). */
export function stampOf(position: Position): Stamp {
  return position.subarray(0, STAMP_BYTES);
}

export function indexOf(position: Position): number {
  return position.readUInt16BE(STAMP_BYTES);
}

export function checkPosition(position: Buffer, what: string): Position {
  if (position.length !== POSITION_BYTES) throw new StoreCorruptError(`${what} is ${position.length} bytes, expected ${POSITION_BYTES}`);
  return position;
}

export function checkStamp(stamp: Stamp): void {
  if (stamp.length !== STAMP_BYTES) throw new RangeError(`a stamp is ${STAMP_BYTES} bytes, got ${stamp.length}`);
}
