/**
 * The running counts of a store (events, audit entries, dead letters), kept
 * as int64 little-endian: FoundationDB's atomic add is little-endian, and lmdb
 * stores the same bytes.
 */
import { StoreCorruptError } from '../../errors.js';

export type CountName = 'events' | 'auditEntries' | 'deadLetters';

export function encodeCount(count: number): Buffer {
  const value = Buffer.alloc(8);
  value.writeBigInt64LE(BigInt(count), 0);
  return value;
}

export function decodeCount(value: Buffer | undefined): number {
  if (value === undefined) return 0;
  if (value.length !== 8) throw new StoreCorruptError(`a count is ${value.length} bytes, expected 8`);
  return Number(value.readBigInt64LE(0));
}
