/**
 * Pieces of FoundationDB tuples (npm `fdb-tuple`), built by hand.
 * fdb-tuple's pack() costs ~1.8 µs per key, the whole per-event budget, so
 * the keys written per event are assembled from pre-packed prefixes and these
 * encoders; test/store-layout.test.ts checks them against pack().
 */
import { pack } from 'fdb-tuple';
import { utf8Write } from '../../native-buffer.js';
import { STAMP_BYTES, type Stamp } from './positions.js';

// Tuple type codes (https://github.com/apple/foundationdb/blob/main/design/tuple.md).
export const TUPLE_STRING = 0x02;
const TUPLE_INT_ZERO = 0x14;
export const TUPLE_VERSIONSTAMP = 0x33;
/** A versionstamp item: type code + 12 bytes. */
export const VERSIONSTAMP_ITEM_BYTES = 13;
/** No tuple item starts with 0xff, so `prefix ‖ 0xff` bounds every key under prefix. */
export const AFTER = Buffer.from([0xff]);

export const NO_PREFIX = Buffer.alloc(0);

/** The tuple encoding of one string item: 0x02, UTF-8 with 0x00 escaped as 0x00 0xff, 0x00. */
export function tupleString(text: string): Buffer {
  return withString(NO_PREFIX, text);
}

/** `prefix ‖ tupleString(text)`, built in one buffer: keys written for every event are made this way. */
export function withString(prefix: Buffer, text: string): Buffer {
  if (text.includes('\0')) return concat([prefix, pack(text)]);
  return fillWithString(Buffer.allocUnsafe(withStringBytes(prefix, text)), prefix, text);
}

/** The length of `withString(prefix, text)` for a text without NUL (nothing to escape). */
export const withStringBytes = (prefix: Buffer, text: string): number => prefix.length + Buffer.byteLength(text, 'utf8') + 2;

/** Writes `withString(prefix, text)` into `out`, which is exactly that long, for a text without NUL. */
export function fillWithString(out: Buffer, prefix: Buffer, text: string): Buffer {
  for (let i = 0; i < prefix.length; i++) out[i] = prefix[i]!;
  out[prefix.length] = TUPLE_STRING;
  utf8Write(out, text, prefix.length + 1);
  out[out.length - 1] = 0x00;
  return out;
}

/** The tuple encoding of a non-negative integer item. */
export function tupleUint(n: number): Buffer {
  if (n === 0) return Buffer.from([TUPLE_INT_ZERO]);
  if (n < 0x100) return Buffer.from([TUPLE_INT_ZERO + 1, n]);
  if (n < 0x10000) return Buffer.from([TUPLE_INT_ZERO + 2, n >> 8, n & 0xff]);
  return pack(n);
}

/**
 * Where the tuple string item whose bytes start at `at` (after its 0x02) ends:
 * the index just past its 0x00 terminator (an escaped NUL is 0x00 0xff), or -1.
 */
export function stringItemEnd(key: Buffer, at: number): number {
  for (let i = at; i < key.length; i++) {
    if (key[i] !== 0x00) continue;
    if (key[i + 1] === 0xff) i++;
    else return i + 1;
  }
  return -1;
}

export function concat(parts: readonly Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

/** `prefix ‖ versionstamp(stamp ‖ 0x0000)` and where the stamp starts. */
export function withStamp(prefix: Buffer, stamp: Stamp, tail?: Buffer): Buffer {
  const out = Buffer.alloc(prefix.length + VERSIONSTAMP_ITEM_BYTES + (tail?.length ?? 0));
  prefix.copy(out, 0);
  out[prefix.length] = TUPLE_VERSIONSTAMP;
  stamp.copy(out, prefix.length + 1, 0, STAMP_BYTES);
  // bytes 11-12 of the item stay 0x0000: the user version of a block-level stamp
  if (tail) tail.copy(out, prefix.length + VERSIONSTAMP_ITEM_BYTES);
  return out;
}

/** Bytes of a string as a tuple item, without building it: type code, UTF-8 with each 0x00 escaped to 0x00 0xff, terminator. */
export function tupleStringBytes(text: string): number {
  let bytes = Buffer.byteLength(text, 'utf8') + 2;
  if (text.includes('\0')) for (let at = text.indexOf('\0'); at !== -1; at = text.indexOf('\0', at + 1)) bytes++;
  return bytes;
}
