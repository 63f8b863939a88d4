/**
 * Whatever a caller passes to emit: the input is either accepted, and then
 * replays from the store (and reaches a consumer) exactly as the bus should
 * have made it, or rejected with a coded EventrailError and nothing of it is
 * stored. The bus keeps working after every input, and no built-in prototype
 * is touched, on the main thread or in a worker.
 *
 * What the bus should make of an accepted input (the model below): uuids
 * lowercased; timestamps in UTC with "Z", every fraction digit kept in 0, 3, 6
 * or 9 digits; a missing payload is {}; a payload is a JSON value (plain or
 * null-prototype objects, finite numbers, bigints within i64/u64, well-formed
 * strings, no deeper than limits.maxDepth containers); a key named "__proto__"
 * is data (its object replays without a prototype); -0 stays -0 (serde_json
 * keeps -0.0); the encoded event fits limits.maxEventBytes.
 *
 * The counts are exact: every accepted event is stored once and delivered
 * once to the consumer (a duplicate event_id is neither stored nor delivered
 * again), and nothing is dead-lettered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, statSync, existsSync } from 'node:fs';
import fc from 'fast-check';
import { Codec } from '../src/codec.js';
import {
  BUILTIN_EVENT_TYPES,
  createBus,
  eventSchema,
  EventrailError,
  EventTooLargeError,
  type Event,
  type EventBus,
  toSerdeJson,
  type Receipt,
} from '../src/index.js';
import type { GuardedDelivery } from './fixtures/proto-guard.js';
import { pollutionSince, snapshotPrototypes } from './fixtures/pollution.js';
import { fixture, metricValue, recorder, tempDir, uuid } from './helpers.js';

const MAX_BYTES = 4096;
const MAX_DEPTH = 64;
/** A generated timestamp is 20 or 24 characters: sizes within this of the limit may go either way. */
const SIZE_MARGIN = 8;

// ---------------------------------------------------------------------------------------------
// The model: what a valid input must become.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_ANY_CASE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CHRONO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
const LONE_SURROGATE = /\p{Cs}/u;

const wellFormed = (s: string) => !LONE_SURROGATE.test(s);

/** Whether a payload is what the bus must accept (the rule, written out independently of src/). */
function isJson(value: unknown, depth = 0): boolean {
  if (value === null || typeof value === 'boolean') return true;
  if (typeof value === 'string') return wellFormed(value);
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value === 'bigint') return value >= -(2n ** 63n) && value < 2n ** 64n;
  if (typeof value !== 'object') return false;
  if (depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  for (const key of Object.keys(value)) {
    if (!wellFormed(key)) return false;
    if (!isJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** The payload as it replays: plain objects, without a prototype where one holds "__proto__". Only for values isJson accepts. */
function plain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(plain);
  const out: Record<string, unknown> = Object.hasOwn(value, '__proto__') ? (Object.create(null) as Record<string, unknown>) : {};
  for (const key of Object.keys(value)) out[key] = plain((value as Record<string, unknown>)[key]);
  return out;
}

/** Marks a field left out of the input (as opposed to present and undefined). */
const ABSENT = Symbol('absent');

/** One field of an input: the value passed, whether it is valid, and what it must become. */
interface Part<T = unknown> {
  readonly value: unknown;
  readonly ok: boolean;
  readonly expect: T;
}
const good = <T>(value: unknown, expect: T): Part<T> => ({ value, ok: true, expect });
const bad = (value: unknown): Part<never> => ({ value, ok: false, expect: undefined as never });

interface ExpectedEvent {
  /** undefined: generated (a uuid v7). */
  event_id: string | undefined;
  /** undefined: generated (now). */
  timestamp: string | undefined;
  event_type: unknown;
  payload: unknown;
  metadata: {
    /** undefined: generated. */
    correlation_id: string | undefined;
    causation_id: string | null;
    user_id: string | null;
    tenant_id: string | null;
    source: string;
  };
}

interface Case {
  readonly input: unknown;
  /** null: the input must be rejected with InvalidEventError. */
  readonly expected: ExpectedEvent | null;
}

const codec = new Codec();

/** The encoded size of the event the bus would store (generated fields at their usual length). */
/** The size of the event as the bus encodes it (its own event writer). */
function encodedSize(e: ExpectedEvent): number {
  return codec.encodeEvent({
    event_id: e.event_id ?? uuid(),
    timestamp: e.timestamp ?? new Date().toISOString(),
    event_type: e.event_type,
    payload: e.payload,
    metadata: {
      correlation_id: e.metadata.correlation_id ?? uuid(),
      causation_id: e.metadata.causation_id,
      user_id: e.metadata.user_id,
      tenant_id: e.metadata.tenant_id,
      source: e.metadata.source,
    },
  } as Event).length;
}

/** Builds an object from parts, leaving ABSENT ones out; a key named __proto__ becomes an own key, as JSON.parse makes it. */
function assemble(fields: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of fields) {
    if (value === ABSENT) continue;
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries.

const hexChar = fc.constantFrom(...'0123456789abcdefABCDEF');
const hex = (n: number) => fc.string({ unit: hexChar, minLength: n, maxLength: n });
const anyCaseUuid = fc.tuple(hex(8), hex(4), hex(4), hex(4), hex(12)).map((p) => p.join('-'));

/** Mostly valid values, now and then an invalid one: most inputs then have at most one bad field. */
const mix = <T>(valid: fc.Arbitrary<Part<T>>, invalid: fc.Arbitrary<Part<never>>, validWeight = 12): fc.Arbitrary<Part<T>> =>
  fc.oneof({ weight: validWeight, arbitrary: valid }, { weight: 1, arbitrary: invalid });

/** Characters that break naive handling: control characters, non-BMP, quotes, lookalikes (no lone surrogates). */
const wellFormedChar = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '\n', '"', '\\', '\u2028', '\ufeff', '０', '\u{1f600}') },
);
const wellFormedString = (maxLength = 12, minLength = 0) => fc.string({ unit: wellFormedChar, minLength, maxLength });
/** A string with a lone surrogate somewhere: UTF-8 cannot carry it unchanged. */
const loneSurrogateString = fc
  .tuple(wellFormedString(5), fc.integer({ min: 0xd800, max: 0xdfff }), wellFormedString(5))
  .map(([a, unit, b]) => a + String.fromCharCode(unit) + b)
  .filter((x) => !wellFormed(x));
