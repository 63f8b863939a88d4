/**
 * Group commit: accepted events gather into a batch for at most
 * `dispatch.lingerMs` or `dispatch.maxBatch` events, the batch is appended to
 * the store in one transaction, and the emits of the batch hear of it together
 * once it is durable (or failed).
 */
import { EventrailError, StoreWriteError } from '../errors.js';
import type { AppendResult, EventStore } from '../store/store.js';
import { Accepted, CommitGroup, memoryStamp } from './accepted.js';
import type { BusMetrics } from './metrics.js';
import { commitChannel } from '../trace/channels.js';
import { BatchReceipts, EMITTED, receiptPicker, type Hearer, type ManyCall, type Receipt } from './receipt.js';

/** What group commit needs of the bus (a part of IntakeDeps). */
export interface CommitDeps {
  readonly store: EventStore | null;
  readonly metrics: BusMetrics;
  /** Committed, fresh events in commit order, with their commit group. */
  committed(items: Accepted[], group: CommitGroup): void;
  /** Posted events (no receipt) that a failed commit lost: nobody else hears of it. */
  warn?(message: string, cause?: unknown): void;
}

interface Batch {
  readonly items: Accepted[];
  /** performance.now() when its first event was accepted. */
  readonly acceptedAt: number;
  /** Who hears of each item, in item order. */
  readonly hearers: Hearer[];
  /**
   * The batch's receipts, once it is durable: every emit of the batch returns
   * `receipts.then(picker of its index)`, so an emit waiting for its commit
   * holds no resolving functions of its own. Made by the batch's first emit.
   */
  receipts: Promise<BatchReceipts> | null;
  settle: { resolve(receipts: BatchReceipts): void; reject(err: Error): void } | null;
  timer: NodeJS.Timeout | NodeJS.Immediate | null;
}

/**
 * The batch being gathered and the chain of commits in flight. Counting
 * pending events is the intake's; duplicates and failed events are handed
 * back to it through `release`.
 */
export class GroupCommit {
  readonly #deps: CommitDeps;
  readonly #release: (count: number) => void;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  #batch: Batch | null = null;
  #commitTail: Promise<void> = Promise.resolve();
  /** Appends started whose outcome is not applied yet. */
  #inFlight = 0;
  /** Commit counter for store `none`: positions are made of it (see memoryStamp). */
  #memoryCommit = 0;

  constructor(deps: CommitDeps, maxBatch: number, lingerMs: number, release: (count: number) => void) {
    this.#deps = deps;
    this.#maxBatch = maxBatch;
    this.#lingerMs = lingerMs;
    this.#release = release;
  }

