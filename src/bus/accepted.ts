/**
 * One accepted event on the main thread, from the moment `emit` accepts it
 * until every consumer has handled it (or it was dead-lettered).
 */
import { POSITION_BYTES, type AppendItem, type Position } from '../store/store.js';

/** A position of store `none`, shaped like a stored one: the commit number where the stamp goes, then the index. */
export function memoryPosition(commit: number, index: number): Position {
  const position = Buffer.alloc(POSITION_BYTES);
  position.writeUIntBE(commit, 2, 6);
  position.writeUInt16BE(index, 10);
  return position;
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
  /** The encoded event is bytes #start to #end of #source (the codec's arena, or a buffer of its own): no view per event. */
  readonly #source: Buffer;
  readonly #start: number;
  readonly #end: number;
  readonly typeKey: string;
  readonly partitionKey: string | null;
  readonly tenantId: string | null;
  checkDuplicate = false;
  timestampMs = 0;
  /** The audit_id when the event's type is audited, else null. */
  auditId: string | null = null;
  #position: Position | null = null;
  /** Store `none`: the in-memory commit and index the position is made of, the first time it is read. */
  #memoryCommit = 0;
  #memoryIndex = 0;
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

  /** The encoded event (a view made on each read: hot paths use byteLength and copyBytes). */
  get bytes(): Buffer {
    return this.#source.subarray(this.#start, this.#end);
  }

  get byteLength(): number {
    return this.#end - this.#start;
  }

  /** Copies the encoded event to `target` at `at`; returns the bytes copied. */
  copyBytes(target: Buffer, at: number): number {
    return this.#source.copy(target, at, this.#start, this.#end);
  }

  /** Where the event is stored; null until it is committed. */
  get position(): Position | null {
    if (this.#position === null && this.#memoryCommit > 0) this.#position = memoryPosition(this.#memoryCommit, this.#memoryIndex);
    return this.#position;
  }

  set position(position: Position | null) {
    this.#position = position;
  }

  /** Committed without a store: the position is built only if someone reads it (a receipt, a dead letter). */
  committedInMemory(commit: number, index: number): void {
    this.#memoryCommit = commit;
    this.#memoryIndex = index;
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
    this.#source = source;
    this.#start = start;
    this.#end = end;
    this.typeKey = typeKey;
    this.partitionKey = partitionKey;
    this.tenantId = tenantId;
  }
}
