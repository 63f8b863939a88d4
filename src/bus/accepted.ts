/**
 * One accepted event on the main thread, from the moment `emit` accepts it
 * until every consumer has handled it (or it was dead-lettered).
 */
import type { AppendItem, Position } from '../store/store.js';

/** Events stored in one commit: the checkpoint advances a whole group at a time. */
export class CommitGroup {
  remaining: number;
  lastPosition: Position | null = null;
  /** Something of the group could not be saved (a dead letter): the checkpoint must never pass it in this process. */
  poisoned = false;

  constructor(size: number) {
    this.remaining = size;
  }
}

/** It is also what the store appends, so a batch goes to the store without a copy per event. */
export class Accepted implements AppendItem {
  readonly eventId: string;
  readonly bytes: Buffer;
  readonly typeKey: string;
  readonly partitionKey: string | null;
  readonly tenantId: string | null;
  /** performance.now() at emit, for the emit-to-handled histogram. */
  readonly acceptedAt: number;
  checkDuplicate = false;
  timestampMs = 0;
  audit: Buffer | null = null;
  position: Position | null = null;
  /** Deliveries not yet finished (handled, or dead letter saved). */
  outstanding = 0;
  group: CommitGroup | null = null;
  /** A dead letter of this event could not be saved: see CommitGroup.poisoned. */
  poisoned = false;

  constructor(eventId: string, bytes: Buffer, typeKey: string, partitionKey: string | null, tenantId: string | null, acceptedAt: number) {
    this.eventId = eventId;
    this.bytes = bytes;
    this.typeKey = typeKey;
    this.partitionKey = partitionKey;
    this.tenantId = tenantId;
    this.acceptedAt = acceptedAt;
  }
}
