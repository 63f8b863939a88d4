/** Temporary folders for the stores the bench fills; every one is removed when the run ends. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class TempFolders {
  readonly #made: string[] = [];

  /** A new empty folder. */
  make(label: string): string {
    const path = mkdtempSync(join(tmpdir(), `eventrail-bench-${label}-`));
    this.#made.push(path);
    return path;
  }

  remove(path: string): void {
    rmSync(path, { recursive: true, force: true });
  }

  /** Removes every folder made (BENCH_KEEP=1 keeps them, to look at a store afterwards). */
  removeAll(): void {
    if (process.env.BENCH_KEEP === '1') return;
    for (const path of this.#made.splice(0)) this.remove(path);
  }
}
