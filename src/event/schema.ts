/**
 * zod schemas for the event contract, and the one-pass validation that `emit`
 * runs. Validation returns a result, never throws: it is on the hot path.
 */
import { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import type { EventDraft } from '../codec.js';
import { BUILTIN_EVENT_TYPES, EVENT_KEYS, METADATA_KEYS, isPlainObject, isWellFormed, type EventType } from './event.js';
import { UUID_RE, isUuid } from './ids.js';
import { RFC3339, toUtcTimestamp } from './timestamp.js';

/**
 * A uuid in any case. Not normalised here: a zod transform costs more than the
 * whole rest of the event's validation; completeEvent() lowercases instead.
 */
export const uuidSchema = z
  .string({ error: (iss) => `must be a uuid string, got ${describe(iss.input)}` })
  .regex(UUID_RE, { error: (iss) => `must be a uuid (8-4-4-4-12 hex digits), got ${describe(iss.input)}` });

const BUILTIN_SET: ReadonlySet<unknown> = new Set(BUILTIN_EVENT_TYPES);

const NOT_WELL_FORMED = 'has a lone surrogate (not well-formed UTF-16), which cannot be stored unchanged';

/** Why a value is not an EventType, or null when it is one. One check instead of a zod union: it is on the hot path. */
export function eventTypeProblem(value: unknown): string | null {
  if (typeof value === 'string') {
    return BUILTIN_SET.has(value)
      ? null
      : `must be one of ${BUILTIN_EVENT_TYPES.join(', ')} or { "Custom": "<name>" }, got ${describe(value)}`;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1 || keys[0] !== 'Custom') {
      return `must be a builtin type name or exactly { "Custom": "<name>" }, got an object with keys ${JSON.stringify(keys)}`;
    }
    const name = (value as { Custom: unknown }).Custom;
    if (typeof name !== 'string') return `Custom must be a string, got ${describe(name)}`;
    if (!isWellFormed(name)) return `Custom ${NOT_WELL_FORMED}`;
    return null;
  }
  return `must be one of ${BUILTIN_EVENT_TYPES.join(', ')} or { "Custom": "<name>" }, got ${describe(value)}`;
}

export const eventTypeSchema = z.custom<EventType>((value) => eventTypeProblem(value) === null, {
  error: (iss) => eventTypeProblem(iss.input) ?? 'is not an event type',
});

/** RFC 3339 with a time zone; normalised as chrono's `DateTime<Utc>` is written (see toUtcTimestamp). */
export const timestampSchema = z
  .string({ error: (iss) => `must be an RFC 3339 timestamp string, got ${describe(iss.input)}` })
  .regex(RFC3339, {
    error: (iss) => `must be an RFC 3339 timestamp such as 2026-01-31T12:00:00.000Z, got ${describe(iss.input)}`,
  })
  .transform((s, ctx) => {
    const utc = toUtcTimestamp(s);
    if (utc === null) {
      ctx.addIssue({ code: 'custom', message: `is not a real date: ${describe(s)}`, input: s });
      return z.NEVER;
    }
    return utc;
  });

export interface PayloadLimits {
  maxDepth: number;
}

const optionalUuid = uuidSchema.nullable().optional();

export const metadataInputSchema = z.strictObject(
  {
    correlation_id: uuidSchema.optional(),
    causation_id: optionalUuid,
    user_id: optionalUuid,
    tenant_id: optionalUuid,
    source: z
      .string({ error: (iss) => `must be a string naming the producer, got ${describe(iss.input)}` })
      .refine(isWellFormed, NOT_WELL_FORMED),
  },
  { error: (iss) => (iss.code === 'unrecognized_keys' ? undefined : `must be an object, got ${describe(iss.input)}`) },
);

export function eventInputSchema(limits: PayloadLimits) {
  return z.strictObject(
    {
      event_id: uuidSchema.optional(),
      timestamp: timestampSchema.optional(),
      event_type: eventTypeSchema,
      payload: z
        .unknown()
        .superRefine((value, ctx) => {
          const problem = checkJson(value, limits.maxDepth);
          if (problem !== null) ctx.addIssue({ code: 'custom', message: problem, input: value });
        })
        .optional(),
      metadata: metadataInputSchema,
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? undefined : `an event must be an object, got ${describe(iss.input)}`) },
  );
}

