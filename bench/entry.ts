/**
 * What every bench/<suite>.bench.ts file shares: run one suite with the
 * options of `npm run bench` (bench/main.ts), e.g.
 *
 *   node build/bench/dispatch.bench.js [--quick] [--json] [--out FILE] [--assert]
 */
import { benchMain } from './main.js';
import type { BenchReport, SuiteName } from './results.js';

export function runEntry(suite: SuiteName): Promise<BenchReport> {
  return benchMain(process.argv.slice(2), [suite]);
}
