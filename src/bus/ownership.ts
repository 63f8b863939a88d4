/**
 * This instance's leases on the shared log: which (group, partition) it
 * delivers, from where, and the cursors it writes for them. A round
 * (`store.coordinate`, one transaction) renews the membership and the leases
 * held, takes the free ones the assignment gives this instance, and hands over
 * the ones it gives another, once their deliveries are finished. Every cursor
 * and dead-letter write carries the lease's epoch, so a paused instance whose
 * lease was taken over writes nothing (the store checks in the same
 * transaction); it learns of the loss from the write or from its next round.
 *
 * A group is a consumer's name; consumer index c is group c.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CoordinateResult, CursorWrite, EventStore, Fence, GroupPartition, GroupSpec, Position, Release } from '../store/store.js';
import { comparePositions } from '../store/store.js';
import type { Cursors } from './cursors.js';

/** Default instance ids are `host-pid-random` (engine.ts): a member of this host whose process no longer exists is gone. */
const THIS_HOST =
  hostname()
    .replace(/[^A-Za-z0-9_.:-]/g, '_')
    .slice(0, 64) || 'host';
const LOCAL_ID = /^(.*)-([0-9]+)-[0-9a-f]{8}$/;

export function defaultInstanceId(): string {
  return `${THIS_HOST}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function goneFromThisHost(member: string): boolean {
  const match = LOCAL_ID.exec(member);
  if (match === null || match[1] !== THIS_HOST) return false;
  try {
    process.kill(Number(match[2]), 0);
    return false;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** One lease held: (consumer c, partition p). */
export interface Lease {
  readonly consumer: number;
  readonly partition: number;
  readonly epoch: number;
  expiresAt: number;
  /** The cursor when the lease was taken: the previous owner handled everything up to it. */
  readonly base: Position | null;
  /** The last cursor this instance wrote (or base). */
  written: Position | null;
  /**
   * The highest position the lease's cursor may take so far: the best of the
   * consumer's watermarks seen. A watermark goes down for a while after the
   * log is read again from an older cursor (leases gained), while what it
   * said before stays true, so the best is kept.
   */
  best: Position | null;
  /** Events at or before this were routed already (or handled before the lease was taken): not routed again. */
  skipThrough: Position | null;
  /** The watermark speaks for this partition only from groups tracked since the lease was taken. */
  readonly validFromSeq: number;
  /** Being handed over: nothing more is routed; released once every group up to this seq is finished. -1: kept. */
  handOverAfterSeq: number;
  /**
   * While handed over: everything of the partition up to here was routed (the
   * frontier when the first page after the hand-over began); later pages skip
   * it, so its cursor never goes past this. undefined: no such page yet.
   */
  handOverThrough?: Position | null;
}

export interface OwnershipDeps {
  readonly store: EventStore;
  readonly instance: string;
  readonly groups: readonly GroupSpec[];
  readonly partitions: number;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly cursors: Cursors;
  /** Leases taken: delivery of their partitions resumes after their cursors. */
  gained(leases: readonly Lease[]): void;
  /** Leases lost (taken over, lapsed) or released: nothing more of them is routed. */
  lost(leases: readonly Lease[]): void;
  warn(message: string, cause?: unknown): void;
}

export class Ownership {
  readonly #deps: OwnershipDeps;
  readonly #byName: Map<string, number>;
  /** leases[c][p], or null when not held. */
  #leases: Array<Array<Lease | null>> = [];
  #partitions = 0;
  #held = 0;
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<void> = Promise.resolve();
  #writing: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Leaving after a failed start: leases go back with the cursors as stored. */
  #keepCursors = false;
  /** Members found gone by the last round (see goneFromThisHost). */
  #gone = new Set<string>();

  constructor(deps: OwnershipDeps) {
    this.#deps = deps;
    this.#byName = new Map(deps.groups.map((g, i) => [g.name, i]));
  }

  /** The store's partition count (known after the first round). */
  get partitions(): number {
    return this.#partitions;
  }

  /** Holds every (group, partition) and hands none over: what this instance accepts is all it needs to deliver. */
  get holdsAll(): boolean {
    if (this.#held !== this.#deps.groups.length * this.#partitions) return false;
    for (const row of this.#leases) for (const lease of row) if (lease === null || lease.handOverAfterSeq >= 0) return false;
    return true;
  }

  get holdsAny(): boolean {
    return this.#held > 0;
  }

  lease(consumer: number, partition: number): Lease | null {
    return this.#leases[consumer]?.[partition] ?? null;
  }

  /** Every lease held. */
  *leases(): Generator<Lease> {
    for (const row of this.#leases) for (const lease of row) if (lease !== null) yield lease;
  }

  /** The fence a dead letter of consumer c's delivery of an event in partition p is written under; null: not held. */
  fence(consumer: number, partition: number): Fence | null {
    const lease = this.lease(consumer, partition);
    return lease === null ? null : { partition, epoch: lease.epoch };
  }

  /** The first round, then one every renewMs. */
  async start(): Promise<void> {
    await this.round();
    this.#timer = setInterval(() => void this.round(), this.#deps.renewMs);
    this.#timer.unref();
  }

  /** One round; rounds never overlap. Never rejects: a failed round is a warning, and leases that lapse meanwhile are dropped. */
  round(leaving = false): Promise<void> {
    this.#round = this.#round.then(() => this.#run(leaving));
    return this.#round;
  }

  /**
   * Leaves: no more rounds; every lease is released with its final cursor and
   * the membership removed, so others take over at once instead of after
   * leaseMs. With `keepCursors`, the cursors stay as stored (the bus failed
   * to start: what it routed was not handled).
   */
  async leave(keepCursors = false): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (!keepCursors) await this.writeCursors();
    for (const lease of this.leases()) lease.handOverAfterSeq = 0;
    this.#keepCursors = keepCursors;
    await this.round(true);
    this.#stopped = true;
  }

  /** Writes the cursors that moved; one write at a time. Never rejects. */
  writeCursors(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (this.#stopped) return;
      const writes: CursorWrite[] = [];
      const pending: Array<{ lease: Lease; position: Position }> = [];
      for (const lease of this.leases()) {
        const position = this.#cursorOf(lease);
        if (position === null) continue;
        writes.push({ group: this.#deps.groups[lease.consumer]!.name, partition: lease.partition, epoch: lease.epoch, position });
        pending.push({ lease, position });
      }
      if (writes.length === 0) return;
      try {
        const { lost } = await this.#deps.store.writeProgress({ instance: this.#deps.instance, cursors: writes });
        for (const { lease, position } of pending) if (this.lease(lease.consumer, lease.partition) === lease) lease.written = position;
        if (lost.length > 0) this.#drop(lost, 'its cursor write was refused');
      } catch (err) {
        this.#deps.warn('could not write the cursors; events past them will be delivered again after a takeover or restart', err);
      }
    });
    return this.#writing;
  }

  /** Consumer c's watermark moved: each of its leases keeps the best it has seen. */
  observe(consumer: number): void {
    for (const lease of this.leases()) if (lease.consumer === consumer) this.#observe(lease);
  }

  #observe(lease: Lease): void {
    const mark = this.#deps.cursors.watermark(lease.consumer);
    let position = mark.position;
    if (position === null || mark.seq < lease.validFromSeq) return;
    const through = lease.handOverThrough;
    if (through !== undefined && (through === null || comparePositions(through, position) < 0)) position = through;
    if (position !== null && (lease.best === null || comparePositions(position, lease.best) > 0)) lease.best = position;
  }

  /** Where lease's cursor can go now, if past what was written; else null. */
  #cursorOf(lease: Lease): Position | null {
    this.#observe(lease);
    const best = lease.best;
    if (best === null || (lease.written !== null && comparePositions(best, lease.written) <= 0)) return null;
    return best;
  }

  async #run(leaving: boolean): Promise<void> {
    if (this.#stopped) return;
    const { store, instance, groups, leaseMs } = this.#deps;
    const release: Release[] = [];
    const releasing: Lease[] = [];
    for (const lease of this.leases()) {
      if (lease.handOverAfterSeq < 0) continue;
      const { seq } = this.#deps.cursors.watermark(lease.consumer);
      if (!leaving && seq < lease.handOverAfterSeq) continue;
      const cursor = this.#keepCursors ? null : (this.#cursorOf(lease) ?? null);
      release.push({ group: groups[lease.consumer]!.name, partition: lease.partition, epoch: lease.epoch, cursor });
      releasing.push(lease);
    }
    const now = Date.now();
    let result: CoordinateResult;
    try {
      const lapsed = [...this.#gone];
      result = await store.coordinate({ instance, groups, partitions: this.#deps.partitions, leaseMs, now, release, leaving, lapsed });
    } catch (err) {
      this.#deps.warn('could not renew the leases on the shared log', err);
      // What lapsed meanwhile may be another instance's by now: stop delivering it.
      const lapsed = [...this.leases()].filter((l) => l.expiresAt <= Date.now());
      if (lapsed.length > 0) this.#remove(lapsed);
      return;
    }
    this.#apply(result, releasing);
    // A member that is a process of this host and no longer exists (killed, crashed) is gone: a round
    // right away takes its leases instead of waiting for them to lapse, so a restart after a crash
    // resumes delivery before createBus resolves.
    const gone = result.members.filter((m) => m !== instance && goneFromThisHost(m));
    const fresh = gone.filter((m) => !this.#gone.has(m));
    this.#gone = new Set(gone);
    if (fresh.length > 0) await this.#run(false);
  }

  #apply(result: CoordinateResult, released: readonly Lease[]): void {
    if (this.#partitions === 0) {
      this.#partitions = result.partitions;
      this.#leases = this.#deps.groups.map(() => new Array<Lease | null>(result.partitions).fill(null));
    }
    const seen = new Set<Lease>();
    const gained: Lease[] = [];
    for (const held of result.held) {
      const c = this.#byName.get(held.group);
      if (c === undefined || held.partition >= this.#partitions) continue;
      const current = this.#leases[c]![held.partition]!;
      if (current !== null && current.epoch === held.epoch) {
        current.expiresAt = held.expiresAt;
        seen.add(current);
        continue;
      }
      const lease: Lease = {
        consumer: c,
        partition: held.partition,
        epoch: held.epoch,
        expiresAt: held.expiresAt,
        base: held.cursor,
        written: held.cursor,
        best: held.cursor,
        skipThrough: held.cursor,
        validFromSeq: this.#deps.cursors.nextSeq,
        handOverAfterSeq: -1,
      };
      if (current !== null) this.#remove([current]);
      this.#leases[c]![held.partition] = lease;
      this.#held++;
      seen.add(lease);
      gained.push(lease);
    }
    const gone = [...this.leases()].filter((l) => !seen.has(l));
    const unexpected = gone.filter((l) => !released.includes(l));
    if (unexpected.length > 0) {
      this.#deps.warn(
        `lost ${unexpected.length} lease(s) on the shared log (taken over after lapsing): their events are delivered by another instance`,
      );
    }
    if (gone.length > 0) this.#remove(gone);
    for (const handOver of result.handOver) {
      const c = this.#byName.get(handOver.group);
      const lease = c === undefined ? null : this.lease(c, handOver.partition);
      if (lease !== null && lease.handOverAfterSeq < 0) lease.handOverAfterSeq = this.#deps.cursors.lastSeq;
    }
    if (gained.length > 0) this.#deps.gained(gained);
  }

  /** Leases a write found lost: dropped now. */
  #drop(lost: readonly GroupPartition[], why: string): void {
    const leases: Lease[] = [];
    for (const { group, partition } of lost) {
      const c = this.#byName.get(group);
      const lease = c === undefined ? null : this.lease(c, partition);
      if (lease !== null) leases.push(lease);
    }
    if (leases.length === 0) return;
    this.#deps.warn(`lost ${leases.length} lease(s) on the shared log (${why}): another instance took them over`);
    this.#remove(leases);
  }

  /** A dead letter of consumer c in partition p was refused by its fence. */
  fenced(consumer: number, partition: number): void {
    const lease = this.lease(consumer, partition);
    if (lease === null) return;
    this.#deps.warn(`lost a lease on the shared log (a dead letter write was refused): another instance took it over`);
    this.#remove([lease]);
  }

  #remove(leases: readonly Lease[]): void {
    for (const lease of leases) {
      if (this.#leases[lease.consumer]![lease.partition] !== lease) continue;
      this.#leases[lease.consumer]![lease.partition] = null;
      this.#held--;
    }
    this.#deps.lost(leases);
  }
}
