/**
 * Dead letters: deliveries given up after `delivery.maxAttempts`. Saved in the
 * store (in memory with store `none`), listed, and redriven to the consumer
 * that failed, and only to it.
 */
import type { Codec } from '../codec.js';
import { ErrorCodes, StoreCorruptError, type SerializedError } from '../errors.js';
import { eventTypeKey, type Event, type EventType } from '../event/event.js';
import { notAnEvent } from '../event/shape.js';
import type { DeadLetterKey, DeadLetterRecord, EventStore, FencedDeadLetter, ProgressResult } from '../store/store.js';
import { positionToString } from '../store/store.js';

export interface DeadLetter {
  readonly consumer: string;
  /** The event's position in the log (24 hex digits). */
  readonly position: string;
  /** The event; with error code ERR_EVENTRAIL_CORRUPT_BATCH, the stored value a worker found was not one. */
  readonly event: Event;
  readonly error: SerializedError;
  readonly attempts: number;
  /** RFC 3339. */
  readonly failed_at: string;
}

export interface DeadLetterFilter {
  readonly consumer?: string;
  readonly tenantId?: string;
  readonly eventId?: string;
  readonly types?: readonly EventType[];
  /** At most this many. */
  readonly limit?: number;
  /**
   * Called for a stored dead letter that cannot be decoded (code
   * ERR_EVENTRAIL_STORE_CORRUPT), which is then skipped. Default on the bus: a
   * 'warning' notice; without any, the listing rejects with it.
   */
  readonly onCorrupt?: (error: StoreCorruptError) => void;
}

/** Where dead letters live: the store, or this process's memory with store `none`. */
export class DeadLetterBox {
  readonly #store: EventStore | null;
  readonly #memory = new Map<string, DeadLetterRecord>();
  readonly #codec: Codec;

  constructor(store: EventStore | null, codec: Codec) {
    this.#store = store;
    this.#codec = codec;
  }

  /** Saves a dead letter; with a fence, only while `instance` holds that lease (else it comes back in `lost`). */
  put(record: FencedDeadLetter, instance?: string): Promise<ProgressResult> {
    if (this.#store !== null) return this.#store.writeProgress({ instance, deadLetters: [record] });
    this.#memory.set(memoryKey(record), record);
    return Promise.resolve({ lost: [] });
  }

  async remove(key: DeadLetterKey): Promise<void> {
    if (this.#store !== null) {
      await this.#store.writeProgress({ removeDeadLetters: [key] });
      return;
    }
    this.#memory.delete(memoryKey(key));
    return Promise.resolve();
  }

  /**
   * Matching records with their decoded events, in (consumer, position) order.
   * One that cannot be decoded, or whose event cannot, goes to
   * `filter.onCorrupt` and is skipped (without it, the listing rejects).
   */
  async *records(filter: DeadLetterFilter = {}): AsyncGenerator<{ record: DeadLetterRecord; event: Event }> {
    const types = filter.types === undefined ? null : new Set(filter.types.map(eventTypeKey));
    const { onCorrupt } = filter;
    const source: AsyncIterable<DeadLetterRecord> | Iterable<DeadLetterRecord> =
      this.#store !== null
        ? this.#store.readDeadLetters({
            consumer: filter.consumer,
            tenantId: filter.tenantId,
            ...(onCorrupt === undefined ? {} : { onCorrupt }),
          })
        : [...this.#memory.values()].sort((a, b) =>
            a.consumer < b.consumer ? -1 : a.consumer > b.consumer ? 1 : Buffer.compare(a.position, b.position),
          );
    let yielded = 0;
    for await (const record of source) {
      if (filter.limit !== undefined && yielded >= filter.limit) return;
      if (filter.consumer !== undefined && record.consumer !== filter.consumer) continue;
      if (filter.tenantId !== undefined && record.tenantId !== filter.tenantId) continue;
      const decoded = this.#decodeEvent(record);
      if (decoded instanceof StoreCorruptError) {
        if (onCorrupt === undefined) throw decoded;
        onCorrupt(decoded);
        continue;
      }
      const { event, isEvent } = decoded;
      if (filter.eventId !== undefined && event?.event_id !== filter.eventId) continue;
      if (types !== null && !(isEvent && types.has(eventTypeKey(event.event_type)))) continue;
      yielded++;
      yield { record, event };
    }
  }

  /**
   * The record's event, or why its bytes are not one. A worker dead-letters a
   * stored value that is not an event (code ERR_EVENTRAIL_CORRUPT_BATCH): that
   * dead letter is the report of it, so it is listed with the value as stored.
   */
  #decodeEvent(record: DeadLetterRecord): { event: Event; isEvent: boolean } | StoreCorruptError {
    const what = `the event of dead letter ${record.consumer}/${positionToString(record.position)}`;
    let event: Event;
    try {
      event = this.#codec.decode<Event>(record.event);
    } catch (err) {
      return new StoreCorruptError(`${what} cannot be decoded: ${(err as Error)?.message}`, err);
    }
    const problem = notAnEvent(event);
    if (problem === null) return { event, isEvent: true };
    if (record.error.code === ErrorCodes.CORRUPT_BATCH) return { event, isEvent: false };
    return new StoreCorruptError(`${what} is not an event: ${problem}`);
  }

  async list(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for await (const { record, event } of this.records(filter)) {
      out.push({
        consumer: record.consumer,
        position: positionToString(record.position),
        event,
        error: record.error,
        attempts: record.attempts,
        failed_at: record.failedAt,
      });
    }
    return out;
  }
}

function memoryKey(key: DeadLetterKey): string {
  return `${key.consumer}\0${key.position.toString('hex')}`;
}
