/**
 * What every bench/*.bench.ts file shares: run one suite of src/bench (the
 * same code `eventrail bench` runs), print the tables, and optionally write
 * the JSON report and check the issues' targets.
 *
 *   node build/bench/dispatch.bench.js [--quick] [--json FILE] [--assert]
 *
 * --assert exits 1 when a ratio misses its target: speed is asserted by
 * same-run ratios, never by absolute times.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Progress } from '../src/bench/progress.js';
import type { BenchReport, SuiteName } from '../src/bench/results.js';
import { runBench } from '../src/bench/run.js';
import { renderText } from '../src/bench/text.js';

export async function runEntry(suite: SuiteName): Promise<BenchReport> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean' }, json: { type: 'string' }, assert: { type: 'boolean' }, events: { type: 'string' } },
    strict: true,
  });
  const events = values.events === undefined ? undefined : Number(values.events);
  const report = await runBench({ quick: values.quick ?? false, suites: [suite], ...(events ? { events } : {}) }, new Progress());
  process.stdout.write(renderText(report));
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  const missed = report.ratios.filter((r) => r.met === false);
  const failed = report.scenarios.filter((s) => s.status === 'failed');
  if (failed.length > 0) process.exitCode = 1;
  if (values.assert && missed.length > 0) {
    process.stderr.write(`missed: ${missed.map((r) => `${r.name} ${r.value?.toFixed(2)}× < ${r.target}×`).join('; ')}\n`);
    process.exitCode = 1;
  }
  return report;
}
