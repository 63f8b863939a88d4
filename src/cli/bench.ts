/** `eventrail bench`: the benchmark suites and the tuning sweep (see src/bench/). */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { benchChartSvg, nothingToChart } from '../bench/chart.js';
import { renderMarkdown } from '../bench/markdown.js';
import { Progress } from '../bench/progress.js';
import { SUITES, type BenchReport, type SuiteName } from '../bench/results.js';
import { runBench } from '../bench/run.js';
import { renderText } from '../bench/text.js';
import { HELP_OPTION, STORE_OPTIONS, UsageError, intList, parse, positiveInt } from './args.js';
import type { Output } from './output.js';

export const BENCH_HELP = `Usage: eventrail bench [options]

Without --config, runs the default suites on the embedded store in a temporary
folder, with peers measured in the same run:
  codec     JSON vs msgpackr with records, per event and per batch
  dispatch  eventrail vs one piscina.run() per event vs EventEmitter (store none)
  store     lmdb group commit vs one write per event
  durable   emit → lmdb commit → consumers, vs the literal design (put + run() per event)
  peers     BullMQ on a local redis-server (skipped, with the reason, when not installed)
  sweep     pool threads × batch size × lanes on two trivial consumers
  memory    peak RSS of 1M events into a slow consumer, store none and lmdb; replay of 1M stored events

With --config FILE, tunes your own setup: the sweep runs the config's
consumers with its options (on a temporary store, with delivery.maxAttempts 1),
on synthetic events of the types they subscribe to, or with --from-store on
events read from your store. It prints the best setting as a snippet to paste.
Your consumers really run: point what they call at a test environment.

Options:
  --config FILE       tune the consumers and options of this config file
  --from-store        emit events read from the config's store (or --store PATH)
  --store PATH        with --from-store: the lmdb store to read events from
  --threads LIST      pool.maxThreads values to sweep, e.g. 1,2,4
  --batch LIST        dispatch.maxBatch values to sweep, e.g. 256,1024
  --lanes LIST        dispatch.lanes values to sweep, e.g. 8,32
  --events N          events per iteration (default 20000; 5000 with --quick)
  --suite LIST        run only these: ${SUITES.join(', ')}
  --quick             a short run (about a minute): enough to rank settings, not to quote
  --json              print the report as JSON on stdout (progress stays on stderr)
  --out FILE.json     also write the JSON report to FILE
  --md FILE.md        also write the report as Markdown
  --chart FILE.svg    also write a chart: events/s against threads, one line per batch size
                      (with nothing to plot, e.g. --suite codec, the file says so instead)
  -h, --help          this help

Examples:
  eventrail bench --quick
  eventrail bench --config eventrail.json --threads 1,2,4 --batch 256,1024 --lanes 8,32 --md bench.md --chart bench.svg
  eventrail bench --config eventrail.json --from-store --threads 2,4
`;

const OPTIONS = {
  ...STORE_OPTIONS,
  ...HELP_OPTION,
  'from-store': { type: 'boolean' },
  threads: { type: 'string' },
  batch: { type: 'string' },
  lanes: { type: 'string' },
  events: { type: 'string' },
  suite: { type: 'string' },
  quick: { type: 'boolean' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  md: { type: 'string' },
  chart: { type: 'string' },
} as const;

function suitesOf(value: string | undefined): SuiteName[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(SUITES as readonly string[]).includes(name)) throw new UsageError('bench', `--suite takes names from ${SUITES.join(', ')}, got \`${name}\``);
  }
  return names as SuiteName[];
}

function checkFile(flag: string, value: string | undefined, extension: string): string | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value.startsWith('-')) throw new UsageError('bench', `--${flag} needs a file name, got \`${value}\``);
  if (!value.toLowerCase().endsWith(extension)) throw new UsageError('bench', `--${flag} writes a ${extension} file, got \`${value}\``);
  return resolve(value);
}

export async function benchCommand(args: readonly string[], out: Output): Promise<number> {
  const { values } = parse('bench', () => parseArgs({ args: [...args], options: OPTIONS, strict: true }));
  if (values.help) {
    await out.write(BENCH_HELP);
    return 0;
  }
  const threads = intList('bench', 'threads', values.threads, 1, 1024);
  const maxBatch = intList('bench', 'batch', values.batch, 1, 65_535);
  const lanes = intList('bench', 'lanes', values.lanes, 1, 4096);
  const events = positiveInt('bench', 'events', values.events, 10_000_000);
  const suites = suitesOf(values.suite);
  const files = { out: checkFile('out', values.out, '.json'), md: checkFile('md', values.md, '.md'), chart: checkFile('chart', values.chart, '.svg') };
  if (values['from-store'] && values.config === undefined) throw new UsageError('bench', '--from-store needs --config FILE (the consumers to run, and the store to read)');
  if (values.store !== undefined && !values['from-store']) throw new UsageError('bench', '--store is the store to read events from: use it with --from-store (the bench itself runs on a temporary store)');
  if (suites !== undefined && !suites.includes('sweep')) {
    // Only the sweep reads these: with other suites alone they would be silently ignored.
    const given = (['config', 'from-store', 'threads', 'batch', 'lanes'] as const).filter((flag) => values[flag] !== undefined).map((flag) => `--${flag}`);
    if (given.length > 0) throw new UsageError('bench', `${given.join(', ')} ${given.length === 1 ? 'sets' : 'set'} the sweep, which --suite ${suites.join(',')} does not run: add sweep to --suite`);
  }

  // stdout is for the result alone: whatever else writes there while the bench runs (a consumer's
  // console.log in a worker is piped to this process's stdout) goes to stderr with the progress.
  const stdoutWrite = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let report: BenchReport;
  try {
    report = await runBench(
      {
        quick: values.quick ?? false,
        suites,
        events,
        grid: { ...(threads ? { threads } : {}), ...(maxBatch ? { maxBatch } : {}), ...(lanes ? { lanes } : {}) },
        configFile: values.config === undefined ? undefined : resolve(values.config),
        fromStore: values['from-store'] ?? false,
        storePath: values.store === undefined ? undefined : resolve(values.store),
      },
      new Progress(),
    );
  } finally {
    process.stdout.write = stdoutWrite;
  }

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
    if (empty !== null) process.stderr.write(`${empty}: ${files.chart} says so instead of plotting (the chart needs the sweep, or the dispatch, durable or peers suite)\n`);
  }
  if (files.md) write(files.md, renderMarkdown(report, files.chart && empty === null ? { chart: relative(dirname(files.md), files.chart) } : {}));
  await out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));

  const failed = report.scenarios.some((s) => s.status === 'failed') || report.sweep.some((r) => r.status === 'failed') || [report.memory.overload, report.memory.overloadDurable, report.memory.replay].some((m) => m?.status === 'failed');
  return failed ? 1 : 0;
}
