/**
 * Overload: 1M events (BENCH_EVENTS to change) emitted as fast as
 * backpressure lets them into a consumer that takes ~5 µs per event, with
 * backpressure.maxPending 10 000, first with store `none`, then on the durable
 * path (lmdb in a temporary folder). Peak RSS must stay bounded, not grow
 * with the number of events; on lmdb RSS also counts the data file's mapped
 * pages, so anonymous RSS is the figure to watch. Each run is in a child
 * process of its own, so RSS is that bus's alone. Takes no flags.
 */
import { machineInfo, loadAverage } from './machine.js';
import { OVERLOAD, type OverloadOptions } from './memory.js';
import { inChild } from './memory-child.js';
import type { OverloadResult } from './results.js';
import { TempFolders } from '../src/cli/sweep/temp.js';

const load = loadAverage();
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const progress = (t: string) => process.stderr.write(`${t}\n`);
const folders = new TempFolders();
try {
  const none = await inChild<OverloadResult>('overload', { ...OVERLOAD, events, store: 'none' } satisfies OverloadOptions, progress);
  const lmdb = await inChild<OverloadResult>(
    'overload',
    { ...OVERLOAD, events, store: 'lmdb', folder: folders.make('overload') } satisfies OverloadOptions,
    progress,
  );
  console.log(JSON.stringify({ suite: 'overload', machine: machineInfo(load), results: [none, lmdb] }, null, 2));
} finally {
  folders.removeAll();
}
