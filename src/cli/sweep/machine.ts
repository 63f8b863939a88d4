/** What a sweep report records about where it ran: the machine and its load. */
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os';
import type { MachineInfo } from './results.js';

const GiB = 2 ** 30;
const round1 = (n: number) => Math.round(n * 10) / 10;

export function loadAverage(): number[] {
  return loadavg().map((n) => Math.round(n * 100) / 100);
}

export function machineInfo(loadAtStart: readonly number[]): MachineInfo {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: round1(totalmem() / GiB),
    freeMemoryGiB: round1(freemem() / GiB),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage: { start: loadAtStart, end: loadAverage() },
  };
}
