/**
 * One accepted event on the main thread, from the moment `emit` accepts it
 * until every consumer has handled it (or it was dead-lettered).
 */
import { STAMP_BYTES, positionOf } from '../store/layout/positions.js';
import type { AppendItem, Position } from '../store/store.js';

/** The stamp of a store `none` commit, shaped like a stored one: the commit number where the counter goes. */
export function memoryStamp(commit: number): Buffer {
  const stamp = Buffer.alloc(STAMP_BYTES);
  stamp.writeUIntBE(commit, 2, 6);
  return stamp;
}

/**
 * Events routed together: one commit of this instance's, or one page read
 * from the shared log. Cursors advance a whole group at a time
 * (cursors.ts), per consumer.
 */
export class CommitGroup {
  /** Per consumer: deliveries of the group's events not finished yet; counted as the group is routed. */
  left: Int32Array | null = null;
  /** Its place in routing order (cursors.ts), set when tracked. */
  seq = 0;
  /** Every delivery of it is counted in `left`. */
  routed = false;
  /** Every event of the log up to here is in this group or an earlier one (of the partitions routed). */
  lastPosition: Position | null = null;
  /** The store's head before this commit (AppendResult.headBefore); undefined where unknown. */
  headBefore: Position | null | undefined = undefined;
  /** Something of the group could not be saved (a dead letter): no cursor may pass it in this process. */
  poisoned = false;
  /** performance.now() when its first event was accepted, for the emit-to-handled histogram (one per group, not per event). */
  readonly acceptedAt: number;

  constructor(acceptedAt: number) {
    this.acceptedAt = acceptedAt;
  }
}

/** It is also what the store appends, so a batch goes to the store without a copy per event. */
export class Accepted implements AppendItem {
  readonly eventId: string;
  /**
   * The encoded event is bytes `start` to `end` of `source` (the codec's
   * arena, or a buffer of its own): no view per event, and events encoded one
   * after another are copied as one run (copyBodies).
   */
  readonly source: Buffer;
  readonly start: number;
  readonly end: number;
  readonly typeKey: string;
  readonly partitionKey: string | null;
  readonly tenantId: string | null;
  checkDuplicate = false;
  timestampMs = 0;
  /** The audit_id when the event's type is audited, else null. */
  auditId: string | null = null;
  #position: Position | null = null;
  /** The commit's stamp and the event's index in it, when the position is made only once someone reads it. */
  #stamp: Buffer | null = null;
  #index = 0;
  /** Deliveries not yet finished (handled, or dead letter saved). */
  outstanding = 0;
  group: CommitGroup | null = null;
  /**
   * The consumers (indices) to deliver to, when this instance holds the
   * leases of only some of the groups subscribed; null: every subscribed one.
   */
  only: readonly number[] | null = null;
  /** The event's partition of the shared log, once computed (-1 before). */
  partition = -1;
  /** A dead letter of this event could not be saved: see CommitGroup.poisoned. */
  poisoned = false;

  /** The encoded event (a view made on each read: hot paths use source, start and end). */
  get bytes(): Buffer {
    return this.source.subarray(this.start, this.end);
  }

  get byteLength(): number {
    return this.end - this.start;
  }

  /** Where the event is stored; null until it is committed. */
  get position(): Position | null {
    if (this.#position === null && this.#stamp !== null) this.#position = positionOf(this.#stamp, this.#index);
    return this.#position;
  }

  set position(position: Position | null) {
    this.#position = position;
  }

  /**
   * Committed at index `index` of the commit stamped `stamp` (store `none`,
   * or a batch with no duplicate): the position is built only if someone
   * reads it (a receipt, a dead letter, a cursor).
   */
  committedAt(stamp: Buffer, index: number): void {
    this.#stamp = stamp;
    this.#index = index;
  }

  constructor(
    eventId: string,
    source: Buffer,
    start: number,
    end: number,
    typeKey: string,
    partitionKey: string | null,
    tenantId: string | null,
  ) {
    this.eventId = eventId;
    this.source = source;
    this.start = start;
    this.end = end;
    this.typeKey = typeKey;
    this.partitionKey = partitionKey;
    this.tenantId = tenantId;
  }
}
