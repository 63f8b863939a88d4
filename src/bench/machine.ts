/** What the report records about where it ran: the machine, its load, and the versions of everything measured. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** The nearest package.json above `from` whose name is `name`, or null. */
function packageJsonAbove(from: string, name: string): { version?: string } | null {
  let dir = from;
  while (true) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (json.name === name) return json;
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function versionOf(pkg: string): string | null {
  try {
    return packageJsonAbove(dirname(fileURLToPath(import.meta.resolve(pkg))), pkg)?.version ?? null;
  } catch {
    return null;
  }
}

/** eventrail's own version (from its package.json, wherever the build put this file). */
export function eventrailVersion(): string {
  return packageJsonAbove(dirname(fileURLToPath(import.meta.url)), 'eventrail')?.version ?? 'unknown';
}

/** `redis-server --version`, or null when it is not installed. */
export function redisServerVersion(): string | null {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (result.error || result.status !== 0) return null;
  return /v=(\S+)/.exec(result.stdout)?.[1] ?? result.stdout.trim();
}

export function packageVersions(): Record<string, string> {
  const versions: Record<string, string> = { eventrail: eventrailVersion() };
  for (const pkg of ['piscina', 'msgpackr', 'lmdb', 'tinybench', 'zod', 'prom-client', 'bullmq', 'ioredis']) {
    const v = versionOf(pkg);
    if (v !== null) versions[pkg] = v;
  }
  const redis = redisServerVersion();
  if (redis !== null) versions['redis-server'] = redis;
  return versions;
}
