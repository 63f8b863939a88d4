/**
 * `eventrail bench`: the tuning sweep of pool threads × batch size × lanes on
 * your consumers (src/cli/sweep/). This file is the command's surface alone:
 * the sweep, tinybench and the rest load with `await import()` when the
 * command runs, so the other commands never load them. The repository's full
 * benchmark (peers, charts, Markdown) is `npm run bench` in a checkout (bench/).
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { HELP_OPTION, STORE_OPTIONS, UsageError, intList, parse, positiveInt } from './args.js';
import type { Output } from './output.js';

/** Something the bench cannot do with what it was given (no events to replay, say): told in one line, not as a bug. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}

const WORK = ['trivial', 'hash'] as const;

export const BENCH_HELP = `Usage: eventrail bench [options]

Tunes pool threads × batch size × lanes: each combination runs on a bus of its
own (on a temporary store), measured in events/s (emit N, flush) and in
emit-to-handled latency at half that rate; the best setting is printed as a
snippet to paste.

With --config FILE, the sweep runs the config's consumers with its options
(with delivery.maxAttempts 1), on synthetic events of the types they subscribe
to, or with --from-store on events read from your store. Your consumers really
run: point what they call at a test environment.

Without --config, it runs built-in consumers (--work): two trivial ones, which
measure the bus itself, or one that hashes every payload (real CPU work per
event, where a second pool thread shows what it buys).

Options:
  --config FILE       tune the consumers and options of this config file
  --from-store        emit events read from the config's store (or --store PATH)
  --store PATH        with --from-store: the lmdb store to read events from
  --threads LIST      pool.maxThreads values to sweep, e.g. 1,2,4
  --batch LIST        dispatch.maxBatch values to sweep, e.g. 256,1024
  --lanes LIST        dispatch.lanes values to sweep, e.g. 8,32
  --work NAME         without --config: ${WORK.join(' or ')} consumers (default trivial)
  --events N          events per iteration (default 20000; 5000 with --quick)
  --quick             a short run: enough to rank settings, not to quote
  --json              print the report as JSON on stdout (progress stays on stderr)
  --out FILE.json     also write the JSON report to FILE
  -h, --help          this help

Examples:
  eventrail bench --quick --work hash --threads 1,2
  eventrail bench --config eventrail.json --threads 1,2,4 --batch 256,1024 --lanes 8,32
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
  work: { type: 'string' },
  quick: { type: 'boolean' },
  json: { type: 'boolean' },
  out: { type: 'string' },
} as const;

function checkFile(flag: string, value: string | undefined, extension: string): string | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value.startsWith('-')) throw new UsageError('bench', `--${flag} needs a file name, got \`${value}\``);
  if (!value.toLowerCase().endsWith(extension)) throw new UsageError('bench', `--${flag} writes a ${extension} file, got \`${value}\``);
  return resolve(value);
}

/** Options of the repository's full benchmark, which earlier versions of this command took. */
const FULL_BENCH_OPTIONS = ['--suite', '--md', '--chart'];

export async function benchCommand(args: readonly string[], out: Output): Promise<number> {
  const moved = args.map((a) => a.split('=')[0]!).find((a) => FULL_BENCH_OPTIONS.includes(a));
  if (moved !== undefined) {
    throw new UsageError(
      'bench',
      `${moved} is not an option of eventrail bench: the benchmark suites (peers, Markdown report, chart) are \`npm run bench\` in a checkout of eventrail`,
    );
  }
  const { values } = parse('bench', () => parseArgs({ args: [...args], options: OPTIONS, strict: true }));
  if (values.help) {
    await out.write(BENCH_HELP);
    return 0;
  }
  const threads = intList('bench', 'threads', values.threads, 1, 1024);
  const maxBatch = intList('bench', 'batch', values.batch, 1, 65_535);
  const lanes = intList('bench', 'lanes', values.lanes, 1, 4096);
  const events = positiveInt('bench', 'events', values.events, 10_000_000);
  const outFile = checkFile('out', values.out, '.json');
  if (values['from-store'] && values.config === undefined)
    throw new UsageError('bench', '--from-store needs --config FILE (the consumers to run, and the store to read)');
  if (values.store !== undefined && !values['from-store'])
    throw new UsageError(
      'bench',
      '--store is the store to read events from: use it with --from-store (the bench itself runs on a temporary store)',
    );
  const work = values.work;
  if (work !== undefined && !(WORK as readonly string[]).includes(work))
    throw new UsageError('bench', `--work takes ${WORK.join(' or ')}, got \`${work}\``);
  if (work !== undefined && values.config !== undefined)
    throw new UsageError('bench', "--work chooses built-in consumers: with --config the sweep runs the config's own");

  const [{ runTune }, { Progress }, { renderSweepText }] = await Promise.all([
    import('./sweep/tune.js'),
    import('./sweep/progress.js'),
    import('./sweep/text.js'),
  ]);
  // stdout is for the result alone: whatever else writes there while the bench runs (a consumer's
  // console.log in a worker is piped to this process's stdout) goes to stderr with the progress.
  const stdoutWrite = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let report: Awaited<ReturnType<typeof runTune>>;
  try {
    report = await runTune(
      {
        quick: values.quick ?? false,
        events,
        grid: { ...(threads ? { threads } : {}), ...(maxBatch ? { maxBatch } : {}), ...(lanes ? { lanes } : {}) },
        configFile: values.config === undefined ? undefined : resolve(values.config),
        fromStore: values['from-store'] ?? false,
        storePath: values.store === undefined ? undefined : resolve(values.store),
        work: work as (typeof WORK)[number] | undefined,
      },
      new Progress(),
    );
  } finally {
    process.stdout.write = stdoutWrite;
  }

  if (outFile) {
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`wrote ${outFile}\n`);
  }
  await out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderSweepText(report));
  return report.sweep.some((r) => r.status === 'failed') ? 1 : 0;
}
