/**
 * Delivery follows the shared log. The tailer reads the log after its
 * frontier, in position order, and routes each event to the consumers whose
 * (group, partition) lease this instance holds; everything up to the frontier
 * is routed (or someone else's). Reading the log, not this process's own
 * commits, is what makes a commit that lands out of order, a batch split over
 * transactions or another instance's event impossible to skip.
 *
 * The fast path: while this instance holds every lease and nobody else
 * appends (lmdb tells, in each append, what the head was before it), what it
 * accepts is routed from memory with no read back ("memory" mode). Any sign
 * of another writer (a gap before an own commit, the head moving while no own
 * append is in flight) or any change of leases returns to reading the log.
 * FoundationDB does not say what the head was before a commit, so there it is
 * always read.
 */
import type { Codec } from '../codec.js';
import type { StoreCorruptError } from '../errors.js';
import { commitEnd, comparePositions, decodeStored, type EventStore, type Position } from '../store/store.js';
import { type Accepted, CommitGroup } from './accepted.js';
import type { Cursors } from './cursors.js';
import type { Dispatcher } from './dispatcher.js';
import type { Intake } from './intake.js';
import type { Lease, Ownership } from './ownership.js';
import { partitionOf } from './partitions.js';

export interface TailerDeps {
  readonly store: EventStore;
  readonly codec: Codec;
  readonly intake: Intake;
  readonly dispatcher: Dispatcher;
  readonly cursors: Cursors;
  readonly ownership: Ownership;
  readonly pageSize: number;
  readonly pollMs: number;
  reportCorrupt(error: StoreCorruptError): void;
  warn(message: string, cause?: unknown): void;
}

/** No rewind asked for. */
const NONE = Symbol('none');

