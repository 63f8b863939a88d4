/** Shared test helpers: temporary folders, fixture paths, reading what consumers recorded. */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Delivered } from './fixtures/record.js';

export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
}

export interface TempDir {
  readonly path: string;
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix = 'eventrail-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A recorder output file, set as RECORDER_OUT for the consumers in the workers. */
export function recorder(dir: TempDir): { readonly path: string; read(): Delivered[] } {
  const path = dir.file(`deliveries-${Math.random().toString(36).slice(2)}.jsonl`);
  process.env.RECORDER_OUT = path;
  return {
    path,
    read: () =>
      existsSync(path)
        ? readFileSync(path, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Delivered)
        : [],
  };
}

export const uuid = () => crypto.randomUUID();
