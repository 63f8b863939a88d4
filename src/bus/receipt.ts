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

/** Marks an item whose emit waits on its batch's receipts (GroupCommit.accept). */
export const EMITTED = Symbol('emitted');

/** Who hears of an accepted event's commit: an emit (through its batch's receipts), an emitMany call, or nobody (post). */
export type Hearer = typeof EMITTED | ManyCall | null;

/**
 * The receipts of one committed batch, each made when first asked for: item i
 * at `stamp ‖ i` (store `none`, or a batch with no duplicate), else at the
 * store's position for it.
 */
export class BatchReceipts {
  readonly #items: readonly { readonly eventId: string }[];
  readonly #result: { readonly positions: readonly Position[]; readonly duplicate: readonly boolean[] } | null;
  readonly #stamp: Buffer | undefined;

  constructor(
    items: readonly { readonly eventId: string }[],
    result: { readonly positions: readonly Position[]; readonly duplicate: readonly boolean[] } | null,
    stamp: Buffer | undefined,
  ) {
    this.#items = items;
    this.#result = result;
    this.#stamp = stamp;
  }

  at(i: number): Receipt {
    const eventId = this.#items[i]!.eventId;
    if (this.#stamp !== undefined) return new StoredReceipt(eventId, null, false, this.#stamp, i);
    return new StoredReceipt(eventId, this.#result!.positions[i]!, this.#result!.duplicate[i] === true);
  }
}

/** One function per batch index, made once and shared by every batch: an emit's `then` allocates no closure. */
const pickers: ((receipts: BatchReceipts) => Receipt)[] = [];

export function receiptPicker(index: number): (receipts: BatchReceipts) => Receipt {
  while (pickers.length <= index) {
    const i = pickers.length;
    pickers.push((receipts) => receipts.at(i));
  }
  return pickers[index]!;
}
