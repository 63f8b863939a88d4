/**
 * Stored values a command cannot decode. The command reports each on stderr,
 * one line apiece with its coded message, skips it and goes on, so stdout
 * holds only what could be read; the command then exits with SKIPPED_CORRUPT
 * (3) instead of 0, so that a script notices that its output is incomplete.
 */
import type { StoreCorruptError } from '../errors.js';

/** The exit code of a command that printed its results but skipped corrupt stored values. */
export const SKIPPED_CORRUPT = 3;

/** What every command that reads the store says about corrupt data in its --help. */
export const CORRUPT_HELP = `Stored values that cannot be decoded (corrupt data) are skipped, each reported
on stderr as one line with its code (ERR_EVENTRAIL_STORE_CORRUPT); stdout keeps
only what could be read. Exit code: 0 when all was read, 3 when anything was
skipped, 1 when the command failed, 2 for a usage error.
`;

export class CorruptReport {
  readonly #command: string;
  readonly #stderr: NodeJS.WritableStream;
  #skipped = 0;

  constructor(command: string, stderr: NodeJS.WritableStream = process.stderr) {
    this.#command = command;
    this.#stderr = stderr;
  }

  /** The `onCorrupt` handler for store and bus reads. */
  readonly onCorrupt = (error: StoreCorruptError): void => {
    this.#skipped++;
    this.#stderr.write(`eventrail ${this.#command}: skipped ${error.code}: ${error.message}\n`);
  };

  get skipped(): number {
    return this.#skipped;
  }

  /** 0, or SKIPPED_CORRUPT when anything was skipped. */
  get exitCode(): number {
    return this.#skipped === 0 ? 0 : SKIPPED_CORRUPT;
  }
}
