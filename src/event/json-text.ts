/**
 * JSON text to JavaScript values without losing integers, for `emitJson` and
 * `eventrail emit`. JSON.parse (Node 20 has no access to a number's source
 * text) turns 9007199254740993 into 9007199254740992: here an integer outside
 * the safe range becomes a bigint, which the codec stores as a msgpack
 * int64/uint64. Otherwise it reads what serde_json reads, as serde_json
 * does: an object that holds the key `__proto__` is made without a prototype
 * (so the key is data, never a prototype), a repeated payload key keeps its
 * last value (serde_json's map), a repeated field of the event or its
 * metadata is an error (serde's derived structs), lone surrogates in `\u`
 * escapes and raw control characters in strings are errors.
 *
 * Why not a library: this needs prototype-free objects, serde's rules on
 * repeated keys and surrogates, and a depth bound; a parser of this size is
 * simpler than adapting one.
 */

import { InexactNumberError, InvalidEventError } from '../errors.js';

/** serde_json reads at most 127 nested arrays and objects (its budget of 128 fails on reaching zero); so does this parser. */
export const JSON_TEXT_MAX_DEPTH = 127;

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

export type JsonTextResult = { ok: true; value: unknown } | { ok: false; message: string; precision: boolean };

/**
 * One event's JSON text as emit() input, or the error to reject it with: an
 * integer beyond 64 bits is an InexactNumberError, other malformed text an
 * InvalidEventError.
 */
export function readEventJson(text: unknown): unknown {
  if (typeof text !== 'string')
    return new InvalidEventError([{ path: '', message: `emitJson() takes JSON text (a string), got a ${typeof text}` }]);
  const parsed = parseJsonText(text);
  if (parsed.ok) return parsed.value;
  if (parsed.precision) return new InexactNumberError(`the event's JSON text ${parsed.message}`);
  return new InvalidEventError([{ path: '', message: `the event is not JSON text: ${parsed.message}` }]);
}

class JsonTextError extends Error {
  constructor(
    message: string,
    readonly precision = false,
  ) {
    super(message);
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** Parses one JSON text; never throws. */
export function parseJsonText(text: string): JsonTextResult {
  const parser = new Parser(text);
  try {
    parser.space();
    const value = parser.value(0, true);
    parser.space();
    if (parser.at < text.length) parser.fail('trailing characters');
    return { ok: true, value };
  } catch (err) {
    if (err instanceof JsonTextError) return { ok: false, message: err.message, precision: err.precision };
    throw err;
  }
}

class Parser {
  at = 0;
  constructor(readonly text: string) {}

  fail(what: string, precision = false): never {
    throw new JsonTextError(`${what} at character ${this.at + 1}`, precision);
  }

  space(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.at++;
      else return;
    }
  }

  /** `strict`: an object here is a serde struct (the event, its metadata), whose fields may not repeat. */
  value(depth: number, strict: boolean): unknown {
    const t = this.text;
    const c = t[this.at];
    switch (c) {
      case '{':
        return this.object(depth + 1, strict);
      case '[':
        return this.array(depth + 1);
      case '"':
        return this.string();
      case 't':
        return this.word('true', true);
      case 'f':
        return this.word('false', false);
      case 'n':
        return this.word('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
    }
  }

  word<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.at)) this.fail('unexpected characters');
    this.at += word.length;
    return value;
  }

  number(): number | bigint {
    NUMBER.lastIndex = this.at;
    const m = NUMBER.exec(this.text);
    if (m === null) return this.fail('a number is malformed');
    const source = m[0];
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(source);
      if (Number.isSafeInteger(n)) {
        this.at += source.length;
        return n; // "-0" too: serde_json reads it as the f64 -0.0
      }
      const big = BigInt(source);
      if (big > U64_MAX || big < I64_MIN) {
        this.fail(`the integer ${source} does not fit in 64 bits, and as a double it would become ${n}`, true);
      }
      this.at += source.length;
      return big;
    }
    const n = Number(source);
    if (!Number.isFinite(n)) this.fail(`the number ${source} is out of range`);
    this.at += source.length;
    return n;
  }

  string(): string {
    const t = this.text;
    let at = this.at + 1;
    let out = '';
    let from = at;
    for (;;) {
      const c = t.charCodeAt(at);
      if (Number.isNaN(c)) {
        this.at = at;
        this.fail('unterminated string');
      }
      if (c === 0x22) break;
      if (c < 0x20) {
        this.at = at;
        this.fail('a control character (U+0000 to U+001F) in a string');
      }
      if (c !== 0x5c) {
        at++;
        continue;
      }
      out += t.slice(from, at);
      const e = t[at + 1];
      at += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const unit = this.hex(at);
          at += 4;
          if (unit >= 0xdc00 && unit <= 0xdfff) {
            this.at = at;
            this.fail('a lone trailing surrogate in a \\u escape');
          }
          if (unit >= 0xd800 && unit <= 0xdbff) {
            const low = t.startsWith('\\u', at) ? this.hex(at + 2) : -1;
            if (low < 0xdc00 || low > 0xdfff) {
              this.at = at;
              this.fail('a lone leading surrogate in a \\u escape');
            }
            out += String.fromCharCode(unit, low);
            at += 6;
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          this.at = at - 1;
          this.fail('an invalid escape');
      }
      from = at;
    }
    out += t.slice(from, at);
    this.at = at + 1;
    return out;
  }

  hex(at: number): number {
    const digits = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) {
      this.at = at;
      this.fail('an invalid \\u escape');
    }
    return parseInt(digits, 16);
  }

  array(depth: number): unknown[] {
    if (depth > JSON_TEXT_MAX_DEPTH) this.fail(`nesting deeper than ${JSON_TEXT_MAX_DEPTH} levels`);
    this.at++;
    const out: unknown[] = [];
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return out;
    }
    for (;;) {
      this.space();
      out.push(this.value(depth, false));
      this.space();
      const c = this.text[this.at++];
      if (c === ']') return out;
      if (c !== ',') {
        this.at--;
        this.fail('expected `,` or `]`');
      }
    }
  }

  object(depth: number, strict: boolean): Record<string, unknown> {
    if (depth > JSON_TEXT_MAX_DEPTH) this.fail(`nesting deeper than ${JSON_TEXT_MAX_DEPTH} levels`);
    this.at++;
    let out: Record<string, unknown> = {};
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return out;
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.fail('expected a key string');
      const key = this.string();
      this.space();
      if (this.text[this.at] !== ':') this.fail('expected `:`');
      this.at++;
      this.space();
      // The event's own fields and its metadata are structs; everything under payload is a serde_json::Value.
      const value = this.value(depth, strict && key !== 'payload');
      if (strict && Object.hasOwn(out, key)) this.fail(`duplicate field \`${key}\``);
      if (key === '__proto__' && Object.getPrototypeOf(out) !== null)
        out = Object.assign(Object.create(null) as Record<string, unknown>, out);
      out[key] = value;
      this.space();
      const c = this.text[this.at++];
      if (c === '}') return out;
      if (c !== ',') {
        this.at--;
        this.fail('expected `,` or `}`');
      }
    }
  }
}
