/**
 * What an emit hears once its event is durable: the receipt, and who receives
 * it (an emit's promise, an emitMany call's single promise, or nobody for post).
 */
import { positionOf } from '../store/layout/positions.js';
import { positionToString, type Position } from '../store/store.js';

/** What `emit` resolves with once the event is durable. */
export interface Receipt {
  readonly event_id: string;
  /** Where the event is stored: 24 hex digits, ordered like the log. */
  readonly position: string;
  /** True when this event_id was already stored: it was not stored or delivered again. */
  readonly duplicate: boolean;
}

/**
 * A receipt whose position is made and turned into hex only when someone
 * reads it (most callers never do). It holds the position, or the commit's
 * stamp and the index it is made of: never the event itself.
 */
export class StoredReceipt implements Receipt {
  readonly event_id: string;
  readonly duplicate: boolean;
  #position: Position | null;
  readonly #stamp: Buffer | null;
  readonly #index: number;

  constructor(eventId: string, position: Position | null, duplicate: boolean, stamp: Buffer | null = null, index = 0) {
    this.event_id = eventId;
    this.#position = position;
    this.duplicate = duplicate;
    this.#stamp = stamp;
    this.#index = index;
  }

  get position(): string {
    this.#position ??= positionOf(this.#stamp!, this.#index);
    return positionToString(this.#position);
  }

  toJSON(): { event_id: string; position: string; duplicate: boolean } {
    return { event_id: this.event_id, position: this.position, duplicate: this.duplicate };
  }
}

/**
 * One emitMany() call: a single promise for all its events, resolved with the
 * receipts once the last of them is committed. Its events are accepted and
 * committed in call order, so each receipt is appended in place.
 */
export class ManyCall {
  readonly receipts: Receipt[] = [];
  readonly #count: number;
  readonly promise: Promise<Receipt[]>;
  #resolve!: (receipts: Receipt[]) => void;
  #reject!: (err: Error) => void;

  constructor(count: number) {
    this.#count = count;
    this.promise = new Promise<Receipt[]>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  add(receipt: Receipt): void {
    this.receipts.push(receipt);
    if (this.receipts.length === this.#count) this.#resolve(this.receipts);
  }

  /** Only the first failure counts: the promise settles once. */
  fail(err: Error): void {
    this.#reject(err);
  }
}

/** Who hears of an accepted event's commit: an emit's promise, an emitMany call, or nobody (post). */
export type Resolver = ((receipt: Receipt) => void) | ManyCall | null;
export type Rejecter = ((err: Error) => void) | ManyCall | null;

export function receive(to: NonNullable<Resolver>, receipt: Receipt): void {
  if (typeof to === 'function') to(receipt);
  else to.add(receipt);
}
