/**
 * Progress on stderr while the bench runs: which step of how many, the time
 * so far, and each result as it lands. stdout is left to the result alone.
 */
export type Write = (text: string) => void;

export class Progress {
  readonly #write: Write;
  readonly #started = performance.now();
  #total = 0;
  #step = 0;

  /** `stepsBefore`: steps already taken by another process of the same run (the bench's suites run in children). */
  constructor(write: Write = (text) => void process.stderr.write(text), stepsBefore = 0) {
    this.#write = write;
    this.#step = stepsBefore;
  }

  get total(): number {
    return this.#total;
  }

  set total(steps: number) {
    this.#total = steps;
  }

  /** A new step starts. */
  step(label: string): void {
    this.#step++;
    const width = String(this.#total).length;
    this.#write(`[${String(this.#step).padStart(width)}/${this.#total} ${this.#elapsed()}] ${label}\n`);
  }

  /** Counts a step taken elsewhere (by a child process of the same run). */
  skip(): void {
    this.#step++;
  }

  /** Something about the current step (a result, how far a long phase is). */
  note(text: string): void {
    this.#write(`    ${text}\n`);
  }

  /** A line outside the steps. */
  line(text: string): void {
    this.#write(`${text}\n`);
  }

  #elapsed(): string {
    return `${((performance.now() - this.#started) / 1000).toFixed(1).padStart(5)}s`;
  }
}