const hostileString = (maxLength = 12) =>
  fc.oneof({ weight: 6, arbitrary: wellFormedString(maxLength) }, { weight: 1, arbitrary: loneSurrogateString });

/** Anything at all, exotic values included: functions, symbols, BigInts, undefined, NaN, ±Infinity, Dates, Maps, Sets, boxed values, typed arrays, holes. */
const exotic = fc.anything({
  maxDepth: 4,
  maxKeys: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withTypedArray: true,
  withSparseArray: true,
  key: fc.oneof(hostileString(6), fc.constantFrom('__proto__', 'constructor', 'prototype')),
  values: [
    fc.boolean(),
    fc.integer(),
    fc.double(),
    hostileString(),
    fc.constantFrom(null, undefined, NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53, -(2 ** 63)),
    fc.constant(() => 1),
    fc.constant(Symbol('s')),
    fc.bigInt(),
  ],
});

/** A value of the wrong kind for a string field (or a string of the wrong form, from `invalidStrings`). */
const notAString = exotic.filter((v) => typeof v !== 'string' && v !== undefined);

const invalidUuidString = fc.oneof(
  anyCaseUuid.map((u) => u.slice(1)),
  anyCaseUuid.map((u) => `${u}0`),
  anyCaseUuid.map((u) => u.replace('-', '')),
  anyCaseUuid.map((u) => `{${u}}`),
  anyCaseUuid.map((u) => ` ${u}`),
  anyCaseUuid.map((u) => `${u}\n`),
  anyCaseUuid.map((u) => `urn:uuid:${u}`),
  fc
    .tuple(anyCaseUuid, fc.nat(35), fc.constantFrom('g', 'G', 'z', ' ', '\u0660', 'ａ', '\u0000'))
    .map(([u, i, c]) => u.slice(0, i) + c + u.slice(i + 1)),
  hostileString(40).filter((s) => !UUID_ANY_CASE.test(s)),
);

/** An optional uuid field (event_id, correlation_id): lowercased when given. */
const optionalUuidPart: fc.Arbitrary<Part<string | undefined>> = mix(
  fc.oneof(
    { weight: 2, arbitrary: anyCaseUuid.map((u) => good(u, u.toLowerCase())) },
    { weight: 1, arbitrary: fc.constantFrom(good(ABSENT, undefined), good(undefined, undefined)) },
  ),
  fc.oneof(invalidUuidString, notAString, fc.constant(null)).map(bad),
);

/** A nullable uuid field (causation_id, user_id, tenant_id): null when left out. */
const nullableUuidPart: fc.Arbitrary<Part<string | null>> = mix(
  fc.oneof(
    { weight: 2, arbitrary: anyCaseUuid.map((u) => good(u, u.toLowerCase())) },
    { weight: 1, arbitrary: fc.constantFrom(good(ABSENT, null), good(undefined, null), good(null, null)) },
  ),
  fc
    .oneof(
      invalidUuidString,
      notAString.filter((v) => v !== null),
    )
    .map(bad),
);

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * An RFC 3339 string from its parts, some impossible (February 30, 24:00, a
 * shift out of years 0000-9999), with what it must become.
 */
const timestampText: fc.Arbitrary<Part<string>> = fc
  .record({
    y: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1, 1969, 1970, 2000, 2024, 2100, 9999)),
    mo: fc.integer({ min: 1, max: 12 }),
    d: fc.integer({ min: 1, max: 31 }),
    h: fc.integer({ min: 0, max: 24 }),
    mi: fc.integer({ min: 0, max: 60 }),
    s: fc.integer({ min: 0, max: 60 }),
    fraction: fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: 9 }),
    sep: fc.constantFrom('T', 't'),
    zone: fc.oneof(
      fc.constantFrom('Z', 'z'),
      fc.record({ sign: fc.constantFrom('+', '-'), hh: fc.integer({ min: 0, max: 23 }), mm: fc.integer({ min: 0, max: 59 }) }),
    ),
  })
  .map(({ y, mo, d, h, mi, s, fraction, sep, zone }) => {
    const zoneText = typeof zone === 'string' ? zone : `${zone.sign}${pad(zone.hh)}:${pad(zone.mm)}`;
    const text = `${pad(y, 4)}-${pad(mo)}-${pad(d)}${sep}${pad(h)}:${pad(mi)}:${pad(s)}${fraction === '' ? '' : `.${fraction}`}${zoneText}`;
    const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
    const days = mo === 2 && leap ? 29 : DAYS[mo - 1]!;
    // A second of 60 is a leap second, which chrono takes at any minute.
    if (d > days || h > 23 || mi > 59 || s > 60) return bad(text);
    const at = new Date(0);
    at.setUTCFullYear(y, mo - 1, d);
    at.setUTCHours(h, mi, s === 60 ? 59 : s, 0);
    const offsetMinutes = typeof zone === 'string' ? 0 : (zone.sign === '+' ? 1 : -1) * (zone.hh * 60 + zone.mm);
    const utc = new Date(at.getTime() - offsetMinutes * 60_000);
    const year = utc.getUTCFullYear();
    // chrono's extended years: signed beyond 0000-9999.
    const yearText = year >= 0 && year <= 9999 ? pad(year, 4) : year > 0 ? `+${year}` : `-${pad(-year, 4)}`;
    const nanos = fraction.padEnd(9, '0');
    const digits =
      nanos === '000000000' ? '' : nanos.endsWith('000000') ? nanos.slice(0, 3) : nanos.endsWith('000') ? nanos.slice(0, 6) : nanos;
    const iso = `${yearText}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())}T${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${s === 60 ? '60' : pad(utc.getUTCSeconds())}`;
    return good(text, `${iso}${digits === '' ? '' : `.${digits}`}Z`);
  });

