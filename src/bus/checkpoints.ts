/**
 * How far every consumer has got. Commit groups finish out of order (lanes run
 * in parallel); the checkpoint is the last position of the longest finished
 * prefix of groups, written every `checkpoint.intervalMs`, never per event.
 * After a crash the bus re-dispatches what lies past it: at least once.
 */
import type { EventStore, Position } from '../store/store.js';
import type { CommitGroup } from './accepted.js';

/** The bus-wide checkpoint, beside one per consumer name. */
export const BUS_CHECKPOINT = '$bus';

/** Checkpoints are kept per instance (`checkpoint.instance`): `instance/name`. */
export const checkpointName = (instance: string, name: string) => `${instance}/${name}`;

export class Checkpoints {
  readonly #store: EventStore;
  readonly #names: readonly string[];
  readonly #groups: CommitGroup[] = [];
  #head = 0;
  #watermark: Position | null = null;
  #written: Position | null = null;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #warn: (message: string, cause?: unknown) => void;

  constructor(
    store: EventStore,
    instance: string,
    consumerNames: readonly string[],
    intervalMs: number,
    warn: (message: string, cause?: unknown) => void,
  ) {
    this.#store = store;
    this.#names = [BUS_CHECKPOINT, ...consumerNames].map((name) => checkpointName(instance, name));
    this.#warn = warn;
    if (intervalMs > 0) {
      this.#timer = setInterval(() => void this.write(), intervalMs);
      this.#timer.unref();
    }
  }

  /** Groups are tracked in commit order. */
  track(group: CommitGroup): void {
    this.#groups.push(group);
  }

  /** A group finished: move the watermark over every finished group at the front. */
  advance(): void {
    const groups = this.#groups;
    while (this.#head < groups.length) {
      const group = groups[this.#head]!;
      if (group.remaining > 0 || group.poisoned) break;
      if (group.lastPosition !== null) this.#watermark = group.lastPosition;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > groups.length) {
      groups.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#timer === null && !this.#stopped) void this.write();
  }

  /** Writes the watermark if it moved; one write at a time. */
  write(): Promise<void> {
    if (this.#stopped) return this.#writing;
    this.#writing = this.#writing.then(async () => {
      const watermark = this.#watermark;
      if (watermark === null || watermark === this.#written) return;
      try {
        await this.#store.writeProgress({ checkpoints: new Map(this.#names.map((n) => [n, watermark])) });
        this.#written = watermark;
      } catch (err) {
        this.#warn('could not write the checkpoint; events past the last one will be delivered again after a restart', err);
      }
    });
    return this.#writing;
  }

  /**
   * Stops for good without writing (the bus failed to start, so what was
   * recovered was not handled): the checkpoint stays where it was.
   */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.write();
  }
}

/**
 * Where recovery starts for this instance: after its lowest checkpoint, or
 * from the beginning when it never wrote one (undefined).
 */
export function recoveryStart(
  checkpoints: ReadonlyMap<string, Position>,
  instance: string,
  consumerNames: readonly string[],
): Position | undefined {
  const bus = checkpoints.get(checkpointName(instance, BUS_CHECKPOINT));
  if (bus === undefined) return undefined;
  let lowest = bus;
  for (const name of consumerNames) {
    const cp = checkpoints.get(checkpointName(instance, name));
    if (cp !== undefined && Buffer.compare(cp, lowest) < 0) lowest = cp;
  }
  return lowest;
}
