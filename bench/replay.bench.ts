/**
 * Replay: 1M events (BENCH_EVENTS to change) stored in lmdb in a temporary
 * folder, then read back through bus.replay(): events/s (median of 3 passes)
 * and RSS along the way, which must stay flat. Runs in a child process.
 */
import { loadAverage, machineInfo } from './machine.js';
import { inChild } from './memory-child.js';
import type { ReplayResult } from './results.js';
import { TempFolders } from '../src/cli/sweep/temp.js';

const load = loadAverage();
const folders = new TempFolders();
try {
  const result = await inChild<ReplayResult>(
    'replay',
    {
      events: Number(process.env.BENCH_EVENTS ?? 1_000_000),
      folder: folders.make('replay'),
      settings: { timeMs: 0, minIterations: 3, warmupMs: 0, warmupIterations: 1 },
    },
    (t) => process.stderr.write(`${t}\n`),
  );
  console.log(JSON.stringify({ suite: 'replay', machine: machineInfo(load), result }, null, 2));
} finally {
  folders.removeAll();
}
