/** eventrail's own version, for `eventrail --version` and the bench's reports. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest package.json above `from` whose name is `name`, or null. */
export function packageJsonAbove(from: string, name: string): { version?: string } | null {
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

/** eventrail's version, from its package.json wherever the build put this file (dist/ or build/). */
export function eventrailVersion(): string {
  return packageJsonAbove(dirname(fileURLToPath(import.meta.url)), 'eventrail')?.version ?? 'unknown';
}
