/**
 * The one read path over a store, shared by the bus (`replay`, `audit.query`,
 * recovery) and the CLI (`eventrail replay|audit|stats`): a query in, decoded
 * and filtered results out. What cannot be read (a corrupt block, bytes that
 * are not msgpack, msgpack that is not an event) goes to `onCorrupt` and the
 * read goes on with the rest of the log.
 */
import type { Codec } from '../codec.js';
import { StoreCorruptError } from '../errors.js';
import { readAuditEntry } from '../event/audit.js';
import { debugEventType, eventTypeKey, type AuditEntry, type Event, type EventType } from '../event/event.js';
import { notAnEvent } from '../event/shape.js';
import { decodeStored, positionToString, type CorruptHandler, type EventStore, type Position, type StoredEvent } from './store.js';

export interface EventReadQuery {
  /** Only events strictly after this position. */
  readonly after?: Position;
  /** Only events whose timestamp is at or after this (ms since the epoch). */
  readonly fromMs?: number;
  /** Only events whose timestamp is before this (ms since the epoch). */
  readonly toMs?: number;
  /** Only this tenant's events (any case), read through the tenant index. */
  readonly tenantId?: string;
  readonly types?: readonly EventType[];
  /** At most this many events. */
  readonly limit?: number;
}

export interface AuditReadQuery {
  readonly fromMs?: number;
  readonly toMs?: number;
  /** Only this tenant's entries (any case). */
  readonly tenantId?: string;
  /** Only this user's entries (any case): `metadata.user_id`. */
  readonly userId?: string;
  readonly types?: readonly EventType[];
  /** At most this many entries. */
  readonly limit?: number;
}

/**
 * A stored event, or null once `onCorrupt` has been told why it is not one:
 * a block the store could not decode, bytes that are not msgpack, or msgpack
 * that is not an event.
 */
export function decodeEvent(codec: Codec, stored: StoredEvent, onCorrupt: CorruptHandler): Event | null {
  const event = decodeStored(codec, stored, onCorrupt);
  if (event === null) return null;
  const problem = notAnEvent(event);
  if (problem !== null) {
    onCorrupt(new StoreCorruptError(`the event at ${positionToString(stored.position)} is not an event: ${problem}`));
    return null;
  }
  return event;
}

/** Stored events in store order, read page by page. */
export async function* readEvents(
  store: EventStore,
  codec: Codec,
  query: EventReadQuery,
  onCorrupt: CorruptHandler,
): AsyncGenerator<Event> {
  const { limit } = query;
  if (limit !== undefined && limit <= 0) return;
  const types = query.types === undefined ? null : new Set(query.types.map(eventTypeKey));
  let yielded = 0;
  for await (const stored of store.readEvents({
    after: query.after,
    fromMs: query.fromMs,
    toMs: query.toMs,
    tenantId: lower(query.tenantId),
  })) {
    const event = decodeEvent(codec, stored, onCorrupt);
    if (event === null) continue;
    if (types !== null && !types.has(eventTypeKey(event.event_type))) continue;
    yield event;
    if (limit !== undefined && ++yielded >= limit) return;
  }
}

/** Audit entries in store order; the store reports an audit block it cannot decode, this an entry it cannot. */
export async function* readAuditEntries(
  store: EventStore,
  codec: Codec,
  query: AuditReadQuery,
  onCorrupt: CorruptHandler,
): AsyncGenerator<AuditEntry> {
  const { limit } = query;
  if (limit !== undefined && limit <= 0) return;
  const tenantId = lower(query.tenantId);
  const userId = lower(query.userId);
  // Audit entries carry the seed's Debug form of the type: `UserLoggedIn`, `Custom("name")`.
  const types = query.types === undefined ? null : new Set(query.types.map(debugEventType));
  let yielded = 0;
  for await (const stored of store.readAudit({ fromMs: query.fromMs, toMs: query.toMs, tenantId, onCorrupt })) {
    const entry = readAuditEntry(codec, stored.bytes, positionToString(stored.position), onCorrupt);
    if (entry === null) continue;
    if (userId !== undefined && entry.metadata.user_id !== userId) continue;
    if (tenantId !== undefined && entry.metadata.tenant_id !== tenantId) continue;
    if (types !== null && !types.has(entry.event_type)) continue;
    yield entry;
    if (limit !== undefined && ++yielded >= limit) return;
  }
}

/** Stored uuids are lowercase (emit lowercases them), and a query may spell one in any case. */
const lower = (id: string | undefined): string | undefined => (typeof id === 'string' ? id.toLowerCase() : id);
