/**
 * Main-thread cost per event of a scenario, summed over every iteration it
 * runs: CPU time of the main thread alone (Linux's /proc/self/task/PID, see
 * mainThreadCpuNs; absent elsewhere), busy time of its event loop
 * (performance.eventLoopUtilization: wall-clock time not idle, so on a loaded
 * machine it also counts time the thread waited for a core), CPU time of the
 * whole process (process.cpuUsage: main thread, workers, lmdb's
 * and libuv's threads), and bytes allocated on the main thread's V8 heap (from
 * v8.GCProfiler: what each collection found in use, less what the previous one
 * left, plus the growth since the last; off-heap memory such as Buffer
 * contents is not in it).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on every Linux build node runs on). */
const USER_HZ = 100;

/**
 * Nanoseconds the main thread has run on a CPU, or null where /proc does not
 * say: schedstat's exact figure, else stat's user + system ticks (10 ms each,
 * fine once summed over the seconds a scenario runs).
 */
function mainThreadCpuNs(): number | null {
  const task = `/proc/self/task/${process.pid}`;
  try {
    const ns = Number(readFileSync(`${task}/schedstat`, 'utf8').split(' ')[0]);
    if (Number.isFinite(ns)) return ns;
  } catch {
    // not every kernel has schedstat: stat next
  }
  try {
    const stat = readFileSync(`${task}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, inside parentheses): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1e9) / USER_HZ : null;
  } catch {
    return null;
  }
}

export class MainThreadCost {
  #events = 0;
  #busyMs = 0;
  #mainCpuNs: number | null = 0;
  #cpuMicros = 0;
  #allocated = 0;

  /** Runs one iteration of `events` events and adds what it cost. */
  async measure(events: number, run: () => Promise<void>): Promise<void> {
    const profiler = new GCProfiler();
    const usedBefore = getHeapStatistics().used_heap_size;
    profiler.start();
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const mainCpu = mainThreadCpuNs();
    try {
      await run();
    } finally {
      const mainCpuAfter = mainThreadCpuNs();
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
      this.#mainCpuNs =
        this.#mainCpuNs === null || mainCpu === null || mainCpuAfter === null ? null : this.#mainCpuNs + (mainCpuAfter - mainCpu);
      this.#cpuMicros += spent.user + spent.system;
      this.#allocated += allocated;
    }
  }

  /** The figures per event, for a scenario's extras (empty before the first iteration). */
  extras(): Record<string, number> {
    if (this.#events === 0) return {};
    const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
    return {
      ...(this.#mainCpuNs === null ? {} : { mainCpuMicrosPerEvent: round(this.#mainCpuNs / 1000 / this.#events, 3) }),
      mainBusyMicrosPerEvent: round((this.#busyMs * 1000) / this.#events, 3),
      processCpuMicrosPerEvent: round(this.#cpuMicros / this.#events, 3),
      mainAllocatedBytesPerEvent: Math.round(this.#allocated / this.#events),
    };
  }
}