export type EventInputSchema = ReturnType<typeof eventInputSchema>;

const INPUT_KEYS: ReadonlySet<string> = new Set(EVENT_KEYS);
const METADATA_INPUT_KEYS: ReadonlySet<string> = new Set(METADATA_KEYS);

const isUuidOrAbsent = (v: unknown) => v === undefined || isUuid(v);
const isUuidNullOrAbsent = (v: unknown) => v === undefined || v === null || isUuid(v);

/** Own enumerable keys all in `allowed`. */
function onlyKeys(value: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const key in value) if (!allowed.has(key) || !Object.hasOwn(value, key)) return false;
  return true;
}

/**
 * The common case of `eventInputSchema(limits).safeParse(input)`, without zod's
 * per-call machinery, which cost as much as the rest of emit together. It
 * answers only for plainly valid inputs: plain objects with known keys, uuids,
 * a builtin or custom type, a JSON payload (the same checks the schema calls),
 * no timestamp (whose normalisation stays with the schema). For anything else
 * it returns null and the caller runs the zod schema, which stays the one
 * definition of what is valid and the one source of error messages. A
 * property test holds the two to the same answers (test/validation-fast-path).
 */
export function quickParse(input: unknown, limits: PayloadLimits): z.output<EventInputSchema> | null {
  if (!isPlainObject(input) || !onlyKeys(input, INPUT_KEYS)) return null;
  const { event_id, timestamp, event_type, payload, metadata } = input;
  if (timestamp !== undefined || !isUuidOrAbsent(event_id) || eventTypeProblem(event_type) !== null) return null;
  if (!isPlainObject(metadata) || !onlyKeys(metadata, METADATA_INPUT_KEYS)) return null;
  const { correlation_id, causation_id, user_id, tenant_id, source } = metadata;
  if (typeof source !== 'string' || !isWellFormed(source)) return null;
  if (
    !isUuidOrAbsent(correlation_id) ||
    !isUuidNullOrAbsent(causation_id) ||
    !isUuidNullOrAbsent(user_id) ||
    !isUuidNullOrAbsent(tenant_id)
  ) {
    return null;
  }
  if (checkJson(payload, limits.maxDepth) !== null) return null;
  // Built in the Event's own shape and order: completeEvent() fills it in place.
  return {
    event_id: event_id as string | undefined,
    timestamp: undefined,
    event_type: event_type as EventType,
    payload,
    metadata: {
      correlation_id: correlation_id as string | undefined,
      causation_id: causation_id as string | null | undefined,
      user_id: user_id as string | null | undefined,
      tenant_id: tenant_id as string | null | undefined,
      source,
    },
  };
}

/**
 * Checks that a payload is a JSON value (what serde_json::Value can hold): no
 * functions, symbols, undefined, non-finite numbers, class instances, BigInts
 * only within serde's i64/u64, and no deeper than `maxDepth` (which also
 * catches cycles). A key `__proto__` is data like any other (the codec stores
 * and decodes it as such). Recursion is bounded by `maxDepth` (at most 1000),
 * and nothing is allocated on the way: this runs for every event. Returns
 * null when fine, else what is wrong, from the payload down: `[0].a must ...`,
 * or `must ...` for the payload itself (the caller names the payload).
 */
export function checkJson(root: unknown, maxDepth: number): string | null {
  if (root === undefined) return null; // payload left out: defaults to {}
  const problem = checkValue(root, 0, maxDepth, '');
  return problem === null || problem[0] !== ' ' ? problem : problem.slice(1);
}

/** serde_json's integers: i64 and u64. */
const I64_MIN = -(1n << 63n);
const U64_MAX = (1n << 64n) - 1n;