const timestampPart: fc.Arbitrary<Part<string | undefined>> = mix(
  fc.oneof(
    { weight: 2, arbitrary: timestampText },
    { weight: 1, arbitrary: fc.constantFrom(good(ABSENT, undefined), good(undefined, undefined)) },
  ),
  fc.oneof(
    fc
      .constantFrom(
        '2026-01-31T12:00:00',
        '2026-01-31 12:00:00Z',
        '26-01-31T12:00:00Z',
        '2026-1-31T12:00:00Z',
        '2026-01-31T12:00:00.1234567890Z',
        '2026-01-31T12:00:00+0100',
        '2026-01-31T12:00:00+01',
        '2026-01-31T12:00:00Z\n',
        ' 2026-01-31T12:00:00Z',
        '2026-01-31T12:00:00.Z',
        'yesterday',
        '',
        '1767225600000',
      )
      .map(bad),
    fc.oneof(notAString, fc.date({ noInvalidDate: false }), fc.integer(), fc.constant(null)).map(bad),
  ),
);

const customName = wellFormedString(20, 0);
const eventTypePart: fc.Arbitrary<Part<unknown>> = mix(
  fc.oneof(
    fc.constantFrom(...BUILTIN_EVENT_TYPES).map((t) => good<unknown>(t, t)),
    customName.map((name) => good<unknown>({ Custom: name }, { Custom: name })),
  ),
  fc
    .oneof(
      fc.constantFrom(...BUILTIN_EVENT_TYPES).map((t) => t.toLowerCase()),
      fc.constantFrom(...BUILTIN_EVENT_TYPES).map((t) => ` ${t}`),
      fc.constantFrom('Custom', 'UserSignedUp', '', 'constructor', '__proto__', 'toString'),
      hostileString().filter((s) => !(BUILTIN_EVENT_TYPES as readonly string[]).includes(s)),
      loneSurrogateString.map((name) => ({ Custom: name })),
      notAString.map((n) => ({ Custom: n })),
      fc.tuple(customName, exotic).map(([name, extra]) => ({ Custom: name, extra })),
      fc.constant(JSON.parse('{"__proto__":{"Custom":"Inherited"}}') as unknown),
      fc.constant(JSON.parse('{"Custom":"x","__proto__":{}}') as unknown),
      fc.constant(Object.create({ Custom: 'Inherited' }) as unknown),
      fc.constant([{ Custom: 'InArray' }]),
      fc.constant(ABSENT),
      notAString,
    )
    .map(bad),
);

const sourcePart: fc.Arbitrary<Part<string>> = mix(
  wellFormedString(30, 0).map((s) => good(s, s)),
  fc.oneof(fc.constant(ABSENT), loneSurrogateString, notAString).map(bad),
);

/** An unknown key (at the top level or in metadata): always rejected. */
const extraKey = fc.oneof(
  { weight: 8, arbitrary: fc.constant(null) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'priority', 'eventType', 'userId'), hostileString(8)),
      exotic,
    ),
  },
);

interface MetadataExpect {
  correlation_id: string | undefined;
  causation_id: string | null;
  user_id: string | null;
  tenant_id: string | null;
  source: string;
}

const metadataPart: fc.Arbitrary<Part<MetadataExpect>> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc
      .record({
        correlation_id: optionalUuidPart,
        causation_id: nullableUuidPart,
        user_id: nullableUuidPart,
        tenant_id: nullableUuidPart,
        source: sourcePart,
        extra: extraKey,
      })
      .map(({ extra, ...fields }) => {
        // An unknown key that is one of the known names is just that field given twice: skip it.
        const extras = extra === null || Object.hasOwn(fields, extra[0]) ? [] : [extra];
        const value = assemble([...Object.entries(fields).map(([k, p]) => [k, p.value] as const), ...extras]);
        const ok = extras.length === 0 && Object.values(fields).every((p) => p.ok);
        if (!ok) return bad(value);
        return good(value, {
          correlation_id: fields.correlation_id.expect,
          causation_id: fields.causation_id.expect,
          user_id: fields.user_id.expect,
          tenant_id: fields.tenant_id.expect,
          source: fields.source.expect,
        });
      }),
  },
  { weight: 1, arbitrary: fc.oneof(notAString, hostileString(), fc.constant(ABSENT), fc.constant([{ source: 'in-array' }])).map(bad) },
);

