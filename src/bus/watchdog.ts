/**
 * The watchdog: finds batch tasks whose heartbeat stopped and terminates the
 * worker that runs them. A handler stuck in synchronous code (an endless
 * loop) blocks its worker, no timer inside the worker can interrupt it, and
 * only terminating the worker gets it back; piscina then fails every task on
 * that worker and starts a new one. The dispatcher learns from the task's
 * `Watched` entry why the task failed.
 *
 * Tasks are not given an AbortSignal for this: piscina never puts a second
 * task on a worker running an abortable one, which would turn
 * concurrentTasksPerWorker off. The worker is found by the thread id in the
 * heartbeat instead (see BatchTask.progress in protocol.ts).
 */
import type { Piscina } from 'piscina';
import { PROGRESS_BEATS, PROGRESS_CONSUMER, PROGRESS_EVENT, PROGRESS_SEQUENCE, PROGRESS_THREAD } from '../protocol.js';

/** A task in flight, as the watchdog sees it. */
export interface Watched {
  readonly progress: Int32Array;
  beats: number;
  /** When the beat count last changed (or the task was posted). */
  since: number;
  /** Set when the watchdog stopped the task's worker for it: the delivery that was running. */
  stuck: { event: number; consumer: number } | null;
  /** Set when the watchdog stopped a worker this task may be on for another task's sake. */
  bystander: boolean;
}

export class Watchdog {
  readonly #pool: Piscina;
  readonly #watched = new Set<Watched>();
  /** How long a heartbeat may stand still before its task counts as stuck. */
  readonly stallMs: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(pool: Piscina, handlerTimeoutMs: number) {
    this.#pool = pool;
    // An async handler may legitimately wait handlerTimeoutMs before the worker gives up on it, so a
    // task is stuck only when its heartbeat has not moved for clearly longer than that.
    this.stallMs = Math.round(handlerTimeoutMs * 1.5) + 1000;
  }

  /** Starts watching a task's heartbeat; the timer runs only while some task is watched. */
  watch(progress: Int32Array): Watched {
    const entry: Watched = { progress, beats: 0, since: performance.now(), stuck: null, bystander: false };
    this.#watched.add(entry);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#check(), Math.max(50, Math.min(1000, this.stallMs / 4)));
      this.#timer.unref();
    }
    return entry;
  }

  unwatch(entry: Watched): void {
    this.#watched.delete(entry);
    if (this.#watched.size === 0) this.stop();
  }

  /** Stops the timer (the bus is closing, or nothing is in flight). */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #check(): void {
    const now = performance.now();
    /** thread id → its stalled task that beat last: the one running the blocking code. */
    const blocked = new Map<number, Watched>();
    for (const entry of this.#watched) {
      const beats = Atomics.load(entry.progress, PROGRESS_BEATS);
      // A task still queued has not beaten yet; its clock starts when it does.
      if (beats !== entry.beats || beats === 0) {
        entry.beats = beats;
        entry.since = now;
        continue;
      }
      if (now - entry.since < this.stallMs || entry.stuck !== null || entry.bystander) continue;
      const thread = entry.progress[PROGRESS_THREAD]!;
      const other = blocked.get(thread);
      // Sequences wrap at 32 bits: compare by difference.
      if (other === undefined || ((entry.progress[PROGRESS_SEQUENCE]! - other.progress[PROGRESS_SEQUENCE]!) | 0) > 0)
        blocked.set(thread, entry);
    }
    for (const [thread, culprit] of blocked) {
      culprit.stuck = { event: culprit.progress[PROGRESS_EVENT]!, consumer: culprit.progress[PROGRESS_CONSUMER]! };
      // The other tasks running on that worker fail with it: they are run again, with no attempt counted.
      // One that has not beaten yet may be waiting there too: it fails as a crash of a task that was
      // not alone on its worker, which counts no attempt either (see the dispatcher's #crashed).
      for (const entry of this.#watched) {
        if (entry !== culprit && entry.beats !== 0 && entry.progress[PROGRESS_THREAD] === thread) entry.bystander = true;
      }
      const worker = this.#pool.threads.find((w) => w.threadId === thread);
      void worker?.terminate();
    }
  }
}
