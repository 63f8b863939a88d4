/**
 * The store contract: what the bus needs from a durable backend. Both backends
 * (lmdb, FoundationDB) implement it over the same ordered key layout
 * (`layout/`), so they hold the same bytes; `testStore()` in
 * test/store-conformance.ts checks any implementation.
 *
 * Values handed to and returned by a store are already encoded with the shared
 * codec: a store never encodes an event itself (the bytes stored are the bytes
 * dispatched to workers).
 */
import type { Codec } from '../codec.js';
import { StoreCorruptError, type SerializedError } from '../errors.js';
import type { Event } from '../event/event.js';

/**
 * Where an event sits in the log: 12 bytes shaped like a FoundationDB
 * versionstamp (10-byte commit version, 2-byte index within the commit),
 * compared bytewise. On lmdb the commit version is a counter kept in the same
 * transaction.
 */
export type Position = Buffer;

export const POSITION_BYTES = 12;

export interface AppendItem {
  readonly eventId: string;
  /**
   * True when the caller supplied the event_id, so it may already be stored
   * and must be looked up. Ids the bus generated (uuid v7) are fresh and skip
   * the lookup.
   */
  readonly checkDuplicate: boolean;
  /** The event encoded with the shared codec. */
  readonly bytes: Buffer;
  readonly tenantId: string | null;
  /** `Date.parse(event.timestamp)`. */
  readonly timestampMs: number;
  /**
   * The AuditEntry's audit_id when the event's type is audited, else null.
   * The store writes the entry in the event's own transaction, as the record
   * of event/audit.ts: this id, then the event's bytes.
   */
  readonly auditId: string | null;
}

export interface AppendResult {
  /** One per item, in order: where the event is stored (for a duplicate, where it already was). */
  readonly positions: Position[];
  /** One per item: true when the event_id was already stored, or repeated earlier in the same batch. */
  readonly duplicate: boolean[];
  /**
   * The log's head just before this commit (`commitEnd` of the previous
   * commit, null when the log was empty), where the backend knows it (lmdb);
   * undefined on FoundationDB. When it is what this instance last saw, nobody
   * else appended in between.
   */
  readonly headBefore?: Position | null;
  /**
   * Set by a backend when no item of the batch was a duplicate (lmdb): the
   * commit's 10-byte stamp, item i being at `stamp ‖ uint16BE(i)`. A bus
   * reads this instead of `positions`, which such a backend builds only when
   * first read (no Buffer per event).
   */
  readonly fresh?: Buffer;
}

export interface StoredEvent {
  readonly position: Position;
  readonly bytes: Buffer;
  /**
   * Set when the block at this position could not be decoded (then `bytes` is
   * empty and `position` is the block's first): readers report it and go on
   * with the rest of the log instead of failing the whole scan.
   */
  readonly corrupt?: StoreCorruptError;
}

export interface ReadEventsQuery {
  /** Only events strictly after this position. */
  readonly after?: Position;
  /** Only events at or before this position. */
  readonly until?: Position;
  /** Only events whose timestamp is at or after this (ms since epoch). */
  readonly fromMs?: number;
  /** Only events whose timestamp is before this (ms since epoch). */
  readonly toMs?: number;
  /** Only this tenant's events, read through the tenant index. */
  readonly tenantId?: string;
  /** Events per page (one short read each). */
  readonly pageSize?: number;
}

/**
 * Called with each stored value a read cannot decode (an audit block, the
 * event an audit entry is made of, a dead letter): the read skips it and goes
 * on. Without it, the read rejects with that StoreCorruptError.
 */
export type CorruptHandler = (error: StoreCorruptError) => void;

export interface AuditQuery {
  readonly after?: Position;
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly tenantId?: string;
  readonly pageSize?: number;
  readonly onCorrupt?: CorruptHandler;
}

export interface StoredAuditEntry {
  /** The position of the audited event. */
  readonly position: Position;
  /** The AuditEntry, encoded with the shared codec. */
  readonly bytes: Buffer;
}

