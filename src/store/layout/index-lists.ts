/**
 * The values of the tenant (`t`) and time (`ts`) index keys: the block
 * indices of the events they name, uint16BE each.
 */
import { StoreCorruptError } from '../../errors.js';

export function encodeIndexList(indices: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(indices.length * 2);
  for (let i = 0; i < indices.length; i++) out.writeUInt16BE(indices[i]!, i * 2);
  return out;
}

export function decodeIndexList(value: Buffer): number[] {
  if (value.length % 2 !== 0) throw new StoreCorruptError(`an index list is ${value.length} bytes, not a multiple of 2`);
  const indices = new Array<number>(value.length / 2);
  for (let i = 0; i < indices.length; i++) indices[i] = value.readUInt16BE(i * 2);
  return indices;
}
