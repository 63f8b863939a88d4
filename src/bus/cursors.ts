/**
 * How far each consumer has got. Groups of events (commits, pages read from
 * the log) are tracked in routing order; they finish out of order (lanes run
 * in parallel), so a consumer's watermark is the last position of the
 * longest prefix of groups whose deliveries to it are all finished. A
 * partition's cursor (ownership.ts) is written from it, never per event.
 */
import type { Position } from '../store/store.js';
import type { CommitGroup } from './accepted.js';

export class Cursors {
  readonly #consumers: number;
  readonly #groups: CommitGroup[] = [];
  /** Index in #groups of the first group not finished, per consumer. */
  readonly #heads: Int32Array;
  /** Per consumer: the last position of the finished prefix (null: none yet). */
  readonly #watermarks: Array<Position | null>;
  /** Per consumer: the seq of the last group of the finished prefix. */
  readonly #doneSeq: Float64Array;
  #seq = 0;
  /** Told when consumer c's watermark moves. */
  readonly #moved: (consumer: number) => void;

  constructor(consumers: number, moved: (consumer: number) => void) {
    this.#consumers = consumers;
    this.#heads = new Int32Array(consumers);
    this.#watermarks = new Array<Position | null>(consumers).fill(null);
    this.#doneSeq = new Float64Array(consumers);
    this.#moved = moved;
  }

  /** The seq the next tracked group gets. */
  get nextSeq(): number {
    return this.#seq + 1;
  }

  /** The seq of the last group tracked (0: none). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** A group about to be routed: its deliveries are counted into `left` by the dispatcher. */
  track(group: CommitGroup): void {
    group.seq = ++this.#seq;
    group.left = new Int32Array(this.#consumers);
    this.#groups.push(group);
  }

  /** The group is routed (every delivery counted): consumers with nothing in it may pass it now. */
  routed(group: CommitGroup): void {
    group.routed = true;
    const left = group.left!;
    for (let c = 0; c < this.#consumers; c++) if (left[c] === 0) this.#advance(c);
  }

  /** One delivery of the group to consumer `c` is finished. */
  handled(group: CommitGroup, c: number): void {
    const left = group.left;
    if (left === null) return;
    if (--left[c]! === 0) this.#advance(c);
  }

  /** Consumer `c`'s watermark and the seq of the group it comes from. */
  watermark(c: number): { position: Position | null; seq: number } {
    return { position: this.#watermarks[c]!, seq: this.#doneSeq[c]! };
  }

  /** Moves consumer c's watermark over the finished groups at its head. A poisoned group stops it for good. */
  #advance(c: number): void {
    const groups = this.#groups;
    let head = this.#heads[c]!;
    let moved = false;
    while (head < groups.length) {
      const group = groups[head]!;
      if (group.left === null || group.left[c] !== 0 || group.poisoned || !group.routed) break;
      if (group.lastPosition !== null) this.#watermarks[c] = group.lastPosition;
      this.#doneSeq[c] = group.seq;
      head++;
      moved = true;
    }
    this.#heads[c] = head;
    if (!moved) return;
    this.#trim();
    this.#moved(c);
  }

  #trim(): void {
    let lowest = this.#groups.length;
    for (let c = 0; c < this.#consumers; c++) lowest = Math.min(lowest, this.#heads[c]!);
    if (lowest > 1024 && lowest * 2 > this.#groups.length) {
      this.#groups.splice(0, lowest);
      for (let c = 0; c < this.#consumers; c++) this.#heads[c]! -= lowest;
    }
  }
}