export interface DeadLetterRecord {
  readonly consumer: string;
  readonly position: Position;
  /** The event, encoded with the shared codec. */
  readonly event: Buffer;
  readonly error: SerializedError;
  readonly attempts: number;
  /** RFC 3339. */
  readonly failedAt: string;
  readonly tenantId: string | null;
}

export interface DeadLetterKey {
  readonly consumer: string;
  readonly position: Position;
}

export interface DeadLetterQuery {
  readonly consumer?: string;
  readonly tenantId?: string;
  /** Dead letters per page (one short read each). */
  readonly pageSize?: number;
  readonly onCorrupt?: CorruptHandler;
}

/** A consumer group's partition: what one lease covers and one cursor tracks. */
export interface GroupPartition {
  /** The group: a consumer's name. */
  readonly group: string;
  readonly partition: number;
}

/**
 * A cursor move: every event of `partition` up to and including `position` is
 * handled by `group`. Written only while `instance` (ProgressWrite) holds the
 * lease of (group, partition) with this `epoch` (checked in the same
 * transaction), and never backwards: a lower position than the stored one
 * leaves it as it is.
 */
export interface CursorWrite extends GroupPartition {
  readonly epoch: number;
  readonly position: Position;
}

/** The lease a dead letter is written under: (record.consumer, partition) held with `epoch`. */
export interface Fence {
  readonly partition: number;
  readonly epoch: number;
}

/**
 * Progress written in one transaction, so a cursor never passes a dead letter
 * that was not saved. Cursors and fenced dead letters whose lease `instance`
 * no longer holds with that epoch are not written (the rest is), and come
 * back in ProgressResult.lost.
 */
export interface ProgressWrite {
  /** Whose leases fence the cursors and the fenced dead letters; required when there are any. */
  readonly instance?: string;
  readonly deadLetters?: readonly FencedDeadLetter[];
  readonly removeDeadLetters?: readonly DeadLetterKey[];
  readonly cursors?: readonly CursorWrite[];
}

export interface FencedDeadLetter extends DeadLetterRecord {
  /** Unfenced (redrives, tools) when absent. */
  readonly fence?: Fence;
}

export interface ProgressResult {
  /** Leases the write found lost (another owner, or another epoch): their cursors and dead letters were not written. */
  readonly lost: readonly GroupPartition[];
}

/** Where a group's partition stands in the store. */
export interface CursorRecord extends GroupPartition {
  /** Events up to and including this position are handled; null: none yet (from the start of the log). */
  readonly position: Position | null;
}

export interface LeaseRecord extends GroupPartition {
  /** The holder's instance id; '' when the lease was handed over and is free. */
  readonly owner: string;
  /** Date.now() of the holder when it lapses; 0 when free. */
  readonly expiresAt: number;
  /** Fencing epoch: one more on every takeover. */
  readonly epoch: number;
}

/** A group as an instance runs it. */
export interface GroupSpec {
  readonly name: string;
  /** For a group the store has never seen: from the start of the log, or from its head now. */
  readonly startFrom: 'beginning' | 'now';
}

/** A lease handed over: freed, and its cursor written, in one transaction, if still held with `epoch`. */
export interface Release extends GroupPartition {
  readonly epoch: number;
  /** The final cursor (null: leave the stored one). */
  readonly cursor: Position | null;
}

/**
 * One round of an instance's membership and leases, run as one transaction
 * (store/coordination.ts decides, each backend reads and writes).
 */
export interface CoordinateRequest {
  readonly instance: string;
  readonly groups: readonly GroupSpec[];
  /** Recorded when the store has no partition count yet; the store's own count wins. */
  readonly partitions: number;
  readonly leaseMs: number;
  /** This instance's Date.now(). */
  readonly now: number;
  readonly release?: readonly Release[];
  /** The instance is going: its membership is removed (its leases go through `release`). */
  readonly leaving?: boolean;
  /**
   * Instances known to be gone (a process of this host that no longer
   * exists): their membership and leases count as lapsed now, not at expiry.
   */
  readonly lapsed?: readonly string[];
}