  /** Adds an event to the batch; the promise resolves with its receipt once the batch is durable. */
  accept(prepared: Accepted): Promise<Receipt> {
    const batch = this.#gather(prepared);
    batch.hearers.push(EMITTED);
    const receipts = (batch.receipts ??= new Promise<BatchReceipts>((resolve, reject) => (batch.settle = { resolve, reject })));
    const receipt = receipts.then(receiptPicker(batch.items.length - 1));
    if (batch.items.length >= this.#maxBatch) this.#commit();
    return receipt;
  }

  /** Adds an event for an emitMany call, or for nobody (post): no promise of its own. */
  enqueue(prepared: Accepted, call: ManyCall | null): void {
    const batch = this.#gather(prepared);
    batch.hearers.push(call);
    if (batch.items.length >= this.#maxBatch) this.#commit();
  }

  /** Commits the batch being gathered now, without waiting for the linger time. */
  commitNow(): void {
    if (this.#batch !== null) this.#commit();
  }

  /**
   * Resolves once every append started so far has settled and its outcome is
   * applied (never rejects: a failed append is the emits' to hear of). The
   * store must not be closed before.
   */
  settled(): Promise<void> {
    return this.#commitTail;
  }

  /** Appends started whose outcome is not applied yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  #gather(prepared: Accepted): Batch {
    let batch = this.#batch;
    if (batch === null) {
      batch = this.#batch = { items: [], acceptedAt: performance.now(), hearers: [], receipts: null, settle: null, timer: null };
      batch.timer = this.#lingerMs === 0 ? setImmediate(() => this.#commit()) : setTimeout(() => this.#commit(), this.#lingerMs);
    }
    batch.items.push(prepared);
    return batch;
  }

  #commit(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    if (batch.timer !== null) {
      clearTimeout(batch.timer as NodeJS.Timeout);
      clearImmediate(batch.timer as NodeJS.Immediate);
    }
    const store = this.#deps.store;
    if (store === null) {
      // Nothing to wait for, and nothing stored can settle out of order: the batch goes to the dispatcher now,
      // so a worker starts on it while a synchronous burst of emits is still running (it used to wait for
      // the burst's end, like every later batch, in a microtask).
      this.#committed(batch, ++this.#memoryCommit);
      return;
    }
    const appended = store.append(batch.items);
    this.#inFlight++;
    // Outcomes are applied in commit order, whatever order the store settles in, so lanes see commit order.
    this.#commitTail = this.#commitTail
      .then(() => appended)
      .then(
        (result) => {
          this.#inFlight--;
          this.#committed(batch, result);
        },
        (err: unknown) => {
          this.#inFlight--;
          this.#failed(batch, err);
        },
      );
  }

  /** A batch is durable (the store's result), or committed in memory (store `none`: the commit number). */
  #committed(batch: Batch, result: AppendResult | number): void {
    const fresh: Accepted[] = [];
    const types = new Map<string, number>();
    let duplicates = 0;
    const group = new CommitGroup(batch.acceptedAt);
    // A stamp every item is at (store `none`, or a store batch with no duplicate): positions are made when read.
    const stored = typeof result === 'number' ? null : result;
    const stamp = typeof result === 'number' ? memoryStamp(result) : result.fresh;
    if (stored !== null) group.headBefore = stored.headBefore;
    const items = batch.items;
    const receipts = new BatchReceipts(items, stored, stamp);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const to = batch.hearers[i]!;
      if (to !== null && to !== EMITTED) to.add(receipts.at(i));
      if (stamp !== undefined) item.committedAt(stamp, i);
      else {
        item.position = stored!.positions[i]!;
        if (stored!.duplicate[i] === true) {
          duplicates++;
          continue;
        }
      }
      types.set(item.typeKey, (types.get(item.typeKey) ?? 0) + 1);
      item.group = group;
      fresh.push(item);
    }
    batch.settle?.resolve(receipts);
    // Every event of the log up to the last fresh one is in this group (store `none` has no log).
    if (stored !== null && fresh.length > 0) group.lastPosition = fresh[fresh.length - 1]!.position;
    const { metrics } = this.#deps;
    if (commitChannel.hasSubscribers) {
      commitChannel.publish({ count: items.length, duplicates, durationMs: performance.now() - batch.acceptedAt });
    }
    for (const [type, n] of types) metrics.emitted.inc({ event_type: type }, n);
    if (duplicates > 0) {
      metrics.duplicates.inc(duplicates);
      this.#release(duplicates);
    }
    this.#deps.committed(fresh, group);
  }

  #failed(batch: Batch, err: unknown): void {
    const error = err instanceof EventrailError ? err : new StoreWriteError((err as Error)?.message ?? String(err), err);
    this.#deps.metrics.storeErrors.inc();
    this.#deps.metrics.rejected.inc({ code: error.code }, batch.items.length);
    let unheard = 0;
    for (const to of batch.hearers) {
      if (to === null) unheard++;
      else if (to !== EMITTED) to.fail(error);
    }
    batch.settle?.reject(error);
    if (unheard > 0) this.#deps.warn?.(`${unheard} posted events were not stored: ${error.message}`, error);
    this.#release(batch.items.length);
  }
}