function checkValue(value: unknown, depth: number, maxDepth: number, path: string): string | null {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? null : `${path} ${NOT_WELL_FORMED}`;
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : `${path} must be a JSON value, got the number ${value}`;
    case 'bigint':
      return value >= I64_MIN && value <= U64_MAX
        ? null
        : `${path} must be an integer within 64 bits (i64 or u64, as serde_json holds them), got ${value}n`;
    case 'object': {
      if (value === null) return null;
      if (depth >= maxDepth) return `${path} nests deeper than limits.maxDepth (${maxDepth}) or is circular`;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = checkValue(value[i], depth + 1, maxDepth, '');
          if (problem !== null) return `${path}[${i}]${problem}`;
        }
        return null;
      }
      if (!isPlainObject(value)) {
        return `${path} must be a plain object, got an instance of ${(value as object).constructor?.name ?? 'a class'}`;
      }
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        if (!isWellFormed(key)) return `${path} has a key that ${NOT_WELL_FORMED}`;
        const problem = checkValue((value as Record<string, unknown>)[key], depth + 1, maxDepth, '');
        if (problem !== null) return `${path}.${key}${problem}`;
      }
      if (Object.getOwnPropertySymbols(value).length > 0) return `${path} has symbol keys, which JSON cannot hold`;
      return null;
    }
    default:
      return `${path} must be a JSON value, got ${describe(value)}`;
  }
}

/** A short, safe description of a received value for error messages. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'nothing (undefined)';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    case 'bigint':
      return `the BigInt ${value}n`;
    case 'string':
      return value.length > 60 ? `\`${JSON.stringify(value.slice(0, 60))}…\`` : `\`${JSON.stringify(value)}\``;
    case 'object':
      if (value === null) return '`null`';
      if (Array.isArray(value)) return 'an array';
      return 'an object';
    default:
      return `\`${String(value)}\``;
  }
}

/** Flattens zod issues into `path: message` lines. */
export function toIssues(error: z.ZodError, root = ''): ValidationIssue[] {
  return error.issues.map((issue) => {
    const path = [root, ...issue.path.map(String)].filter(Boolean).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `has unknown field(s) ${issue.keys.map((k) => `\`${k}\``).join(', ')}`;
    // Only when the input was reported (reportInput): otherwise `input` is absent for present values of the wrong type too.
    else if (issue.code === 'invalid_type' && 'input' in issue && issue.input === undefined) message = 'is required';
    // A payload's inner path continues the field's: `payload[0].a must ...`.
    const joined = message[0] === '[' || message[0] === '.' ? `${path}${message}` : `${path} ${message}`;
    return { path, message: path ? joined : message };
  });
}

type ParsedInput = z.output<EventInputSchema>;

/** serde writes uuids in lowercase. */
const lower = (s: string | null | undefined): string | null | undefined => (typeof s === 'string' ? s.toLowerCase() : s);

/**
 * Turns validated input into an event draft, in place: the input is the fresh
 * object a parse built (quickParse or the zod schema), owned by the caller,
 * so filling it in spares two allocations per emit. Uuids are lowercased
 * (serde writes them so) and defaults filled; the generated fields (event_id,
 * timestamp, correlation_id) stay missing when the input has none, for the
 * event writer to generate in place (Codec.encodeDraft).
 */
export function completeEvent(input: ParsedInput): EventDraft {
  const md = input.metadata as Mutable<ParsedInput['metadata']>;
  md.correlation_id = lower(md.correlation_id) ?? undefined;
  md.causation_id = lower(md.causation_id) ?? null;
  md.user_id = lower(md.user_id) ?? null;
  md.tenant_id = lower(md.tenant_id) ?? null;
  const event = input as Mutable<ParsedInput>;
  event.event_id = lower(event.event_id) ?? undefined;
  const type = event.event_type;
  // A fresh object for custom types: the caller's object must not become part of the event.
  if (typeof type !== 'string') event.event_type = { Custom: type.Custom };
  if (event.payload === undefined) event.payload = {};
  return event as EventDraft;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A complete, stored event (what replay returns), as one schema: for users who validate events they receive elsewhere. */
export const eventSchema = z.strictObject({
  event_id: uuidSchema,
  timestamp: timestampSchema,
  event_type: eventTypeSchema,
  payload: z.unknown().superRefine((value, ctx) => {
    const problem = value === undefined ? 'is required' : checkJson(value, 128);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem, input: value });
  }),
  metadata: z.strictObject({
    correlation_id: uuidSchema,
    causation_id: uuidSchema.nullable(),
    user_id: uuidSchema.nullable(),
    tenant_id: uuidSchema.nullable(),
    source: z.string().refine(isWellFormed, NOT_WELL_FORMED),
  }),
});
