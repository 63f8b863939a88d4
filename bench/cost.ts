/**
 * Main-thread cost per event of a scenario, summed over every iteration it
 * runs: busy time of the main thread's event loop
 * (performance.eventLoopUtilization, so worker threads are not in it), CPU
 * time of the whole process (process.cpuUsage: main thread, workers, lmdb's
 * and libuv's threads), and bytes allocated on the main thread's V8 heap (from
 * v8.GCProfiler: what each collection found in use, less what the previous one
 * left, plus the growth since the last; off-heap memory such as Buffer
 * contents is not in it).
 */
import { performance } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';

export class MainThreadCost {
  #events = 0;
  #busyMs = 0;
  #cpuMicros = 0;
  #allocated = 0;

  /** Runs one iteration of `events` events and adds what it cost. */
  async measure(events: number, run: () => Promise<void>): Promise<void> {
    const profiler = new GCProfiler();
    const usedBefore = getHeapStatistics().used_heap_size;
    profiler.start();
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    try {
      await run();
    } finally {
      const busy = performance.eventLoopUtilization(elu);
      const spent = process.cpuUsage(cpu);
      const usedAfter = getHeapStatistics().used_heap_size;
      const gcs = profiler.stop()?.statistics ?? [];
      let allocated = 0;
      let left = usedBefore;
      for (const gc of gcs) {
        allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - left);
        left = gc.afterGC.heapStatistics.usedHeapSize;
      }
      allocated += Math.max(0, usedAfter - left);
      this.#events += events;
      this.#busyMs += busy.active;
      this.#cpuMicros += spent.user + spent.system;
      this.#allocated += allocated;
    }
  }

  /** The figures per event, for a scenario's extras (empty before the first iteration). */
  extras(): Record<string, number> {
    if (this.#events === 0) return {};
    const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
    return {
      mainBusyMicrosPerEvent: round((this.#busyMs * 1000) / this.#events, 3),
      processCpuMicrosPerEvent: round(this.#cpuMicros / this.#events, 3),
      mainAllocatedBytesPerEvent: Math.round(this.#allocated / this.#events),
    };
  }
}
