/**
 * Writing to stdout: lines wait for the pipe to drain (a replay of millions of
 * events must not pile up in memory), and a reader that goes away (`| head`)
 * ends the command quietly.
 */
export class Output {
  readonly #stream: NodeJS.WritableStream;
  #closed = false;

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.#stream = stream;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.#closed = true;
      else throw err;
    });
  }

  /** False once the reader has gone: stop producing. */
  get open(): boolean {
    return !this.#closed;
  }

  async write(text: string): Promise<void> {
    if (this.#closed) return;
    if (!this.#stream.write(text)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#stream.off('drain', done);
          this.#stream.off('close', done);
          resolve();
        };
        this.#stream.on('drain', done);
        this.#stream.on('close', done);
      });
    }
  }

  line(text: string): Promise<void> {
    return this.write(`${text}\n`);
  }

  /** Resolves once everything written has been handed to the OS. */
  end(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#stream.write('', () => resolve()));
  }
}
