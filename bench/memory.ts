/**
 * Memory under load, each measured in a child process of its own so that RSS
 * is the bus's and not what earlier scenarios left behind:
 * - overload: a producer emits as fast as backpressure lets it into a slow
 *   consumer (`maxPending` 10 000): peak RSS must stay bounded, not grow
 *   with the number of events. Run twice: with store `none`, and on the
 *   durable path (lmdb in an empty folder), where RSS also counts the pages
 *   of the data file that the writes map, so anonymous RSS is the figure that
 *   must stay flat;
 * - replay: the time to read back every stored event through `bus.replay()`,
 *   with RSS sampled as it goes: it must stay flat.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createBus } from '../src/bus/bus.js';
import type { EventInput } from '../src/event/event.js';
import { SLOW_CONSUMER } from './consumers/paths.js';
import { syntheticInputs } from '../src/cli/sweep/inputs.js';
import { measure, perSecond, type MeasureSettings } from '../src/cli/sweep/measure.js';
import type { MemoryRange, MemoryTrace, OverloadResult, OverloadStore, ReplayResult } from './results.js';

const MiB = 2 ** 20;
const round1 = (n: number) => Math.round(n * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * Linux's RssAnon in MiB: the process's own memory (heap, buffers), without
 * the file-backed pages of lmdb's memory map that RSS counts. null where
 * /proc is not there.
 */
export function anonRss(): number | null {
  try {
    const kB = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kB === undefined ? null : Number(kB) / 1024;
  } catch {
    return null;
  }
}

class Range {
  start: number;
  peak: number;
  end: number;
  constructor(value: number) {
    this.start = this.peak = this.end = value;
  }
  see(value: number): void {
    this.peak = Math.max(this.peak, value);
    this.end = value;
  }
  toJSON(): MemoryRange {
    return { start: round1(this.start), peak: round1(this.peak), end: round1(this.end) };
  }
}

/**
 * Samples memory at the caller's pace: a loop that reads stored pages yields
 * through microtasks only, so a timer would never fire in it.
 */
class MemorySampler {
  readonly #rss: Range;
  readonly #anon: Range | null;
  readonly #heap: Range;
  readonly #along: Record<string, number> = {};

  constructor() {
    global.gc?.();
    const anon = anonRss();
    this.#rss = new Range(process.memoryUsage.rss() / MiB);
    this.#anon = anon === null ? null : new Range(anon);
    this.#heap = new Range(process.memoryUsage().heapUsed / MiB);
  }

  sample(): number {
    const rss = process.memoryUsage.rss() / MiB;
    this.#rss.see(rss);
    this.#heap.see(process.memoryUsage().heapUsed / MiB);
    const anon = this.#anon === null ? null : anonRss();
    if (anon !== null) this.#anon?.see(anon);
    return anon ?? rss;
  }

  /** Records the memory at a mark (`10%`), once. */
  mark(label: string): void {
    this.#along[label] ??= round1(this.sample());
  }

