/** The versions of everything the bench measures (the machine itself: src/cli/sweep/machine.ts). */
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventrailVersion, packageJsonAbove } from '../src/cli/version.js';

export { loadAverage, machineInfo } from '../src/cli/sweep/machine.js';

function versionOf(pkg: string): string | null {
  try {
    return packageJsonAbove(dirname(fileURLToPath(import.meta.resolve(pkg))), pkg)?.version ?? null;
  } catch {
    return null;
  }
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
