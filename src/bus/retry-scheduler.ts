/**
 * Retries of failed deliveries, after an exponential backoff with jitter.
 * Deliveries that failed together at the same attempt wait on one timer and
 * run again as one group. On close the scheduler drains: waiting retries run
 * at once, and later failures are retried without waiting.
 */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

interface ScheduledRetry<T> {
  readonly deliveries: readonly T[];
  timer: NodeJS.Timeout;
}

export class RetryScheduler<T> {
  readonly #backoff: Backoff;
  readonly #run: (deliveries: readonly T[]) => void;
  readonly #scheduled = new Set<ScheduledRetry<T>>();
  #draining = false;
  #cancelled = false;

  /** `run` dispatches deliveries whose wait is over. */
  constructor(backoff: Backoff, run: (deliveries: readonly T[]) => void) {
    this.#backoff = backoff;
    this.#run = run;
  }

  /** Runs `deliveries` again after the backoff of the attempt that failed (1 for the first). */
  schedule(deliveries: readonly T[], failedAttempt: number): void {
    if (this.#cancelled) return;
    if (this.#draining) {
      this.#run(deliveries);
      return;
    }
    const retry: ScheduledRetry<T> = {
      deliveries,
      timer: setTimeout(() => {
        this.#scheduled.delete(retry);
        this.#run(deliveries);
      }, this.delay(failedAttempt)),
    };
    this.#scheduled.add(retry);
  }

  /** On close: runs every scheduled retry now, and every later one without waiting out its backoff. */
  drain(): void {
    this.#draining = true;
    for (const retry of [...this.#scheduled]) {
      clearTimeout(retry.timer);
      this.#scheduled.delete(retry);
      this.#run(retry.deliveries);
    }
  }

  /** The bus gave up on its deliveries: scheduled retries are dropped, later ones refused. */
  cancel(): void {
    this.#draining = false;
    this.#cancelled = true;
    for (const retry of this.#scheduled) clearTimeout(retry.timer);
    this.#scheduled.clear();
  }

  /** Exponential backoff with equal jitter: half the delay fixed, half random. */
  delay(failedAttempt: number): number {
    const { initialMs, maxMs } = this.#backoff;
    const base = Math.min(maxMs, initialMs * 2 ** (failedAttempt - 1));
    return base / 2 + Math.random() * (base / 2);
  }
}