/** JSON texts whose objects use the keys that matter for prototype pollution, at every level. */
const protoKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'polluted',
  'isAdmin',
  'a',
);
const { node: protoJsonText } = fc.letrec<{ node: string; leaf: string; obj: string; arr: string }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('obj'), tie('arr')),
  leaf: fc.oneof(fc.constantFrom('null', 'true', '1', '-0', '"x"', '{}', '[]', '{"polluted":true}', '"__proto__"')),
  obj: fc
    .array(fc.tuple(protoKey, tie('node')), { maxLength: 4 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  arr: fc.array(tie('node'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
}));
const protoJson = protoJsonText.map((text) => JSON.parse(text) as unknown);

/** Containers nested `depth` deep (objects and arrays mixed, with special keys), a scalar at the bottom. */
const nestedPayload = fc
  .tuple(
    fc.oneof(fc.integer({ min: MAX_DEPTH - 3, max: MAX_DEPTH + 3 }), fc.integer({ min: 1, max: 300 })),
    fc.array(fc.constantFrom('o', 'a', 'c', 'p'), { minLength: 1, maxLength: 8 }),
    // A well-formed leaf: here only the depth decides.
    fc.oneof(fc.constant(null), fc.integer(), fc.string({ unit: 'grapheme', maxLength: 4 })),
  )
  .map(([depth, pattern, leaf]) => {
    let value: unknown = leaf;
    for (let level = depth - 1; level >= 0; level--) {
      const kind = pattern[level % pattern.length]!;
      value =
        kind === 'a' ? [value] : kind === 'c' ? { constructor: value } : kind === 'p' ? { prototype: value, toString: 1 } : { next: value };
    }
    return { depth, value };
  });

/** Payloads whose validity the model decides (isJson); the first kinds are mostly valid, `exotic` mostly not. */
const payloadPart: fc.Arbitrary<Part<unknown>> = fc
  .oneof(
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4, stringUnit: wellFormedChar }) },
    { weight: 2, arbitrary: protoJson },
    { weight: 1, arbitrary: nestedPayload.map(({ value }) => value) },
    { weight: 1, arbitrary: fc.constantFrom(ABSENT, undefined) },
    { weight: 1, arbitrary: exotic },
  )
  .map((v) => (v === ABSENT || v === undefined ? good(v, {}) : isJson(v) ? good(v, plain(v)) : bad(v)));

/** A whole input made of independently valid or invalid fields. */
const eventCase: fc.Arbitrary<Case> = fc
  .record({
    event_id: optionalUuidPart,
    timestamp: timestampPart,
    event_type: eventTypePart,
    payload: payloadPart,
    metadata: metadataPart,
    extra: extraKey,
  })
  .map(({ extra, ...fields }) => {
    const extras = extra === null || Object.hasOwn(fields, extra[0]) ? [] : [extra];
    const input = assemble([...Object.entries(fields).map(([k, p]) => [k, p.value] as const), ...extras]);
    const ok = extras.length === 0 && Object.values(fields).every((p) => p.ok);
    return {
      input,
      expected: ok
        ? {
            event_id: fields.event_id.expect,
            timestamp: fields.timestamp.expect,
            event_type: fields.event_type.expect,
            payload: fields.payload.expect,
            metadata: fields.metadata.expect,
          }
        : null,
    };
  });

/** A valid envelope around a given payload. */
function withPayload(payload: Part<unknown>, eventType: string = 'SessionExtended'): Case {
  const input = assemble([
    ['event_type', eventType],
    ['payload', payload.value],
    ['metadata', { source: 'hostile-test' }],
  ]);
  const expected: ExpectedEvent | null = payload.ok
    ? {
        event_id: undefined,
        timestamp: undefined,
        event_type: eventType,
        payload: payload.expect,
        metadata: { correlation_id: undefined, causation_id: null, user_id: null, tenant_id: null, source: 'hostile-test' },
      }
    : null;
  return { input, expected };
}

// ---------------------------------------------------------------------------------------------

