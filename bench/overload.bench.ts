/**
 * Overload: 1M events (BENCH_EVENTS to change) emitted as fast as
 * backpressure lets them into a consumer that takes ~5 µs per event, with
 * backpressure.maxPending 10 000. Peak RSS must stay bounded, not grow with
 * the number of events. Runs in a child process so RSS is the bus's alone.
 */
import { machineInfo, loadAverage } from '../src/bench/machine.js';
import { inChild } from '../src/bench/memory-child.js';
import type { OverloadResult } from '../src/bench/results.js';

const load = loadAverage();
const result = await inChild<OverloadResult>('overload', { events: Number(process.env.BENCH_EVENTS ?? 1_000_000), maxPending: 10_000, slowConsumerMicros: 5 }, (t) =>
  process.stderr.write(`${t}\n`),
);
console.log(JSON.stringify({ suite: 'overload', machine: machineInfo(load), result }, null, 2));
