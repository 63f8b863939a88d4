/**
 * `npm run bench` in a checkout: every suite (peers included), each in a child
 * process of its own, with the report as text on stdout (progress on stderr).
 * Not shipped: the package's `eventrail bench` is the tuning sweep alone.
 *
 *   node build/bench/main.js [--quick] [--suite LIST] [--events N] [--json]
 *                            [--out FILE.json] [--md FILE.md] [--chart FILE.svg] [--assert]
 *
 * --assert exits 1 when a ratio misses its target: speed is asserted by
 * same-run ratios, never by absolute times.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Progress } from '../src/cli/sweep/progress.js';
import { benchChartSvg, nothingToChart } from './chart.js';
import { renderMarkdown } from './markdown.js';
import { SUITES, type BenchReport, type SuiteName } from './results.js';
import { runBench } from './run.js';
import { renderText } from './text.js';

export const USAGE = `Usage: npm run bench -- [options]   (node build/bench/main.js [options])

Runs the benchmark suites, each in a child process of its own:
  codec     JSON vs msgpackr with records, per event and per batch
  dispatch  eventrail vs the minimal batch pipeline vs one piscina.run() per event vs EventEmitter (store none)
  store     lmdb group commit vs one write per event
  durable   emit → lmdb commit → consumers, vs the durable minimal pipeline and the literal design
  sweep     pool threads × batch size × lanes on two trivial consumers (eventrail bench's own sweep)
  peers     BullMQ on a local redis-server (skipped, with the reason, when not installed)
  memory    peak RSS of 1M events into a slow consumer, store none and lmdb; replay of 1M stored events
  cluster   3 instance processes on one lmdb store, 2 consumer groups: events/s per group; takeover after a SIGKILL

Options:
  --suite LIST        run only these: ${SUITES.join(', ')}
  --events N          events per iteration (default 20000; 5000 with --quick)
  --quick             a short run: enough to see it works, not to quote
  --json              print the report as JSON on stdout
  --out FILE.json     also write the JSON report
  --md FILE.md        also write the report as Markdown
  --chart FILE.svg    also write a chart: events/s against threads, one line per batch size
  --assert            exit 1 when a ratio misses its target
`;

function fail(message: string): never {
  process.stderr.write(`npm run bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function fileOf(flag: string, value: string | undefined, extension: string): string | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value.startsWith('-') || !value.toLowerCase().endsWith(extension))
    fail(`--${flag} writes a ${extension} file, got \`${value}\``);
  return resolve(value);
}

/** Runs the bench with these arguments (`suites` when --suite is not given) and writes what was asked for. */
export async function benchMain(argv: readonly string[], suites?: readonly SuiteName[]): Promise<BenchReport> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      suite: { type: 'string' },
      events: { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      md: { type: 'string' },
      chart: { type: 'string' },
      assert: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const chosen = values.suite?.split(',').map((s) => s.trim()) ?? suites;
  for (const name of chosen ?? [])
    if (!(SUITES as readonly string[]).includes(name)) fail(`--suite takes names from ${SUITES.join(', ')}, got \`${name}\``);
  const events = values.events === undefined ? undefined : Number(values.events);
  if (events !== undefined && !(Number.isInteger(events) && events > 0))
    fail(`--events takes a positive integer, got \`${values.events}\``);
  const files = {
    out: fileOf('out', values.out, '.json'),
    md: fileOf('md', values.md, '.md'),
    chart: fileOf('chart', values.chart, '.svg'),
  };

  const report = await runBench(
    { quick: values.quick ?? false, ...(chosen ? { suites: chosen as SuiteName[] } : {}), ...(events ? { events } : {}) },
    new Progress(),
  );
  const write = (file: string, text: string) => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    process.stderr.write(`wrote ${file}\n`);
  };
  if (files.out) write(files.out, `${JSON.stringify(report, null, 2)}\n`);
  const empty = files.chart ? nothingToChart(report) : null;
  if (files.chart) {
    // The file is written either way, so that a script that asked for it finds it; it then says why it is empty.
    write(files.chart, benchChartSvg(report));
    if (empty !== null)
      process.stderr.write(
        `${empty}: ${files.chart} says so instead of plotting (the chart needs the sweep, or the dispatch, durable or peers suite)\n`,
      );
  }
  if (files.md)
    write(files.md, renderMarkdown(report, files.chart && empty === null ? { chart: relative(dirname(files.md), files.chart) } : {}));
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));

  const failed =
    report.scenarios.some((s) => s.status === 'failed') ||
    report.sweep.some((r) => r.status === 'failed') ||
    [report.memory.overload, report.memory.overloadDurable, report.memory.replay, report.cluster].some((m) => m?.status === 'failed');
  if (failed) process.exitCode = 1;
  const missed = report.ratios.filter((r) => r.met === false);
  if (values.assert && missed.length > 0) {
    process.stderr.write(`missed: ${missed.map((r) => `${r.name} ${r.value?.toFixed(2)}× < ${r.target}×`).join('; ')}\n`);
    process.exitCode = 1;
  }
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await benchMain(process.argv.slice(2));