  trace(): MemoryTrace {
    this.sample();
    return { rss: this.#rss.toJSON(), anonRss: this.#anon?.toJSON() ?? null, heapUsed: this.#heap.toJSON(), along: { ...this.#along } };
  }
}

/** The overload's load in every run: backpressure.maxPending, and the consumer's time per event. */
export const OVERLOAD = { maxPending: 10_000, slowConsumerMicros: 5 } as const;

export interface OverloadOptions {
  readonly events: number;
  readonly maxPending: number;
  readonly slowConsumerMicros: number;
  /** `lmdb` needs `folder`, an empty folder for the store. */
  readonly store: OverloadStore;
  readonly folder?: string;
}

export type Report = (text: string) => void;

export async function overload(options: OverloadOptions, report: Report): Promise<OverloadResult> {
  const { events, maxPending, folder } = options;
  if (options.store === 'lmdb' && folder === undefined) throw new TypeError('overload on lmdb needs a folder for the store');
  process.env.BENCH_SLOW_US = String(options.slowConsumerMicros);
  const bus = await createBus({
    store: options.store === 'lmdb' ? { kind: 'lmdb', path: folder! } : { kind: 'none' },
    consumers: [SLOW_CONSUMER],
    pool: { maxThreads: 1, minThreads: 1 },
    backpressure: { maxPending, onOverflow: 'wait' },
  });
  try {
    const user = crypto.randomUUID();
    const input = (seq: number): EventInput => ({
      event_type: 'SessionExtended',
      payload: { seq, session_id: user },
      metadata: { source: 'overload', user_id: seq % 2 === 0 ? user : null },
    });
    const memory = new MemorySampler();
    let maxPendingSeen = 0;
    const tenth = Math.max(1, Math.floor(events / 10));
    let failure: unknown = null;
    const started = performance.now();
    for (let i = 0; i < events; i++) {
      const receipt = bus.emit(input(i));
      // The producer waits for one receipt in 1000: as fast as backpressure lets it go, with a bounded number of waiting emits.
      if (i % 1000 === 999) {
        await receipt.catch((err: unknown) => (failure ??= err));
        memory.sample();
        maxPendingSeen = Math.max(maxPendingSeen, bus.pending);
      } else {
        receipt.catch((err: unknown) => (failure ??= err));
      }
      if ((i + 1) % tenth === 0) {
        const pct = Math.round(((i + 1) / events) * 100);
        if (pct === 10 || pct === 50 || pct === 90) memory.mark(`${pct}%`);
        report(`overload (store ${options.store}): ${pct}% emitted, memory ${memory.sample().toFixed(0)} MiB, pending ${bus.pending}`);
      }
    }
    await bus.flush();
    if (failure !== null) throw failure;
    const seconds = (performance.now() - started) / 1000;
    return {
      status: 'ok',
      store: options.store,
      storeMiB: options.store === 'lmdb' && folder !== undefined ? round1(statSync(join(folder, 'data.mdb')).size / MiB) : null,
      events,
      maxPending,
      slowConsumerMicros: options.slowConsumerMicros,
      seconds: round2(seconds),
      eventsPerSec: events / seconds,
      memory: memory.trace(),
      maxPendingSeen,
    };
  } finally {
    await bus.close();
  }
}

export interface ReplayOptions {
  readonly events: number;
  /** An empty folder for the store. */
  readonly folder: string;
  readonly settings: MeasureSettings;
}

export async function replay(options: ReplayOptions, report: Report): Promise<ReplayResult> {
  const { events, folder } = options;
  const bus = await createBus({ store: { kind: 'lmdb', path: folder }, consumers: [] });
  try {
    // Fill: chunks of 1024 emitted a few at a time, so group commit works as it would under a real producer.
    const chunk = syntheticInputs(1024, ['UserLoggedIn', 'SessionCreated', 'WorkflowStarted', { Custom: 'OrderPlaced' }]);
    const fillStarted = performance.now();
    let emitted = 0;
    let reported = 0;
    const producer = async () => {
      while (emitted < events) {
        const n = Math.min(chunk.length, events - emitted);
        emitted += n;
        await bus.emitMany(n === chunk.length ? chunk : chunk.slice(0, n));
        if (emitted - reported >= events / 10) {
          reported = emitted;
          report(`replay: stored ${emitted.toLocaleString('en-US')} of ${events.toLocaleString('en-US')} events`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, producer));
    await bus.flush();
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    const storeMiB = statSync(join(folder, 'data.mdb')).size / MiB;

    const memory = new MemorySampler();
    let pass = 0;
    const timing = await measure(
      'replay',
      async () => {
        pass++;
        let n = 0;
        for await (const event of bus.replay()) {
          if (event.event_id.length === 0) throw new Error('an event without an id');
          if (++n % 16384 === 0) {
            memory.sample();
            const pct = Math.floor((n / events) * 10) * 10;
            if (pass === 1 && (pct === 10 || pct === 50 || pct === 90)) memory.mark(`${pct}%`);
          }
        }
        if (n !== events) throw new Error(`replay read ${n} events, ${events} were stored`);
        report(`replay: pass ${pass} read ${n.toLocaleString('en-US')} events`);
      },
      options.settings,
    );
    return {
      status: 'ok',
      events,
      fillSeconds: round2(fillSeconds),
      storeMiB: round1(storeMiB),
      timing,
      eventsPerSec: perSecond(events, timing.medianMs),
      eventsPerSecP99: perSecond(events, timing.p99Ms),
      memory: memory.trace(),
    };
  } finally {
    await bus.close();
  }
}