export class Tailer {
  readonly #deps: TailerDeps;
  /** Every event up to here is routed or not this instance's (null: the start of the log). */
  #frontier: Position | null = null;
  /** Where the next page starts after leases were gained: the lowest of their cursors. */
  #rewindTo: Position | null | typeof NONE = NONE;
  /** False while nothing is held: the next leases taken set the frontier to their lowest cursor. */
  #anchored = false;
  #memory = false;
  /** An own commit arrived while reading: read again before trusting that the log is read to its end. */
  #dirty = false;
  #stopped = false;
  #wake: AbortController = new AbortController();
  #loop: Promise<void> | null = null;
  #poll: NodeJS.Timeout | null = null;
  #polling = false;
  /** Resolves waiters of reached(). */
  #reachedWaiters: Array<{ head: Position; resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(deps: TailerDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#loop = this.#run();
    this.#poll = setInterval(() => void this.#lookForOthers(), this.#deps.pollMs);
    this.#poll.unref();
  }

  /**
   * Stops reading: no page starts after this, and the one being read stops
   * at its next event (it may be waiting for room in the intake: see
   * finished()). What was routed is still handled.
   */
  stop(): void {
    this.#stopped = true;
    if (this.#poll !== null) clearInterval(this.#poll);
    this.#wake.abort();
    for (const waiter of this.#reachedWaiters.splice(0)) waiter.resolve();
  }

  /** Resolves once the last page is routed (after stop(), and once the intake has room or is closed). */
  async finished(): Promise<void> {
    await this.#loop;
  }

  /**
   * Resolves once everything up to `head` is routed (recovery at start is
   * bounded by the head read then, a flush by the head read at its call);
   * rejects if a read of the log fails meanwhile. A failed read nobody waits
   * on is a warning; either way the read is tried again.
   */
  reached(head: Position | null): Promise<void> {
    if (head === null || this.#stopped || !this.#deps.ownership.holdsAny || this.#isReached(head)) return Promise.resolve();
    return new Promise((resolve, reject) => this.#reachedWaiters.push({ head, resolve, reject }));
  }

  /** Leases taken: read their partitions again from their cursors. */
  gained(leases: readonly Lease[]): void {
    let lowest = this.#rewindTo;
    for (const lease of leases) lowest = lowerOf(lowest, lease.base);
    this.#rewindTo = lowest;
    this.#memory = false;
    this.#nudge();
  }

  /** Leases lost or released: nothing more of them is routed (the filter reads the leases), and the fast path ends. */
  lost(): void {
    this.#memory = false;
    if (!this.#deps.ownership.holdsAny) this.#anchored = false;
  }

  /**
   * This instance's own commit. Routed from memory on the fast path; else the
   * events are stored and the log read will route them (their room in the
   * intake is given back now: they are durable, and another instance may be
   * the one to deliver them).
   */
  committed(items: Accepted[], group: CommitGroup): void {
    if (items.length === 0) return;
    if (this.#memory && group.headBefore !== undefined && samePosition(group.headBefore, this.#frontier) && this.#deps.ownership.holdsAll) {
      const { cursors, dispatcher } = this.#deps;
      cursors.track(group);
      dispatcher.route(items);
      cursors.routed(group);
      this.#frontier = commitEnd(group.lastPosition!);
      this.#settleReached();
      return;
    }
    this.#deps.intake.release(items.length);
    if (this.#memory && this.#frontier !== null && comparePositions(group.lastPosition!, this.#frontier) <= 0) return;
    this.#memory = false;
    this.#dirty = true;
    this.#nudge();
  }

  #nudge(): void {
    this.#wake.abort();
  }

  async #run(): Promise<void> {
    const { store, ownership } = this.#deps;
    while (!this.#stopped) {
      this.#applyRewind();
      if (this.#memory || !ownership.holdsAny) {
        await this.#sleep(null);
        continue;
      }
      this.#dirty = false;
      let read: number;
      try {
        read = await this.#page();
      } catch (err) {
        if (this.#stopped) return;
        // Those waiting (a start, a flush) hear of it; the loop goes on trying.
        const waiting = this.#reachedWaiters.splice(0);
        for (const waiter of waiting) waiter.reject(err);
        if (waiting.length === 0) this.#deps.warn('could not read the shared log; trying again', err);
        await this.#sleep(this.#deps.pollMs * 10);
        continue;
      }
      if (read > 0) continue;
      // The log is read to its end: nothing exists after the frontier in its commit.
      if (this.#frontier !== null) this.#frontier = commitEnd(this.#frontier);
      this.#settleReached();
      if (this.#dirty || this.#rewindTo !== NONE) continue;
      if (store.kind === 'lmdb' && ownership.holdsAll) {
        this.#memory = true;
        continue;
      }
      const wake = this.#freshWake();
      await store.waitForAppend(this.#frontier, wake.signal);
    }
  }

  /** Reads and routes one page; resolves with how many events it read (0: the log is read to its end). */
  async #page(): Promise<number> {
    const { store, codec, intake, dispatcher, cursors, ownership, pageSize } = this.#deps;
    const group = new CommitGroup(performance.now());
    cursors.track(group);
    // Leases being handed over are skipped from this page on: their cursors stop where they were routed to.
    for (const lease of ownership.leases()) {
      if (lease.handOverAfterSeq >= 0 && lease.handOverThrough === undefined && group.seq > lease.handOverAfterSeq) {
        // Routed up to the frontier, or further before the log was read again from an older cursor.
        lease.handOverThrough = higherOf(this.#frontier, lease.skipThrough);
      }
    }
    const items: Accepted[] = [];
    const partitions = ownership.partitions;
    let read = 0;
    let last: Position | null = null;
    const pages = store.readEvents({ after: this.#frontier ?? undefined, pageSize })[Symbol.asyncIterator]();
    try {
      while (read < pageSize && !this.#stopped) {
        const next = await pages.next();
        if (next.done === true) break;
        const stored = next.value;
        read++;
        // A block that cannot be read is skipped whole: its report stands for every event in it.
        last = stored.corrupt === undefined ? stored.position : commitEnd(stored.position);
        const event = decodeStored(codec, stored, (e) => this.#deps.reportCorrupt(e));
        if (event === null) continue;
        const item = intake.restore(stored.bytes, stored.position, event);
        item.partition = partitionOf(item.partitionKey, item.eventId, partitions);
        const only = this.#targets(item, group.seq);
        if (only !== null && only.length === 0) continue;
        item.only = only;
        item.group = group;
        await intake.admitRestored(1);
        items.push(item);
      }
    } finally {
      await pages.return?.(undefined);
      group.lastPosition = last;
      if (last !== null) this.#frontier = last;
      dispatcher.route(items);
      cursors.routed(group);
    }
    return read;
  }

  /**
   * The consumers an event read from the log goes to: those whose lease of
   * its partition this instance holds, not handed over before this page
   * began, taken before it began, and whose cursor the event is past. null:
   * all subscribed.
   */
  #targets(item: Accepted, seq: number): readonly number[] | null {
    const subscribed = this.#deps.dispatcher.consumersFor(item.typeKey);
    let only: number[] | null = null;
    for (let k = 0; k < subscribed.length; k++) {
      const c = subscribed[k]!;
      const lease = this.#deps.ownership.lease(c, item.partition);
      const wanted =
        lease !== null &&
        (lease.handOverAfterSeq < 0 || seq <= lease.handOverAfterSeq) &&
        lease.validFromSeq <= seq &&
        (lease.skipThrough === null || comparePositions(item.position!, lease.skipThrough) > 0);
      if (wanted) {
        if (only !== null) only.push(c);
      } else if (only === null) {
        only = subscribed.slice(0, k) as number[];
      }
    }
    return only;
  }

  /** Leases were gained: those held before skip what is routed already, and reading goes back to the lowest new cursor. */
  #applyRewind(): void {
    const to = this.#rewindTo;
    if (to === NONE) return;
    this.#rewindTo = NONE;
    const frontier = this.#frontier;
    const { nextSeq } = this.#deps.cursors;
    for (const lease of this.#deps.ownership.leases()) {
      if (lease.validFromSeq >= nextSeq) continue; // taken since the last page: starts at its own cursor
      if (frontier !== null && (lease.skipThrough === null || comparePositions(frontier, lease.skipThrough) > 0))
        lease.skipThrough = frontier;
    }
    if (!this.#anchored || lowerOf(frontier, to) === to) this.#frontier = to;
    this.#anchored = true;
  }

  #freshWake(): AbortController {
    if (this.#wake.signal.aborted) this.#wake = new AbortController();
    return this.#wake;
  }

  /** Waits to be nudged, or `ms` (null: only a nudge). */
  async #sleep(ms: number | null): Promise<void> {
    const wake = this.#freshWake();
    if (this.#stopped || this.#rewindTo !== NONE) return;
    await new Promise<void>((resolve) => {
      const timer = ms === null ? null : setTimeout(resolve, ms);
      wake.signal.addEventListener(
        'abort',
        () => {
          if (timer !== null) clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }

  /**
   * On the fast path nobody else's appends arrive with our own: when no own
   * append is in flight and the head is past the frontier anyway, another
   * instance appended, and the log is read again.
   */
  async #lookForOthers(): Promise<void> {
    if (!this.#memory || this.#polling || this.#deps.intake.appendsInFlight > 0) return;
    this.#polling = true;
    try {
      const frontier = this.#frontier;
      const head = await this.#deps.store.head();
      if (!this.#memory || frontier !== this.#frontier || this.#deps.intake.appendsInFlight > 0) return;
      if (head !== null && (frontier === null || comparePositions(head, frontier) > 0)) {
        this.#memory = false;
        this.#nudge();
      }
    } catch (err) {
      this.#deps.warn('could not read the head of the shared log', err);
    } finally {
      this.#polling = false;
    }
  }

  #isReached(head: Position): boolean {
    return this.#frontier !== null && comparePositions(this.#frontier, head) >= 0;
  }

  #settleReached(): void {
    if (this.#reachedWaiters.length === 0) return;
    this.#reachedWaiters = this.#reachedWaiters.filter((w) => {
      if (!this.#isReached(w.head)) return true;
      w.resolve();
      return false;
    });
  }
}

/** The lower of two starting points (null: the start of the log; NONE: no point yet). */
function lowerOf(a: Position | null | typeof NONE, b: Position | null): Position | null {
  if (a === NONE) return b;
  if (a === null || b === null) return null;
  return comparePositions(b, a) < 0 ? b : a;
}

/** The higher of two positions (null: the start of the log). */
function higherOf(a: Position | null, b: Position | null): Position | null {
  if (a === null) return b;
  if (b === null) return a;
  return comparePositions(a, b) >= 0 ? a : b;
}

function samePosition(a: Position | null, b: Position | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}
