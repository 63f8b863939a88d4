/**
 * Event ids: the uuid check the fast validation path uses, and IdSource,
 * which generates uuid v7 ids and the current timestamp for the event writer.
 */
import { randomFillSync } from 'node:crypto';
import type { GeneratedFields } from '../codec.js';
import { latin1Slice } from '../native-buffer.js';

export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The regular expression rather than a loop over `charCodeAt`: as fast here,
 * and unaffected when V8 drops its fast path for string methods (it does
 * once any code subclasses String, as ioredis 6 does on import), which makes
 * such loops several times slower.
 */
export function isUuid(v: unknown): v is string {
  return typeof v === 'string' && v.length === 36 && UUID_RE.test(v);
}

/**
 * The byte every id IdSource generates carries after its version nibble
 * (characters 16-17, "e7"): with the time in its first 48 bits, it lets the
 * store find an event whose id was generated with its timestamp through the
 * time index, with no id index key of its own (generatedIdTime). 66 bits stay
 * random, per millisecond.
 */
export const GENERATED_MARK = 0xe7;

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;
function putHex(target: Buffer, at: number, byte: number): void {
  target[at] = HEX_DIGITS[byte >> 4]!;
  target[at + 1] = HEX_DIGITS[byte & 0x0f]!;
}

/**
 * Generates ids and timestamps fast: uuid v7 formatted from random bytes drawn
 * from a pooled buffer (uuid's v7() costs ~10x more per id here), and the ISO string
 * of the current millisecond computed once per millisecond. The event writer
 * has both written straight into its output (GeneratedFields).
 */
export class IdSource implements GeneratedFields {
  #pool = Buffer.allocUnsafe(10 * 1024);
  readonly #text = Buffer.allocUnsafe(36);
  #offset = this.#pool.length;
  #lastMs = -1;
  #lastIso = '';
  readonly #isoBytes = new Uint8Array(32);

  /**
   * A uuid v7: 48-bit ms timestamp, version 7, GENERATED_MARK, variant 10, 66 random bits.
   * Written as ASCII into a scratch buffer and read back as one flat string:
   * concatenating 20 pieces would allocate 20 intermediate strings per id.
   */
  uuid(): string {
    this.writeUuid(this.#text, 0);
    return latin1Slice(this.#text, 0, 36);
  }

  /** Writes a uuid v7 as 36 ASCII bytes (lowercase hex, dashes at 8, 13, 18, 23) at `at`. */
  writeUuid(t: Buffer, at: number): void {
    if (this.#offset + 10 > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const r = this.#pool;
    const o = this.#offset;
    this.#offset += 10;
    const ms = Date.now();
    const hi = Math.floor(ms / 0x10000); // top 32 bits of the 48-bit time
    putHex(t, at, (hi >>> 24) & 0xff);
    putHex(t, at + 2, (hi >>> 16) & 0xff);
    putHex(t, at + 4, (hi >>> 8) & 0xff);
    putHex(t, at + 6, hi & 0xff);
    t[at + 8] = DASH;
    putHex(t, at + 9, (ms >>> 8) & 0xff);
    putHex(t, at + 11, ms & 0xff);
    t[at + 13] = DASH;
    putHex(t, at + 14, 0x70 | (r[o]! & 0x0f));
    putHex(t, at + 16, GENERATED_MARK);
    t[at + 18] = DASH;
    putHex(t, at + 19, 0x80 | (r[o + 2]! & 0x3f));
    putHex(t, at + 21, r[o + 3]!);
    t[at + 23] = DASH;
    for (let k = 0; k < 6; k++) putHex(t, at + 24 + k * 2, r[o + 4 + k]!);
  }

  /** The millisecond of the last `writeNow()`. */
  get nowMs(): number {
    return this.#lastMs;
  }

  /** The text of the last `writeNow()`. */
  get lastNow(): string {
    return this.#lastIso;
  }

  /**
   * Writes the current time (RFC 3339, UTC, as chrono writes it) as ASCII at
   * `at`, copied from the bytes made once per millisecond; returns its length.
   */
  writeNow(out: Buffer, at: number): number {
    const ms = Date.now();
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      const iso = new Date(ms).toISOString();
      // chrono writes a whole second without a fraction.
      this.#lastIso = ms % 1000 === 0 ? `${iso.slice(0, 19)}Z` : iso;
      for (let i = 0; i < this.#lastIso.length; i++) this.#isoBytes[i] = this.#lastIso.charCodeAt(i);
    }
    const bytes = this.#isoBytes;
    const n = this.#lastIso.length;
    for (let i = 0; i < n; i++) out[at + i] = bytes[i]!;
    return n;
  }
}

/** A lowercase hex digit's value, or -1. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * The millisecond in a uuid v7 that carries GENERATED_MARK (as IdSource writes
 * them: lowercase), or null for any other id. Char codes, no regex and no
 * substring: the store asks this of every event it appends.
 */
export function generatedIdTime(id: string): number | null {
  if (id.length !== 36 || id.charCodeAt(8) !== DASH || id.charCodeAt(13) !== DASH || id.charCodeAt(14) !== 0x37) return null;
  if (id.charCodeAt(16) !== 0x65 || id.charCodeAt(17) !== 0x37) return null;
  let ms = 0;
  for (let i = 0; i < 13; i++) {
    if (i === 8) continue;
    const digit = hexValue(id.charCodeAt(i));
    if (digit < 0) return null;
    ms = ms * 16 + digit;
  }
  return ms;
}
