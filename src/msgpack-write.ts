/**
 * msgpack primitives for the event writer: strings, numbers, 64-bit integers,
 * array and map headers, written into an arena at an offset and returning
 * where they end. Each checks for room first and throws FULL when there is
 * none; the caller catches it and continues in a new arena.
 */
import { utf8Write } from './native-buffer.js';

export const NIL = 0xc0;
export const STR8 = 0xd9;
const STR16 = 0xda;
const STR32 = 0xdb;

/**
 * What the event writer found while writing a payload that is not a JSON value.
 * Validation checked the payload before, but an accessor or a proxy can answer
 * differently the second time it is read: what is written is checked again, as
 * it is written, so nothing but JSON is ever stored.
 */
export class NotJsonError extends Error {
  override readonly name = 'NotJsonError';
}

/** Thrown inside the writers when the arena is full; encodeDraft() starts again in a new one. */
export const FULL = new Error('arena full');

export function need(out: Buffer, at: number, bytes: number): void {
  if (at + bytes > out.length) throw FULL;
}

/** Copies `value` at `at` one character per byte; false (with some bytes written) at the first that is not ASCII. */
function copyAscii(out: Buffer, at: number, value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x80) return false;
    out[at + i] = c;
  }
  return true;
}

export function writeNullable(out: Buffer, at: number, value: string | null): number {
  if (value === null) {
    need(out, at, 1);
    out[at] = NIL;
    return at + 1;
  }
  return writeString(out, at, value);
}

/**
 * A msgpack string. ASCII text under 256 characters (uuids, timestamps, most
 * names) goes behind a fixstr or str8 header, as msgpackr writes it: from 16
 * characters through Buffer's native writer, which costs a call, below that
 * copied by hand. Longer or non-ASCII text is written as UTF-8 behind a
 * header sized for its worst case.
 */
export function writeString(out: Buffer, at: number, value: string): number {
  if (typeof value !== 'string') throw new NotJsonError(`a string field holds a ${typeof value}`);
  const n = value.length;
  need(out, at, 5 + n * 3);
  if (n < 0x100) {
    const head = n < 32 ? 1 : 2;
    if (n >= 16 ? utf8Write(out, value, at + head) === n : copyAscii(out, at + head, value)) {
      if (head === 1) {
        out[at] = 0xa0 | n;
      } else {
        out[at] = STR8;
        out[at + 1] = n;
      }
      return at + head + n;
    }
  }
  const worst = n * 3;
  if (worst < 0x100) {
    const written = out.write(value, at + 2, 'utf8');
    out[at] = STR8;
    out[at + 1] = written;
    return at + 2 + written;
  }
  if (worst < 0x10000) {
    const written = out.write(value, at + 3, 'utf8');
    out[at] = STR16;
    out.writeUInt16BE(written, at + 1);
    return at + 3 + written;
  }
  const written = out.write(value, at + 5, 'utf8');
  out[at] = STR32;
  out.writeUInt32BE(written, at + 1);
  return at + 5 + written;
}

/** An array or map header: fix form under 16, else 16 or 32 bits. */
export function writeLength(out: Buffer, at: number, n: number, fix: number, x16: number, x32: number): number {
  need(out, at, 5);
  if (n < 16) {
    out[at] = fix | n;
    return at + 1;
  }
  if (n < 0x10000) {
    out[at] = x16;
    out.writeUInt16BE(n, at + 1);
    return at + 3;
  }
  out[at] = x32;
  out.writeUInt32BE(n, at + 1);
  return at + 5;
}

export function writeNumber(out: Buffer, at: number, n: number): number {
  need(out, at, 9);
  // -0 as a float64 (the integer forms would lose its sign): serde_json keeps -0.0.
  if (n === 0 && 1 / n < 0) {
    out[at] = 0xcb;
    out.writeDoubleBE(n, at + 1);
    return at + 9;
  }
  if (n >>> 0 === n) {
    if (n < 0x40) {
      out[at] = n;
      return at + 1;
    }
    if (n < 0x100) {
      out[at] = 0xcc;
      out[at + 1] = n;
      return at + 2;
    }
    if (n < 0x10000) {
      out[at] = 0xcd;
      out.writeUInt16BE(n, at + 1);
      return at + 3;
    }
    out[at] = 0xce;
    out.writeUInt32BE(n, at + 1);
    return at + 5;
  }
  if (n >> 0 === n) {
    if (n >= -0x20) {
      out[at] = 0x100 + n;
      return at + 1;
    }
    if (n >= -0x80) {
      out[at] = 0xd0;
      out.writeInt8(n, at + 1);
      return at + 2;
    }
    if (n >= -0x8000) {
      out[at] = 0xd1;
      out.writeInt16BE(n, at + 1);
      return at + 3;
    }
    out[at] = 0xd2;
    out.writeInt32BE(n, at + 1);
    return at + 5;
  }
  out[at] = 0xcb;
  out.writeDoubleBE(n, at + 1);
  return at + 9;
}

/** serde_json's integers, i64 and u64, as msgpack int64 and uint64; msgpackr reads both back as bigint. */
export function writeBigInt(out: Buffer, at: number, n: bigint, path: string): number {
  need(out, at, 9);
  if (n >= -(1n << 63n) && n < 1n << 63n) {
    out[at] = 0xd3;
    out.writeBigInt64BE(n, at + 1);
  } else if (n >= 0n && n < 1n << 64n) {
    out[at] = 0xcf;
    out.writeBigUInt64BE(n, at + 1);
  } else {
    throw new NotJsonError(`${path} holds the integer ${n}, beyond 64 bits`);
  }
  return at + 9;
}
