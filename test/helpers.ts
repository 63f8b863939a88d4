/** Shared test helpers: temporary folders, fixture paths, a bus per test or per describe block, reading what consumers recorded. */
import { after, before } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBus, type BusOptions, type EventBus } from '../src/index.js';
import type { ConsumerEntry } from '../src/options.js';
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

export interface Recorder {
  readonly path: string;
  read(): Delivered[];
  /** A fixture consumer that records into this file: `{ module, options: { out, ...options } }`. */
  consumer(name: string, options?: Readonly<Record<string, unknown>>): ConsumerEntry;
}

/** A recorder output file; fixture consumers get its path as `options.out` (see Recorder.consumer). */
export function recorder(dir: TempDir): Recorder {
  const path = dir.file(`deliveries-${Math.random().toString(36).slice(2)}.jsonl`);
  return {
    path,
    consumer: (name, options) => ({ module: fixture(name), options: { out: path, ...options } }),
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

/**
 * Runs `body` with a bus made from `options` (given the test's temporary
 * folder and the recorder when they need them, for a store path or a
 * recording consumer), over a fresh folder with a delivery recorder; the bus
 * is closed and the folder removed afterwards, whatever happens. Every
 * consumer gets the recorder's file as `options.out` unless its options name one.
 */
export async function withBus<T>(
  options: BusOptions | ((dir: TempDir, out: Recorder) => BusOptions),
  body: (ctx: { bus: EventBus; out: Recorder; dir: TempDir }) => Promise<T>,
): Promise<T> {
  const dir = tempDir();
  try {
    const out = recorder(dir);
    const bus = await createBus(withRecorder(typeof options === 'function' ? options(dir, out) : options, out));
    try {
      return await body({ bus, out, dir });
    } finally {
      await bus.close();
    }
  } finally {
    dir.remove();
  }
}

/** What `suiteBus` gives a describe block; `bus` and `out` are there once its `before` hook ran. */
export interface SuiteBus {
  readonly bus: EventBus;
  readonly out: Recorder;
  readonly dir: TempDir;
}

/**
 * One bus shared by the tests of a describe block: made in `before` from
 * `options` (given the block's temporary folder and the recorder when they
 * need them, for a store path or a recording consumer) with a fresh delivery
 * recorder, closed in `after` and its folder removed, whatever happens. Every
 * consumer gets the recorder's file as `options.out` unless its options name
 * one. Call it in the describe body; read `.bus` and `.out` inside the tests.
 */
export function suiteBus(options: BusOptions | ((dir: TempDir, out: Recorder) => BusOptions)): SuiteBus {
  const dir = tempDir();
  let bus: EventBus | undefined;
  let out: Recorder | undefined;
  before(async () => {
    const made = recorder(dir);
    out = made;
    bus = await createBus(withRecorder(typeof options === 'function' ? options(dir, made) : options, made));
  });
  after(async () => {
    try {
      await bus?.close();
    } finally {
      dir.remove();
    }
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('suiteBus: the bus is made in the before hook, read it inside the tests');
    return value;
  };
  return {
    get bus() {
      return ready(bus);
    },
    get out() {
      return ready(out);
    },
    dir,
  };
}

/** Every item of an async iterable (a replay, an audit query, a store read), in order. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Consumers record into `out`: they get it as `options.out` unless their options name another. */
function withRecorder(options: BusOptions, out: Recorder): BusOptions {
  const consumers = options.consumers?.map((c) =>
    typeof c === 'string' ? { module: c, options: { out: out.path } } : { ...c, options: { out: out.path, ...c.options } },
  );
  return consumers === undefined ? options : { ...options, consumers };
}

/** Every JSON line of a recorder file whose `consumer` is the given name (for fixtures with their own line shape). */
export function linesOf<T extends { consumer: string }>(path: string, consumer: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T)
    .filter((l) => l.consumer === consumer);
}

/**
 * Waits for a condition, not for a time: polls until `check` is true, and
 * fails after `timeoutMs` with `what` (a safety net, never the expected path).
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The value of one series in Prometheus text, e.g. `eventrail_deliveries_total{consumer="Recorder"}`,
 * or undefined when the series is absent.
 */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (space > 0 && line.slice(0, space) === series) return Number(line.slice(space + 1));
  }
  return undefined;
}

/** The byte offset of event `index` in a block (format 1: u8, u32 count, count × (u32 length, f64 time), events). */
export function eventOffset(block: Buffer, index: number): number {
  const count = block.readUInt32BE(1);
  let at = 5 + count * 12;
  for (let i = 0; i < index; i++) at += block.readUInt32BE(5 + i * 4);
  return at;
}