describe('hostile input', { timeout: 180_000 }, () => {
  const dir = tempDir();
  const out = dir.file('deliveries.jsonl');
  const mainSnapshot = snapshotPrototypes();
  let bus: EventBus;
  /** Every event id accepted so far → the event it must replay as (for duplicates). */
  const accepted = new Map<string, Event>();
  /** The ids of the other events the tests store (stillWorks()'s probes, emitMany's well-formed companions): stored and delivered too. */
  const probes = new Set<string>();
  let lastPosition = '0'.repeat(24);
  let readOffset = 0;
  const delivered = new Map<string, GuardedDelivery[]>();

  before(async () => {
    bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [{ module: fixture('proto-guard'), options: { out } }],
      pool: { maxThreads: 1 },
      dispatch: { lingerMs: 0 },
      limits: { maxEventBytes: MAX_BYTES },
    });
  });
  after(async () => {
    await bus?.close();
    dir.remove();
  });

  /** Reads what ProtoGuard appended since the last call. */
  function readDeliveries(): void {
    if (!existsSync(out)) return;
    const size = statSync(out).size;
    if (size === readOffset) return;
    const fd = openSync(out, 'r');
    try {
      const chunk = Buffer.alloc(size - readOffset);
      readSync(fd, chunk, 0, chunk.length, readOffset);
      const text = chunk.toString('utf8');
      const end = text.lastIndexOf('\n') + 1;
      readOffset += Buffer.byteLength(text.slice(0, end));
      for (const line of text.slice(0, end).split('\n').filter(Boolean)) {
        const d = JSON.parse(line) as GuardedDelivery;
        delivered.set(d.event_id, [...(delivered.get(d.event_id) ?? []), d]);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The event stored at a receipt's position, read back through bus.replay(). */
  async function storedAt(position: string): Promise<Event> {
    const before = (BigInt(`0x${position}`) - 1n).toString(16).padStart(24, '0');
    for await (const event of bus.replay({ after: before, limit: 1 })) return event;
    assert.fail(`nothing replays at position ${position}`);
  }

  /** Nothing was stored after the last accepted event. */
  async function nothingStoredSince(): Promise<void> {
    const extra: string[] = [];
    for await (const event of bus.replay({ after: lastPosition })) extra.push(event.event_id);
    assert.deepEqual(extra, [], 'a rejected input left nothing in the store');
  }

  function assertUntouched(): void {
    assert.deepEqual(pollutionSince(mainSnapshot), [], 'no built-in prototype changed on the main thread');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  }

  function assertMatches(stored: Event, expected: ExpectedEvent, receipt: Receipt): void {
    assert.equal(stored.event_id, receipt.event_id);
    if (expected.event_id !== undefined) assert.equal(stored.event_id, expected.event_id);
    else assert.match(stored.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    if (expected.timestamp !== undefined) assert.equal(stored.timestamp, expected.timestamp);
    else {
      assert.match(stored.timestamp, CHRONO_UTC);
      assert.ok(Math.abs(Date.parse(stored.timestamp) - Date.now()) < 60_000, `a generated timestamp is now: ${stored.timestamp}`);
    }
    assert.deepStrictEqual(stored.event_type, expected.event_type);
    assert.deepStrictEqual(stored.payload, expected.payload);
    const md = expected.metadata;
    assert.deepStrictEqual(
      { ...stored.metadata, correlation_id: undefined },
      { correlation_id: undefined, causation_id: md.causation_id, user_id: md.user_id, tenant_id: md.tenant_id, source: md.source },
    );
    if (md.correlation_id !== undefined) assert.equal(stored.metadata.correlation_id, md.correlation_id);
    else assert.match(stored.metadata.correlation_id, UUID);
    assert.deepEqual(Object.keys(stored), ['event_id', 'timestamp', 'event_type', 'payload', 'metadata'], 'serde field order');
    assert.ok(eventSchema.safeParse(stored).success, 'the stored event passes the exported event schema');
    assert.ok(codec.encodeEvent(stored).length <= MAX_BYTES, 'an accepted event fits limits.maxEventBytes');
  }

  /** Calls an emit: whatever the input, it returns a promise and never throws synchronously. */
  function settles<T>(call: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (err) {
      assert.fail(`the call threw synchronously instead of rejecting: ${String(err)}`);
    }
    assert.ok(promise instanceof Promise, 'the call returned a promise');
    return promise;
  }

  function assertRejection(err: unknown, what: string): asserts err is EventrailError {
    assert.ok(err instanceof EventrailError, `${what}: an EventrailError, got ${String(err)}`);
    assert.equal(typeof err.code, 'string');
    assert.ok(err.code.startsWith('ERR_EVENTRAIL_'), `${what}: a coded error, got ${err.code}`);
  }

  /** After every input: a valid event is still accepted, stored and delivered. */
  async function stillWorks(): Promise<void> {
    const receipt = await bus.emit({ event_type: 'SessionCreated', payload: { probe: true }, metadata: { source: 'probe' } });
    const stored = await storedAt(receipt.position);
    assert.equal(stored.event_id, receipt.event_id);
    lastPosition = receipt.position;
    probes.add(receipt.event_id);
    await bus.flush();
    readDeliveries();
    assert.equal(delivered.get(receipt.event_id)?.length, 1, 'the probe was delivered once');
  }

  /** After a flush: each of these (accepted) events reached the consumer exactly once, as stored. */
  async function deliveredOnce(ids: readonly string[]): Promise<void> {
    await bus.flush();
    readDeliveries();
    for (const id of ids) {
      const copies = delivered.get(id) ?? [];
      assert.equal(copies.length, 1, `event ${id} reached the consumer exactly once (${copies.length} times)`);
      assert.equal(copies[0]!.json, toSerdeJson(accepted.get(id)!), 'delivered as stored');
      assert.deepEqual(copies[0]!.pollution, [], 'no built-in prototype changed in the worker');
    }
  }

  /**
   * Emits one input and checks the outcome against the model. `expected`:
   * an ExpectedEvent (must be accepted, or rejected as too large near the
   * limit), null (must be rejected as invalid), or 'either' (only the general
   * rules apply: coded rejection, or an event that replays as it was delivered).
   */
  async function check(
    input: unknown,
    expected: ExpectedEvent | null | 'either',
    {
      emit = (i: unknown) => bus.emit(i as never),
      mayReject = false,
    }: { emit?: (input: unknown) => Promise<Receipt>; mayReject?: boolean } = {},
  ): Promise<void> {
    let receipt: Receipt;
    try {
      receipt = await settles(() => emit(input));
    } catch (err) {
      assertRejection(err, 'a rejected input');
      if (expected === null) assert.equal(err.code, 'ERR_EVENTRAIL_INVALID_EVENT', err.message);
      else if (expected !== 'either' && !mayReject) {
        assert.equal(err.code, 'ERR_EVENTRAIL_EVENT_TOO_LARGE', `a valid input may only be rejected as too large: ${err.message}`);
        assert.ok(encodedSize(expected) > MAX_BYTES - SIZE_MARGIN, `rejected as too large at ${encodedSize(expected)} bytes`);
      }
      await nothingStoredSince();
      assertUntouched();
      await stillWorks();
      return;
    }
    assert.notEqual(expected, null, `an invalid input was accepted: ${receipt.event_id}`);
    const stored = await storedAt(receipt.position);
    const first = accepted.get(stored.event_id);
    if (receipt.duplicate) {
      assert.ok(first !== undefined, 'a duplicate receipt names an event stored before');
      assert.deepStrictEqual(stored, first, 'a duplicate leaves the first event as it was');
    } else {
      assert.equal(first, undefined, `event_id ${stored.event_id} was stored twice`);
      if (expected !== 'either' && expected !== null) {
        assert.ok(encodedSize(expected) <= MAX_BYTES + SIZE_MARGIN, `accepted at ${encodedSize(expected)} bytes`);
        assertMatches(stored, expected, receipt);
      }
      accepted.set(stored.event_id, stored);
    }
    if (Buffer.compare(Buffer.from(receipt.position, 'hex'), Buffer.from(lastPosition, 'hex')) > 0) lastPosition = receipt.position;
    // A duplicate was not delivered again either: still exactly one copy.
    await deliveredOnce([stored.event_id]);
    assertUntouched();
    await stillWorks();
  }

  it('any value at all as the input is rejected with a coded error', async () => {
    await fc.assert(
      fc.asyncProperty(exotic, async (input) => {
        await check(input, null);
      }),
      { numRuns: 250 },
    );
  });

  it('inputs with valid and invalid values in every field: accepted exactly when valid, and replay as the model says', async () => {
    await fc.assert(
      fc.asyncProperty(eventCase, async ({ input, expected }) => {
        await check(input, expected);
      }),
      { numRuns: 500 },
    );
  });

  it('inputs that are valid except possibly the payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadPart, fc.constantFrom('SessionExtended', 'UserLoggedIn'), async (payload, type) => {
        const { input, expected } = withPayload(payload, type);
        await check(input, expected);
      }),
      { numRuns: 300 },
    );
  });

  it(`nesting: accepted up to limits.maxDepth (${MAX_DEPTH}) containers, rejected past it`, async () => {
    await fc.assert(
      fc.asyncProperty(nestedPayload, async ({ depth, value }) => {
        const ok = depth <= MAX_DEPTH;
        assert.equal(isJson(value), ok, 'the model agrees on the depth rule');
        const { input, expected } = withPayload(ok ? good(value, plain(value)) : bad(value));
        await check(input, expected);
      }),
      {
        numRuns: 120,
        examples: [[{ depth: MAX_DEPTH, value: nestedArrays(MAX_DEPTH) }], [{ depth: MAX_DEPTH + 1, value: nestedArrays(MAX_DEPTH + 1) }]],
      },
    );
  });

  it(`sizes: events up to limits.maxEventBytes (${MAX_BYTES}) are accepted whole, larger ones rejected as too large`, async () => {
    const char = fc.constantFrom('x', '\u00e9', '\u20ac', '\u{1f600}', '\u0000');
    await fc.assert(
      fc.asyncProperty(
        char,
        fc.integer({ min: -400, max: 400 }),
        fc.constantFrom('string', 'field', 'key', 'source', 'custom'),
        async (c, delta, where) => {
          const bytesPerChar = Buffer.byteLength(c);
          const length = Math.max(0, Math.round((MAX_BYTES - 200) / bytesPerChar) + Math.round(delta / bytesPerChar));
          const big = c.repeat(length);
          const payload = where === 'string' ? big : where === 'field' ? { s: big } : where === 'key' ? { [big]: 1 } : { small: 1 };
          const source = where === 'source' ? big : 'hostile-test';
          const type = where === 'custom' ? { Custom: big } : 'SessionExtended';
          const input = { event_type: type, payload, metadata: { source } };
          const expected: ExpectedEvent | null =
            // An empty source or Custom name is accepted, as serde accepts it.
            {
              event_id: undefined,
              timestamp: undefined,
              event_type: type,
              payload,
              metadata: { correlation_id: undefined, causation_id: null, user_id: null, tenant_id: null, source },
            };
          if (expected !== null) {
            const size = encodedSize(expected);
            // Outside the margin the outcome is fixed: check() then insists on it.
            let receipt: Receipt | null = null;
            try {
              receipt = await bus.emit(input as never);
            } catch (err) {
              assertRejection(err, 'a large event');
              assert.equal(err.code, 'ERR_EVENTRAIL_EVENT_TOO_LARGE', err.message);
              assert.ok(size > MAX_BYTES - SIZE_MARGIN, `rejected at ${size} bytes`);
              await nothingStoredSince();
              await stillWorks();
              return;
            }
            assert.ok(size <= MAX_BYTES + SIZE_MARGIN, `accepted at ${size} bytes`);
            const stored = await storedAt(receipt.position);
            assertMatches(stored, expected, receipt);
            accepted.set(stored.event_id, stored);
            lastPosition = receipt.position;
            await deliveredOnce([stored.event_id]);
            await stillWorks();
            return;
          }
          await check(input, null);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('keys named __proto__, constructor and prototype at every level, from JSON.parse', async () => {
    const levels = ['top', 'metadata', 'event_type', 'payload'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...levels),
        fc.constantFrom('__proto__', 'constructor', 'prototype'),
        protoJsonText,
        fc.nat(6),
        async (level, key, inner, depth) => {
          // The payload puts the special key `depth` objects down.
          let payloadText = `{${JSON.stringify(key)}:${inner}}`;
          for (let i = 0; i < depth; i++) payloadText = `{"level${i}":${payloadText}}`;
          const sneak = `${JSON.stringify(key)}:${inner}`;
          const text =
            level === 'top'
              ? `{"event_type":"UserLoggedIn","metadata":{"source":"hostile-test"},${sneak}}`
              : level === 'metadata'
                ? `{"event_type":"UserLoggedIn","metadata":{"source":"hostile-test",${sneak}}}`
                : level === 'event_type'
                  ? `{"event_type":{"Custom":"Sneaky",${sneak}},"metadata":{"source":"hostile-test"}}`
                  : `{"event_type":"UserLoggedIn","payload":${payloadText},"metadata":{"source":"hostile-test"}}`;
          const input = JSON.parse(text) as Record<string, unknown>;
          if (level !== 'payload') {
            await check(input, null);
            return;
          }
          const payload = input.payload;
          await check(
            input,
            isJson(payload)
              ? {
                  event_id: undefined,
                  timestamp: undefined,
                  event_type: 'UserLoggedIn',
                  payload: plain(payload),
                  metadata: { correlation_id: undefined, causation_id: null, user_id: null, tenant_id: null, source: 'hostile-test' },
                }
              : null,
          );
        },
      ),
      { numRuns: 250 },
    );
  });

  it('emitMany is all or nothing for hostile inputs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventCase, { minLength: 1, maxLength: 5 }), async (cases) => {
        const inputs = cases.map((c) => c.input);
        const allValid = cases.every((c) => c.expected !== null);
        let receipts: Receipt[];
        try {
          receipts = await settles(() => bus.emitMany(inputs as never));
        } catch (err) {
          assertRejection(err, 'a rejected emitMany');
          if (!allValid) assert.equal(err.code, 'ERR_EVENTRAIL_INVALID_EVENT', err.message);
          else {
            assert.equal(err.code, 'ERR_EVENTRAIL_EVENT_TOO_LARGE', err.message);
            assert.ok(cases.some((c) => encodedSize(c.expected!) > MAX_BYTES - SIZE_MARGIN));
          }
          await nothingStoredSince();
          assertUntouched();
          await stillWorks();
          return;
        }
        assert.ok(allValid, 'an emitMany with an invalid input was accepted');
        assert.equal(receipts.length, cases.length);
        for (let i = 0; i < cases.length; i++) {
          const receipt = receipts[i]!;
          const stored = await storedAt(receipt.position);
          const first = accepted.get(stored.event_id);
          if (receipt.duplicate) {
            assert.ok(first !== undefined, 'a duplicate receipt names an event stored before');
            assert.deepStrictEqual(stored, first);
          } else {
            assert.equal(first, undefined, `event_id ${stored.event_id} was stored twice`);
            assertMatches(stored, cases[i]!.expected!, receipt);
            accepted.set(stored.event_id, stored);
          }
          if (Buffer.compare(Buffer.from(receipt.position, 'hex'), Buffer.from(lastPosition, 'hex')) > 0) lastPosition = receipt.position;
        }
        await deliveredOnce(receipts.map((r) => r.event_id));
        assertUntouched();
        await stillWorks();
      }),
      { numRuns: 120 },
    );
  });

  it('through a producer, hostile inputs get the same treatment', async () => {
    const producer = bus.producer('hostile-producer');
    await fc.assert(
      fc.asyncProperty(eventCase, async ({ input }) => {
        await check(input, 'either', { emit: (i) => producer.emit(i as never) });
      }),
      { numRuns: 150 },
    );
  });

  it('inputs that throw while being read (getters, proxies, revoked proxies) are rejected, never thrown', async () => {
    const producer = bus.producer('hostile-producer');
    const entries = {
      emit: (i: unknown) => bus.emit(i as never),
      // The well-formed companion is stored and delivered too when the call is accepted: counted with the probes.
      emitMany: (i: unknown) =>
        bus.emitMany([{ event_type: 'SessionCreated', metadata: { source: 'fine' } }, i] as never).then((r) => {
          probes.add(r[0]!.event_id);
          return r[1]!;
        }),
      emitManyProxy: (i: unknown) => bus.emitMany(hostileWrap([i], 'proxy', 'get', new Error('list')) as never).then((r) => r[0]!),
      producer: (i: unknown) => producer.emit(i as never),
      producerMany: (i: unknown) => producer.emitMany([i] as never).then((r) => r[0]!),
    };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...(Object.keys(entries) as Array<keyof typeof entries>)),
        fc.constantFrom('input', 'metadata', 'payload') as fc.Arbitrary<'input' | 'metadata' | 'payload'>,
        fc.nat(5),
        fc.constantFrom('getter', 'proxy', 'revoked') as fc.Arbitrary<'getter' | 'proxy' | 'revoked'>,
        fc.constantFrom('get', 'ownKeys', 'getPrototypeOf', 'has', 'getOwnPropertyDescriptor') as fc.Arbitrary<ProxyTrap>,
        fc.constantFrom<unknown>(new Error('thrown while reading'), 'a string', undefined, null, Symbol('thrown'), {
          toString: () => {
            throw new Error('again');
          },
        }),
        async (entry, level, depth, how, trap, thrown) => {
          const source = entry.startsWith('producer') ? 'hostile-producer' : 'hostile-test';
          let payload: Record<string, unknown> = { a: 1 };
          if (level === 'payload') payload = hostileWrap(payload, how, trap, thrown);
          for (let i = 0; i < depth; i++) payload = { next: payload };
          let metadata: Record<string, unknown> = { source: 'hostile-test' };
          if (level === 'metadata') metadata = hostileWrap(metadata, how, trap, thrown, 'source');
          let input: Record<string, unknown> = { event_type: 'SessionExtended', payload, metadata };
          if (level === 'input') input = hostileWrap(input, how, trap, thrown, 'event_type');
          // A trap the bus never triggers leaves a readable, valid event: then it must be stored as it reads.
          const readable = { a: 1 } as Record<string, unknown>;
          let expectedPayload: unknown = readable;
          for (let i = 0; i < depth; i++) expectedPayload = { next: expectedPayload };
          await check(
            input,
            {
              event_id: undefined,
              timestamp: undefined,
              event_type: 'SessionExtended',
              payload: expectedPayload,
              metadata: { correlation_id: undefined, causation_id: null, user_id: null, tenant_id: null, source },
            },
            { emit: entries[entry], mayReject: true },
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a getter that returns a JSON value when validated and something else when encoded', async () => {
    const later = [10n, () => 1, JSON.parse('{"__proto__":{"polluted":true}}') as unknown, NaN, new Date(0)];
    for (const value of later) {
      let reads = 0;
      const payload = {};
      Object.defineProperty(payload, 'x', { enumerable: true, get: () => (reads++ === 0 ? 1 : value) });
      let receipt: Receipt;
      try {
        receipt = await settles(() => bus.emit({ event_type: 'SessionExtended', payload, metadata: { source: 'hostile-test' } } as never));
      } catch (err) {
        assertRejection(err, 'a changing payload');
        assert.equal(err.code, 'ERR_EVENTRAIL_INVALID_EVENT', err.message);
        await nothingStoredSince();
        assertUntouched();
        await stillWorks();
        continue;
      }
      lastPosition = receipt.position;
      const stored = await storedAt(receipt.position);
      assert.ok(isJson(stored.payload), `the stored payload is JSON: a ${typeof (stored.payload as { x: unknown }).x}`);
      accepted.set(stored.event_id, stored);
      await deliveredOnce([stored.event_id]);
      assertUntouched();
      await stillWorks();
    }
  });

  it('every accepted event replays from the store exactly once, as it was first stored', async () => {
    const seen = new Map<string, Event>();
    for await (const event of bus.replay()) {
      assert.ok(!seen.has(event.event_id), `event ${event.event_id} replays twice`);
      seen.set(event.event_id, event);
    }
    for (const [id, event] of accepted) assert.deepStrictEqual(seen.get(id), event, `event ${id}`);
    // Exactly the accepted events and the probes are stored: nothing a rejected input left, nothing twice.
    const expected = new Set([...accepted.keys(), ...probes]);
    const untracked = [...seen.values()].filter((e) => !expected.has(e.event_id)).map((e) => JSON.stringify(e));
    assert.equal(
      seen.size,
      expected.size,
      `stored ${seen.size} events for ${accepted.size} accepted and ${probes.size} probes: ${untracked.join('\n')}`,
    );
    assert.deepEqual(new Set(seen.keys()), expected);
    // Delivered: each of them exactly once, nothing else.
    await bus.flush();
    readDeliveries();
    assert.deepEqual(new Set(delivered.keys()), expected, 'exactly the stored events were delivered');
    for (const [id, copies] of delivered) assert.equal(copies.length, 1, `event ${id} delivered ${copies.length} times`);
    // Dead-lettered: none, ever (a dead letter stays until redriven).
    assert.deepEqual(await bus.deadLetters.list(), []);
    const metrics = await bus.metrics();
    assert.equal(metricValue(metrics, 'eventrail_deliveries_total{consumer="ProtoGuard"}'), expected.size);
    assert.equal(metricValue(metrics, 'eventrail_dead_letters_total{consumer="ProtoGuard"}') ?? 0, 0);
    assert.equal(metricValue(metrics, 'eventrail_delivery_failures_total{consumer="ProtoGuard"}') ?? 0, 0);
    assertUntouched();
  });
});

