/**
 * The data contract: the seed's `Event`, `EventType` and `EventMetadata`, field
 * names and order included, so that `JSON.stringify(event)` equals serde's JSON
 * of the Rust struct.
 */

export const BUILTIN_EVENT_TYPES = [
  'UserLoggedIn',
  'UserLoggedOut',
  'TokenRefreshed',
  'SessionExpired',
  'SessionCreated',
  'SessionInvalidated',
  'SessionExtended',
  'WorkflowStarted',
  'WorkflowStateChanged',
  'WorkflowCompleted',
  'WorkflowFailed',
] as const;

export type BuiltinEventType = (typeof BUILTIN_EVENT_TYPES)[number];

/** serde's encoding of `EventType::Custom(String)`. */
export interface CustomEventType {
  readonly Custom: string;
}

export type EventType = BuiltinEventType | CustomEventType;

export type JsonValue = null | boolean | number | bigint | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export interface EventMetadata {
  readonly correlation_id: string;
  readonly causation_id: string | null;
  readonly user_id: string | null;
  readonly tenant_id: string | null;
  readonly source: string;
}

export interface Event {
  readonly event_id: string;
  readonly timestamp: string;
  readonly event_type: EventType;
  readonly payload: JsonValue;
  readonly metadata: EventMetadata;
}

/** What `emit` takes: every generated field may be left out. */
export interface EventInput {
  event_id?: string;
  timestamp?: string;
  event_type: EventType;
  payload?: JsonValue;
  metadata: {
    correlation_id?: string;
    causation_id?: string | null;
    user_id?: string | null;
    tenant_id?: string | null;
    source: string;
  };
}

/** The name of an event type as a flat string: `UserLoggedIn`, or the custom name. */
export function eventTypeName(type: EventType): string {
  return typeof type === 'string' ? type : type.Custom;
}

/** Key used to match event types: builtins by name, custom types as `Custom:name` so the two never collide. */
export function eventTypeKey(type: EventType): string {
  return typeof type === 'string' ? type : `Custom:${type.Custom}`;
}

export const EVENT_KEYS = ['event_id', 'timestamp', 'event_type', 'payload', 'metadata'] as const;
export const METADATA_KEYS = ['correlation_id', 'causation_id', 'user_id', 'tenant_id', 'source'] as const;
export const AUDIT_ENTRY_KEYS = ['audit_id', 'event_id', 'event_type', 'timestamp', 'payload', 'metadata'] as const;

/**
 * The seed's AuditLogger record. `event_type` is `format!("{:?}", event_type)`
 * in the seed: `UserLoggedIn`, or `Custom("name")`.
 */
export interface AuditEntry {
  readonly audit_id: string;
  readonly event_id: string;
  readonly event_type: string;
  readonly timestamp: string;
  readonly payload: JsonValue;
  readonly metadata: EventMetadata;
}

/** `format!("{:?}", event_type)` of the seed. */
export function debugEventType(type: EventType): string {
  return typeof type === 'string' ? type : `Custom(${JSON.stringify(type.Custom)})`;
}

/**
 * No lone surrogates: the store and the wire carry strings as UTF-8, where a
 * lone surrogate becomes U+FFFD, so such a string would not come back as it
 * was. (The cast: ES2024 typings are not in this project's lib.)
 */
export const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** An object made by `{}` or `Object.create(null)`, as JSON objects are: not an array, a class instance or a Map. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Freezes an event and everything in it (events are immutable once created). */
export function deepFreeze<T>(value: T): T {
  if (isUnfrozenObject(value)) freezeTree(value);
  return value;
}

const isUnfrozenObject = (value: unknown): value is object => value !== null && typeof value === 'object' && !Object.isFrozen(value);

/** Freezes an object and the objects under it; strings and numbers (most fields) cost no call. It runs for every event a worker hands out. */
function freezeTree(value: object): void {
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (isUnfrozenObject(item)) freezeTree(item);
    }
  } else {
    for (const key in value) {
      const item = (value as Record<string, unknown>)[key];
      if (isUnfrozenObject(item)) freezeTree(item);
    }
  }
}
