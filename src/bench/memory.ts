/**
 * Memory under load, each measured in a child process of its own so that RSS
 * is the bus's and not what earlier scenarios left behind:
 * - overload: a producer emits as fast as backpressure lets it into a slow
 *   consumer (`maxPending` 10 000): peak RSS must stay bounded, not grow
 *   with the number of events;
 * - replay: the time to read back every stored event through `bus.replay()`,
 *   with RSS sampled as it goes: it must stay flat.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createBus } from '../bus/bus.js';
import type { EventInput } from '../event/event.js';
import { SLOW_CONSUMER } from './consumers/paths.js';
import { syntheticInputs } from './inputs.js';
import { measure, perSecond, type MeasureSettings } from './measure.js';
import type { OverloadResult, ReplayResult } from './results.js';

const MiB = 2 ** 20;
const rss = () => process.memoryUsage.rss() / MiB;
const round1 = (n: number) => Math.round(n * 10) / 10;

export interface OverloadOptions {
  readonly events: number;
  readonly maxPending: number;
  readonly slowConsumerMicros: number;
}

export type Report = (text: string) => void;

export async function overload(options: OverloadOptions, report: Report): Promise<OverloadResult> {
  const { events, maxPending } = options;
  process.env.BENCH_SLOW_US = String(options.slowConsumerMicros);
  const bus = await createBus({
    store: { kind: 'none' },
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
    global.gc?.();
    const start = rss();
    let peak = start;
    let maxPendingSeen = 0;
    const marks: Record<string, number> = {};
    const tenth = Math.max(1, Math.floor(events / 10));
    let failure: unknown = null;
    const started = performance.now();
    for (let i = 0; i < events; i++) {
      const receipt = bus.emit(input(i));
      // The producer waits for one receipt in 1000: as fast as backpressure lets it go, with a bounded number of waiting emits.
      if (i % 1000 === 999) {
        await receipt.catch((err: unknown) => (failure ??= err));
        peak = Math.max(peak, rss());
        maxPendingSeen = Math.max(maxPendingSeen, bus.pending);
      } else {
        receipt.catch((err: unknown) => (failure ??= err));
      }
      if ((i + 1) % tenth === 0) {
        const pct = Math.round(((i + 1) / events) * 100);
        if (pct === 10 || pct === 50 || pct === 90) marks[`${pct}%`] = round1(rss());
        report(`overload: ${pct}% emitted, RSS ${rss().toFixed(0)} MiB, pending ${bus.pending}`);
      }
    }
    await bus.flush();
    if (failure !== null) throw failure;
    const seconds = (performance.now() - started) / 1000;
    const end = rss();
    return {
      status: 'ok',
      events,
      maxPending,
      slowConsumerMicros: options.slowConsumerMicros,
      seconds: round1(seconds * 10) / 10,
      eventsPerSec: events / seconds,
      rssStartMiB: round1(start),
      rssPeakMiB: round1(Math.max(peak, end)),
      rssEndMiB: round1(end),
      rssAtMiB: marks,
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

    global.gc?.();
    const start = rss();
    let peak = start;
    const marks: Record<string, number> = {};
    let pass = 0;
    const timing = await measure(
      'replay',
      async () => {
        pass++;
        let n = 0;
        for await (const event of bus.replay()) {
          if (event.event_id.length === 0) throw new Error('an event without an id');
          // Sampled inline: a replay of stored pages yields through microtasks only, so a timer would not fire.
          if (++n % 16384 === 0) {
            peak = Math.max(peak, rss());
            if (pass === 1) {
              const pct = Math.floor((n / events) * 10) * 10;
              if ((pct === 10 || pct === 50 || pct === 90) && marks[`${pct}%`] === undefined) marks[`${pct}%`] = round1(rss());
            }
          }
        }
        if (n !== events) throw new Error(`replay read ${n} events, ${events} were stored`);
        report(`replay: pass ${pass} read ${n.toLocaleString('en-US')} events`);
      },
      options.settings,
    );
    const end = rss();
    return {
      status: 'ok',
      events,
      fillSeconds: round1(fillSeconds * 10) / 10,
      storeMiB: round1(storeMiB),
      timing,
      eventsPerSec: perSecond(events, timing.medianMs),
      eventsPerSecP99: perSecond(events, timing.p99Ms),
      rssStartMiB: round1(start),
      rssPeakMiB: round1(Math.max(peak, end)),
      rssEndMiB: round1(end),
      rssAtMiB: marks,
    };
  } finally {
    await bus.close();
  }
}