type ProxyTrap = 'get' | 'ownKeys' | 'getPrototypeOf' | 'has' | 'getOwnPropertyDescriptor';

/** The object with a getter that throws on `key`, behind a proxy whose `trap` throws, or as a revoked proxy. */
function hostileWrap<T extends object>(target: T, how: 'getter' | 'proxy' | 'revoked', trap: ProxyTrap, thrown: unknown, key = 'a'): T {
  const raise = (): never => {
    throw thrown;
  };
  if (how === 'getter') {
    Object.defineProperty(target, key, { get: raise, enumerable: true, configurable: true });
    return target;
  }
  if (how === 'proxy') return new Proxy(target, { [trap]: raise });
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

function nestedArrays(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe(`hostile input at the default size limit (limits.maxEventBytes, 1 MiB)`, { timeout: 60_000 }, () => {
  const dir = tempDir();
  let bus: EventBus;
  let out: ReturnType<typeof recorder>;

  before(async () => {
    out = recorder(dir);
    bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [out.consumer('recorder')],
      pool: { maxThreads: 1 },
    });
  });
  after(async () => {
    await bus?.close();
    dir.remove();
  });

  /** An event with every field given, so its encoded size depends on the string's length alone. */
  const huge = (length: number): Event => ({
    event_id: uuid(),
    timestamp: '2026-01-31T12:00:00.123Z',
    event_type: 'SessionExtended',
    payload: { s: 'x'.repeat(length) },
    metadata: { correlation_id: uuid(), causation_id: null, user_id: null, tenant_id: null, source: 'hostile-test' },
  });

  async function stored(): Promise<Event[]> {
    const events: Event[] = [];
    for await (const e of bus.replay()) events.push(e);
    return events;
  }

  it('a string that makes the event exactly maxEventBytes is accepted, one byte more is rejected as too large; counts exact', async () => {
    const max = bus.options.limits.maxEventBytes;
    assert.equal(max, 1024 * 1024, 'the default limit');
    // The string's length that brings the event (as the bus's own writer encodes it) to the limit exactly.
    const overhead = codec.encodeEvent(huge(0)).length;
    let length = max - overhead;
    while (codec.encodeEvent(huge(length)).length > max) length--;
    const fits = huge(length);
    const over = huge(length + 1);
    assert.equal(codec.encodeEvent(fits).length, max);
    assert.equal(codec.encodeEvent(over).length, max + 1);

    const receipt = await bus.emit(fits);
    assert.equal(receipt.event_id, fits.event_id);
    assert.equal(receipt.duplicate, false);

    const rejected = await bus.emit(over).then(
      () => assert.fail('an event one byte over the limit was accepted'),
      (err: unknown) => err,
    );
    assert.ok(rejected instanceof EventTooLargeError, `EventTooLargeError, got ${String(rejected)}`);
    assert.equal(rejected.code, 'ERR_EVENTRAIL_EVENT_TOO_LARGE');
    assert.match(rejected.message, new RegExp(`${max + 1} bytes, over limits.maxEventBytes \\(${max}\\)`));

    // The bus still works after it.
    const probe = await bus.emit({ event_type: 'SessionCreated', metadata: { source: 'probe' } });
    await bus.flush();

    const events = await stored();
    assert.deepEqual(
      events.map((e) => e.event_id),
      [fits.event_id, probe.event_id],
      'stored: the one that fits and the probe, once each; nothing of the one over',
    );
    assert.deepStrictEqual(events[0], fits, 'the 1 MiB event replays equal to what was emitted');
    const deliveries = out.read().map((d) => d.event_id);
    assert.deepEqual(deliveries.sort(), [fits.event_id, probe.event_id].sort(), 'delivered once each');
    assert.deepEqual(await bus.deadLetters.list(), []);
    const metrics = await bus.metrics();
    assert.equal(metricValue(metrics, 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_EVENT_TOO_LARGE"}'), 1);
    assert.equal(metricValue(metrics, 'eventrail_dead_letters_total{consumer="Recorder"}') ?? 0, 0);
  });
});