export interface HeldLease extends GroupPartition {
  readonly epoch: number;
  readonly expiresAt: number;
  /** Where delivery resumes: events of the partition after this position (null: from the start of the log). */
  readonly cursor: Position | null;
}

export interface CoordinateResult {
  /** The store's partition count. */
  readonly partitions: number;
  /** Every lease this instance holds after the round: renewed or newly taken. */
  readonly held: readonly HeldLease[];
  /** Of `held`, those the assignment gives to another live instance: drain them, then release them. */
  readonly handOver: readonly GroupPartition[];
  /** Live instances, this one included, sorted. */
  readonly members: readonly string[];
}

export interface StoreStats {
  readonly events: number;
  readonly auditEntries: number;
  readonly deadLetters: number;
  /** Bytes on disk where the backend can tell, else null. */
  readonly bytes: number | null;
  readonly lastPosition: Position | null;
}

export interface EventStore {
  readonly kind: 'lmdb' | 'fdb';
  /**
   * Appends a batch in one transaction (or, on FoundationDB, as few as its
   * limits allow) with its indexes and audit entries, and resolves only once
   * it is durable. Idempotent per event_id. Rejects with StoreWriteError, and
   * then nothing of the batch is acknowledged.
   */
  append(items: readonly AppendItem[]): Promise<AppendResult>;
  /** Events in position order, read page by page (never the whole log at once). */
  readEvents(query?: ReadEventsQuery): AsyncIterable<StoredEvent>;
  /** Where an event_id is stored, or null. */
  lookup(eventId: string): Promise<Position | null>;
  /** Audit entries in position order, page by page. */
  readAudit(query?: AuditQuery): AsyncIterable<StoredAuditEntry>;
  readDeadLetters(query?: DeadLetterQuery): AsyncIterable<DeadLetterRecord>;
  writeProgress(write: ProgressWrite): Promise<ProgressResult>;
  /** One round of membership and leases (see CoordinateRequest). */
  coordinate(request: CoordinateRequest): Promise<CoordinateResult>;
  /** The last commit's end (`commitEnd`), or null when the log is empty. */
  head(): Promise<Position | null>;
  /**
   * Resolves once the head is past `after` (null: once anything is stored),
   * or when `signal` aborts. lmdb looks every `pollMs`; FoundationDB watches
   * the head key.
   */
  waitForAppend(after: Position | null, signal: AbortSignal): Promise<void>;
  readCursors(): Promise<CursorRecord[]>;
  readLeases(): Promise<LeaseRecord[]>;
  stats(): Promise<StoreStats>;
  close(): Promise<void>;
}

/** The last position a commit can have (its stamp, index 0xffff): "after this commit" as a position. */
export function commitEnd(position: Position): Position {
  const end = Buffer.from(position);
  end.writeUInt16BE(0xffff, POSITION_BYTES - 2);
  return end;
}

export function comparePositions(a: Position, b: Position): number {
  return Buffer.compare(a, b);
}

export function positionToString(position: Position): string {
  return position.toString('hex');
}

export function positionFromString(text: string): Position {
  if (!/^[0-9a-f]{24}$/i.test(text)) throw new TypeError(`a position is 24 hex digits, got ${JSON.stringify(text)}`);
  return Buffer.from(text, 'hex');
}

/**
 * A stored event decoded, or null once `onCorrupt` has been told why it cannot
 * be: a block the store could not read, bytes that are not msgpack, or nil.
 */
export function decodeStored(codec: Codec, stored: StoredEvent, onCorrupt: (error: StoreCorruptError) => void): Event | null {
  if (stored.corrupt !== undefined) {
    onCorrupt(stored.corrupt);
    return null;
  }
  let event: Event | null;
  try {
    event = codec.decode<Event | null>(stored.bytes);
  } catch (err) {
    onCorrupt(
      new StoreCorruptError(`the event at ${positionToString(stored.position)} cannot be decoded: ${(err as Error)?.message}`, err),
    );
    return null;
  }
  // null here means reported: a stored nil is no event either.
  if (event === null) onCorrupt(new StoreCorruptError(`the event at ${positionToString(stored.position)} is not an event`));
  return event;
}
