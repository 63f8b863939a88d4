/**
 * JSON text exactly as serde_json (default features) writes the seed's Rust
 * `Event`: struct fields in declaration order, the payload (a
 * `serde_json::Value`, whose map is a BTreeMap) with its keys sorted by their
 * UTF-8 bytes, floats as ryu writes them, strings escaped as serde_json
 * escapes them. The test in test/serde-interop.test.ts holds this to the real
 * serde_json, byte for byte.
 */
import type { AuditEntry, Event } from './event.js';

/** The seed's `Event` (or an `AuditEntry`) as serde_json writes it, on one line. */
export function toSerdeJson(event: Event | AuditEntry): string {
  return recordToSerdeJson(event);
}

/**
 * Any record made of serde structs: objects are written in their own key order
 * (a struct's field order), except the value of a `payload` key, which is a
 * `serde_json::Value` and written with sorted keys.
 */
export function recordToSerdeJson(record: unknown): string {
  return writeValue(record, false);
}

function writeValue(value: unknown, sorted: boolean): string {
  switch (typeof value) {
    case 'string':
      return serdeString(value);
    case 'number':
      return serdeNumber(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + writeValue(value[i], sorted);
        return `${out}]`;
      }
      const record = value as Record<string, unknown>;
      const keys: string[] = [];
      for (const key in record) if (Object.hasOwn(record, key) && record[key] !== undefined) keys.push(key);
      if (sorted) keys.sort(compareUtf8);
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        out += `${i === 0 ? '' : ','}${serdeString(key)}:${writeValue(record[key], sorted || key === 'payload')}`;
      }
      return `${out}}`;
    }
    default:
      // serde_json has no such value; JSON.stringify would drop it, which would change the event silently.
      throw new TypeError(`cannot write ${typeof value} as JSON`);
  }
}

/**
 * Code point order, which is UTF-8 byte order (Rust's `str` Ord). JavaScript's
 * own comparison is by UTF-16 unit, which puts astral characters (surrogate
 * pairs, 0xD800-0xDFFF) before U+E000-U+FFFF; moving the surrogates above
 * them gives code point order.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

// serde_json escapes `"`, `\` and the C0 controls only: \b \t \n \f \r by name, the rest as \u00xx (lowercase hex).
// eslint-disable-next-line no-control-regex -- the control characters are what is matched
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;
// eslint-disable-next-line no-control-regex -- the control characters are what is matched
const ESCAPES = /["\\\u0000-\u001f]/g;
const NAMED: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };
const escapeOne = (c: string): string => NAMED[c] ?? `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

export function serdeString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? `"${s.replace(ESCAPES, escapeOne)}"` : `"${s}"`;
}

/**
 * A number as serde_json writes the value it reads back as: a safe integer as
 * an integer (serde's i64/u64), anything else as an f64 in ryu's notation.
 * JavaScript and ryu both pick the shortest digits that read back to the same
 * double; only where the decimal point and exponent go differs (ryu's
 * `format64`): plain up to 16 digits left of the point, `0.000ddd` down to
 * 1e-5, else `d.ddde±x` without a `+`, and a whole f64 keeps its `.0`.
 * Non-finite numbers have no JSON form (validation keeps them out).
 */
export function serdeNumber(n: number): string {
  if (Number.isSafeInteger(n)) return Object.is(n, -0) ? '-0.0' : String(n);
  if (!Number.isFinite(n)) throw new TypeError(`cannot write the number ${n} as JSON`);
  const sign = n < 0 ? '-' : '';
  const exp = Math.abs(n).toExponential(); // "d.ddde±x": the shortest digits
  const e = exp.indexOf('e');
  const digits = exp[1] === '.' ? exp[0]! + exp.slice(2, e) : exp.slice(0, e);
  const length = digits.length;
  const kk = Number(exp.slice(e + 1)) + 1; // 10^(kk-1) <= |n| < 10^kk
  const k = kk - length;
  if (k >= 0 && kk <= 16) return `${sign}${digits}${'0'.repeat(k)}.0`;
  if (kk > 0 && kk <= 16) return `${sign}${digits.slice(0, kk)}.${digits.slice(kk)}`;
  if (kk > -5 && kk <= 0) return `${sign}0.${'0'.repeat(-kk)}${digits}`;
  if (length === 1) return `${sign}${digits}e${kk - 1}`;
  return `${sign}${digits[0]}.${digits.slice(1)}e${kk - 1}`;
}
