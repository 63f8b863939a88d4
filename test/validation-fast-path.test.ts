import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eventInputSchema, quickParse } from '../src/event/schema.js';

const limits = { maxDepth: 8 };
const wellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const schema = eventInputSchema(limits);
const absent = fc.constant(undefined);
const uuid = fc.uuid().chain((u) => fc.constantFrom(u, u.toUpperCase()));
const notUuid = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 36, maxLength: 36, unit: fc.constantFrom(...'0123456789abcdefABCDEFgG-_ :/@`０'.split('')) }),
  fc.constantFrom(
    null,
    42,
    '',
    '00000000-0000-0000-0000-00000000000g',
    '00000000-0000-0000-0000-00000000000G',
    ' 00000000-0000-0000-0000-000000000000',
    '000000000-000-0000-0000-000000000000',
    '00000000-0000-0000-0000-000000000000\n',
  ),
);
const text = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', 'a\uD800b', 'login_handler', 'ü'));
const eventType = fc.oneof(
  fc.constantFrom('UserLoggedIn', 'WorkflowFailed', 'Nope', 'userLoggedIn', null, 42),
  text.map((Custom) => ({ Custom })),
  fc.constantFrom({ Custom: 42 }, { Custom: 'x', extra: 1 }, {}, { custom: 'x' }),
);
const payload = fc.oneof(
  absent,
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    { a: undefined },
    { f: () => 1 },
    { d: new Date(0) },
    [1, [2, [3, [4, [5, [6, [7, [8, [9]]]]]]]]],
    { s: 'a\uDC00' },
    { n: Number.NaN },
  ),
);
const optional = <T>(arb: fc.Arbitrary<T>) => fc.oneof(absent, arb);
const metadata = fc.oneof(
  fc.record(
    {
      correlation_id: optional(fc.oneof(uuid, notUuid)),
      causation_id: optional(fc.oneof(uuid, notUuid, fc.constant(null))),
      user_id: optional(fc.oneof(uuid, notUuid, fc.constant(null))),
      tenant_id: optional(fc.oneof(uuid, notUuid, fc.constant(null))),
      source: optional(fc.oneof(text, fc.constant(42))),
      extra: optional(fc.constant('unknown key')),
    },
    { requiredKeys: [] },
  ),
  fc.constantFrom(null, [], 'x', 5),
);
const input = fc.oneof(
  fc.record(
    {
      event_id: optional(fc.oneof(uuid, notUuid)),
      timestamp: optional(fc.constantFrom('2026-01-01T00:00:00Z', 'yesterday')),
      event_type: eventType,
      payload,
      metadata,
      other: optional(fc.constant(1)),
    },
    { requiredKeys: [] },
  ),
  fc.anything(),
);
/** Inputs that are valid in the plain way the fast path handles. */
const plainValid = fc.record({
  event_id: optional(uuid),
  event_type: fc.oneof(
    fc.constantFrom('UserLoggedIn', 'SessionExpired'),
    fc
      .string({ minLength: 1, maxLength: 10 })
      .filter(wellFormed)
      .map((Custom) => ({ Custom })),
  ),
  payload: optional(fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('"__proto__"'))),
  metadata: fc.record(
    {
      correlation_id: optional(uuid),
      user_id: optional(fc.oneof(uuid, fc.constant(null))),
      tenant_id: optional(fc.oneof(uuid, fc.constant(null))),
      source: fc.string({ minLength: 1, maxLength: 10 }).filter(wellFormed),
    },
    { requiredKeys: ['source'] },
  ),
});

const TOP = ['event_id', 'timestamp', 'event_type', 'payload'] as const;
const META = ['correlation_id', 'causation_id', 'user_id', 'tenant_id', 'source'] as const;

describe('the validation fast path', () => {
  it('answers only when the zod schema accepts, with the same values', () => {
    fc.assert(
      fc.property(input, (x) => {
        const quick = quickParse(x, limits);
        if (quick === null) return;
        const parsed = schema.safeParse(x);
        assert.ok(parsed.success, `the fast path accepted what zod rejects: ${JSON.stringify(x)}`);
        const data = parsed.data as Record<string, unknown>;
        for (const key of TOP) assert.equal((quick as Record<string, unknown>)[key], data[key], key);
        const md = data.metadata as Record<string, unknown>;
        for (const key of META) assert.equal((quick.metadata as Record<string, unknown>)[key], md[key], `metadata.${key}`);
      }),
      { numRuns: 20_000 },
    );
  });

  it('handles the plain valid inputs emit usually sees', () => {
    fc.assert(
      fc.property(plainValid, (x) => {
        assert.ok(schema.safeParse(x).success);
        assert.notEqual(quickParse(x, limits), null);
      }),
      { numRuns: 2000 },
    );
  });
});
