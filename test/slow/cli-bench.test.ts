/**
 * The benchmarks as they are run, in child processes: `eventrail bench` (the
 * shipped tuning sweep) as a user runs it, and `npm run bench` (bench/main.ts,
 * the repository's full suites, each in a child process of its own) as a
 * developer does. The quick full run reports every scenario and peer in valid
 * JSON (and the same report as Markdown and an SVG chart); a sweep over a
 * user's config gives one result per combination and the best one as a
 * snippet. Nothing here asserts a speed: the machine is shared, only the
 * shape of the results is checked.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchReport, MeasuredScenario } from '../../bench/results.js';
import { HASH_CONSUMERS, TRIVIAL_CONSUMERS } from '../../src/cli/sweep/consumers/paths.js';
import type { SweepReport } from '../../src/cli/sweep/results.js';
import { createBus } from '../../src/index.js';
import { fixture, tempDir, uuid, type TempDir } from '../helpers.js';
import { CLI, cli, runScript, type CliResult } from '../fixtures/cli-run.js';
import { parseSvg } from '../fixtures/cli-svg.js';

const BENCH_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'main.js');

/** Runs `npm run bench -- ...args` (build/bench/main.js) in a child process. */
function devBench(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return runScript(BENCH_MAIN, args, options);
}

/** Relative specifiers of the static imports of a compiled module (not `await import()`). */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)';/gms), ...text.matchAll(/^import\s+'([^']+)';/gm)].map(
    (m) => m[1]!,
  );
}

/** Every module reached from `file` by static imports: files of the build, and package names. */
function staticGraph(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const spec of staticImports(file)) {
    if (spec.startsWith('.')) staticGraph(join(dirname(file), spec), seen);
    else seen.add(spec);
  }
  return seen;
}

const SCENARIOS = [
  'codec.json-event',
  'codec.msgpackr-event',
  'codec.event-writer-event',
  'codec.json-batch',
  'codec.msgpackr-batch',
  'codec.event-writer-batch',
  'dispatch.eventrail',
  'dispatch.per-event',
  'dispatch.per-event-tuned',
  'dispatch.pipeline',
  'dispatch.emitter',
  'store.group-commit',
  'store.commit-per-event',
  'store.lmdb-put',
  'durable.eventrail',
  'durable.eventrail-none',
  'durable.pipeline',
  'durable.literal',
  'durable.literal-tuned',
  'peers.eventrail',
  'peers.bullmq-add',
  'peers.bullmq-bulk',
];

function checkMeasured(s: MeasuredScenario): void {
  assert.ok(s.events > 0, s.id);
  assert.ok(s.timing.samples >= 1, `${s.id} samples`);
  assert.ok(s.timing.medianMs > 0 && s.timing.p99Ms >= s.timing.medianMs, `${s.id} median ${s.timing.medianMs}, p99 ${s.timing.p99Ms}`);
  assert.ok(Math.abs(s.eventsPerSec - (s.events / s.timing.medianMs) * 1000) < 1e-6 * s.eventsPerSec, `${s.id} events/s is N / median`);
}

let dir: TempDir;
before(() => {
  dir = tempDir('eventrail-cli-bench-');
});
after(() => dir.remove());

describe('npm run bench: every suite, each in a child process of its own', () => {
  test('--quick --json: every scenario and peer, ratios, the sweep, memory, machine and versions; the same report as JSON, Markdown and SVG files', async () => {
    const files = { out: dir.file('report.json'), md: dir.file('report.md'), chart: dir.file('chart.svg') };
    const r = await devBench(['--quick', '--events', '2000', '--json', '--out', files.out, '--md', files.md, '--chart', files.chart], {
      timeoutMs: 240_000,
    });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const report = JSON.parse(r.stdout) as BenchReport; // stdout holds the JSON and nothing else
    assert.equal(report.schema, 'eventrail-bench/1');
    assert.match(r.stderr, /^\[ ?1\/\d+ /m, 'progress on stderr');
    assert.match(r.stderr, /each suite in a child process/);
    const steps = r.stderr
      .split('\n')
      .filter((l) => /^\[ *\d+\/\d+ [^\]]*\] /.test(l))
      .map((l) => l.replace(/^\[[^\]]*\] /, '').split(':')[0]);
    const numbers = r.stderr
      .split('\n')
      .flatMap((l) => /^\[ *(\d+)\/(\d+) /.exec(l) ?? [])
      .filter((_, i) => i % 3 === 1)
      .map(Number);
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
      'the children count their steps in one sequence',
    );
    assert.deepEqual([...new Set(steps)], ['codec', 'dispatch', 'store', 'durable', 'sweep', 'peers', 'memory', 'cluster']);

    const ids = report.scenarios.map((s) => s.id);
    assert.deepEqual(ids, SCENARIOS);
    for (const s of report.scenarios) {
      if (s.status === 'skipped') {
        assert.ok(s.id.startsWith('peers.bullmq'), `${s.id} skipped: ${s.reason}`);
        assert.match(s.reason, /redis-server|bullmq/);
        assert.ok(
          report.notes.some((n) => n.includes(s.reason)),
          'a skip is explained in the notes',
        );
      } else {
        assert.equal(s.status, 'ok', `${s.id}: ${s.status === 'failed' ? s.error : ''}`);
        checkMeasured(s);
      }
    }
    const bytes = (id: string) => (report.scenarios.find((s) => s.id === id) as MeasuredScenario).extras.bytesPerEvent as number;
    assert.ok(bytes('codec.msgpackr-event') < bytes('codec.json-event'), 'msgpackr records are smaller than JSON');
    assert.ok(bytes('codec.event-writer-event') < bytes('codec.json-event'), "the bus's event writer is smaller than JSON");
    // Main-thread cost per event, for eventrail and the minimal pipeline it is measured against.
    for (const id of ['dispatch.eventrail', 'dispatch.pipeline', 'durable.eventrail', 'durable.pipeline']) {
      const extras = (report.scenarios.find((s) => s.id === id) as MeasuredScenario).extras;
      for (const key of ['mainBusyMicrosPerEvent', 'processCpuMicrosPerEvent', 'mainAllocatedBytesPerEvent']) {
        assert.ok(typeof extras[key] === 'number' && (extras[key] as number) > 0, `${id} ${key}: ${extras[key]}`);
      }
    }

    const ratio = (name: string) => report.ratios.find((x) => x.name === name);
    for (const [name, target] of [
      ['eventrail / piscina per event (defaults)', 10],
      ['eventrail / piscina per event (concurrentTasksPerWorker 16)', 4],
      ['eventrail / minimal pipeline (store none)', 0.6],
      ['durable eventrail / literal design (defaults)', 10],
      ['durable eventrail / literal design (concurrentTasksPerWorker 16)', 4],
      ['eventrail / minimal pipeline (durable)', 0.45],
      ['durable eventrail / eventrail with store none', 0.5],
    ] as const) {
      const found = ratio(name);
      assert.ok(found && typeof found.value === 'number' && found.value > 0, name);
      assert.equal(found.target, target);
      assert.equal(found.met, found.value >= target);
    }

    const { grid } = report.config;
    assert.equal(report.sweep.length, grid.threads.length * grid.maxBatch.length * grid.lanes.length);
    for (const c of report.sweep) {
      assert.equal(c.status, 'ok', c.error);
      assert.ok(c.eventsPerSec > 0 && c.latency !== null && c.latency.p99Ms >= c.latency.p50Ms);
    }
    assert.ok(report.best);

    // The overload runs twice, with store none and on the durable path (lmdb), each in its own child process.
    const { overload, overloadDurable, replay } = report.memory;
    for (const [o, store] of [
      [overload, 'none'],
      [overloadDurable, 'lmdb'],
    ] as const) {
      assert.equal(o?.status, 'ok', `${store}: ${o?.error}`);
      assert.equal(o.store, store);
      assert.equal(o.events, 100_000, 'the quick run emits 100k events');
      assert.ok(
        o.memory !== null &&
          o.memory.rss.peak >= o.memory.rss.start &&
          o.memory.heapUsed.peak >= o.memory.heapUsed.start &&
          o.maxPendingSeen <= o.maxPending,
      );
      assert.deepEqual(Object.keys(o.memory.along), ['10%', '50%', '90%']);
      if (process.platform === 'linux')
        assert.ok(o.memory.anonRss !== null && o.memory.anonRss.peak >= o.memory.anonRss.start, `${store}: anonymous RSS is read on Linux`);
    }
    assert.equal(overload?.storeMiB, null);
    assert.ok((overloadDurable?.storeMiB ?? 0) > 0, 'the durable overload wrote its events to lmdb');
    if (process.platform === 'linux') assert.ok(replay?.memory?.anonRss !== null, 'anonymous RSS is read on Linux');
    assert.equal(replay?.status, 'ok', replay?.error);
    assert.ok(replay.eventsPerSec > 0 && replay.timing !== null);

    // The cluster suite: three instance processes on one lmdb store against one, then a takeover after a SIGKILL.
    const cluster = report.cluster;
    assert.equal(cluster?.status, 'ok', cluster?.error);
    assert.ok(cluster.single !== null && cluster.cluster !== null && cluster.takeoverMs !== null);
    assert.equal(cluster.cluster.instances, 3);
    assert.equal(cluster.cluster.events, cluster.single.events);
    assert.ok(cluster.single.eventsPerSecPerGroup > 0 && cluster.cluster.eventsPerSecPerGroup > 0);
    assert.ok(cluster.takeoverMs > 0 && (cluster.victimLeases ?? 0) > 0);

    assert.ok(report.machine.cores >= 1 && report.machine.memoryGiB > 0 && report.machine.node === process.version);
    assert.equal(report.machine.loadAverage.start.length, 3);
    for (const pkg of ['eventrail', 'piscina', 'msgpackr', 'lmdb', 'tinybench']) assert.match(report.packages[pkg] ?? '', /^\d+\.\d+/, pkg);

    assert.deepEqual(JSON.parse(readFileSync(files.out, 'utf8')), report);
    const md = readFileSync(files.md, 'utf8');
    assert.match(md, /\| scenario \| events\/s \(median\) \|/);
    assert.match(md, /!\[events\/s against threads\]\(chart\.svg\)/);
    assert.match(md, /```json\n\{\n {2}"pool"/);
    assert.match(
      md,
      /\| measurement \| rate \| RSS start → peak → end \| anonymous RSS start → peak → end \| heap used start → peak → end \|/,
    );
    assert.match(md, /^\| overload, store none: 100,000 events into a 5 µs\/event consumer/m);
    assert.match(md, /^\| overload, store lmdb \([\d.]+ MiB store\): 100,000 events into a 5 µs\/event consumer/m);
    const svg = parseSvg(readFileSync(files.chart, 'utf8'));
    assert.equal(svg[0]!.tag, 'svg');
    assert.equal(svg.filter((e) => e.tag === 'polyline').length, grid.maxBatch.length);
  });

  test('without redis-server on the PATH, the BullMQ peers are skipped with the reason, and the rest runs', async () => {
    const r = await devBench(['--suite', 'peers', '--quick', '--events', '500', '--json'], { env: { PATH: dir.file('no-such-bin') } });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const report = JSON.parse(r.stdout) as BenchReport;
    const byId = new Map(report.scenarios.map((s) => [s.id, s]));
    assert.equal(byId.get('peers.eventrail')?.status, 'ok');
    for (const id of ['peers.bullmq-add', 'peers.bullmq-bulk']) {
      const s = byId.get(id);
      assert.equal(s?.status, 'skipped');
      assert.match(s.reason, /redis-server is not installed/);
    }
    assert.match(r.stderr, /skipped: redis-server is not installed/);
    assert.ok(report.ratios.every((x) => x.value === null));
  });

  test('--suite codec --chart: nothing to chart, so the chart says so; the JSON, Markdown and stdout are all written', async () => {
    const files = { out: dir.file('codec.json'), md: dir.file('codec.md'), chart: dir.file('codec.svg') };
    const r = await devBench([
      '--suite',
      'codec',
      '--quick',
      '--events',
      '500',
      '--json',
      '--out',
      files.out,
      '--md',
      files.md,
      '--chart',
      files.chart,
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const report = JSON.parse(r.stdout) as BenchReport;
    assert.ok(report.scenarios.length > 0 && report.scenarios.every((s) => s.suite === 'codec' && s.status === 'ok'));
    assert.equal(report.config.options, null, 'no sweep ran');
    assert.deepEqual(JSON.parse(readFileSync(files.out, 'utf8')), report);
    assert.match(
      r.stderr,
      /nothing to chart: no sweep, and no dispatch, durable or peers scenario measured events\/s: .*codec\.svg says so/,
    );
    const svg = parseSvg(readFileSync(files.chart, 'utf8'));
    assert.equal(svg[0]!.tag, 'svg');
    assert.match(svg.find((e) => e.attrs.class === 'message')?.text ?? '', /^nothing to chart: .*\(suites run: codec\)$/);
    const md = readFileSync(files.md, 'utf8');
    assert.match(md, /\| scenario \| events\/s \(median\) \|/);
    assert.doesNotMatch(md, /!\[events\/s against threads\]/, 'no link to an empty chart');
    assert.doesNotMatch(r.stderr, /RangeError|\n\s+at /, 'no stack trace');
  });
});

describe('eventrail bench: the tuning sweep a user runs', () => {
  test('the command loads the sweep only when it runs: no other command (nor --version) loads it, tinybench or a Redis client', () => {
    const graph = staticGraph(CLI);
    const reached = [...graph].filter((m) => m.includes(`${'/'}sweep${'/'}`) || ['tinybench', 'bullmq', 'ioredis'].includes(m));
    assert.deepEqual(reached, [], `${CLI} loads these statically`);
    assert.ok(
      [...graph].some((m) => m.endsWith(join('cli', 'bench.js'))),
      'the graph was walked (the bench command module is in it)',
    );
  });

  test('--version comes from the package, not from the bench', async () => {
    const r = await cli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(r.stdout.trim(), pkg.version);
  });

  test('without --config: the sweep on the trivial consumers; --work hash runs the hashing one, and 2 threads are measured beside 1', async () => {
    const plain = await cli(['bench', '--quick', '--events', '500', '--threads', '1', '--batch', '256', '--json']);
    assert.equal(plain.code, 0, plain.stderr.slice(-3000));
    const trivial = JSON.parse(plain.stdout) as SweepReport;
    assert.deepEqual(trivial.config.consumers, [...TRIVIAL_CONSUMERS]);
    assert.deepEqual(trivial.config.grid, { threads: [1], maxBatch: [256], lanes: [8] });
    assert.equal(trivial.sweep.length, 1);
    assert.equal('scenarios' in trivial, false, 'no suites: those are npm run bench');

    const r = await cli(['bench', '--work', 'hash', '--quick', '--events', '500', '--threads', '1,2', '--batch', '256', '--json']);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const report = JSON.parse(r.stdout) as SweepReport;
    assert.deepEqual(report.config.consumers, [...HASH_CONSUMERS]);
    assert.deepEqual(
      report.sweep.map((c) => [c.threads, c.status, c.failedDeliveries]),
      [
        [1, 'ok', 0],
        [2, 'ok', 0],
      ],
    );
    assert.ok(report.sweep.every((c) => c.eventsPerSec > 0));
  });

  test('what a consumer prints goes to stderr: stdout holds the JSON report alone', async () => {
    const config = dir.file('chatty.json');
    writeFileSync(
      config,
      JSON.stringify({ store: { kind: 'none' }, consumers: [fixture('cli-chatty')], backpressure: { onOverflow: 'reject' } }),
    );
    const r = await cli(['bench', '--config', config, '--threads', '1', '--quick', '--events', '200', '--json']);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const report = JSON.parse(r.stdout) as SweepReport;
    assert.equal(report.sweep.length, 1);
    assert.equal(report.config.store, 'none (as in the config)');
    assert.ok(
      report.notes.some((n) => n.includes("backpressure.onOverflow 'wait'")),
      report.notes.join('\n'),
    );
    assert.equal(report.sweep[0]!.status, 'ok');
    assert.match(r.stderr, /^handled [0-9a-f-]{36}$/m);
  });

  describe("with --config: the sweep on the user's consumers", () => {
    let config: string;
    let userStore: string;

    before(() => {
      userStore = dir.file('user-store');
      config = dir.file('eventrail.json');
      writeFileSync(
        config,
        JSON.stringify({ store: { kind: 'lmdb', path: userStore }, consumers: [fixture('cli-counter')], pool: { maxThreads: 3 } }),
      );
    });

    test("one result per combination, on events of the types the consumers subscribe to; the user's store is left alone", async () => {
      const r = await cli(['bench', '--config', config, '--threads', '1,2', '--batch', '64,256', '--quick', '--events', '1000', '--json']);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const report = JSON.parse(r.stdout) as SweepReport;
      assert.deepEqual(report.config.grid, { threads: [1, 2], maxBatch: [64, 256], lanes: [8] });
      assert.deepEqual(
        report.sweep.map((c) => [c.threads, c.maxBatch, c.lanes]),
        [
          [1, 64, 8],
          [1, 256, 8],
          [2, 64, 8],
          [2, 256, 8],
        ],
      );
      for (const c of report.sweep) {
        assert.equal(c.status, 'ok', c.error);
        assert.equal(c.events, 1000);
        assert.ok(c.eventsPerSec > 0 && c.timing !== null && c.timing.samples >= 1);
        assert.ok(c.latency !== null && Number.isFinite(c.latency.p50Ms) && Number.isFinite(c.latency.p99Ms));
        assert.equal(c.failedDeliveries, 0);
      }
      assert.deepEqual(report.config.eventTypes, ['UserLoggedIn', 'Custom:OrderPlaced']);
      assert.equal(report.config.source, 'synthetic');
      assert.equal(report.config.configFile, config);
      const best = report.best!;
      assert.ok(report.sweep.some((c) => c.threads === best.threads && c.maxBatch === best.maxBatch && c.lanes === best.lanes));
      assert.deepEqual(best.config, { pool: { maxThreads: best.threads }, dispatch: { maxBatch: best.maxBatch, lanes: best.lanes } });
      assert.equal(existsSync(userStore), false, 'the bench ran on a temporary store');
    });

    test('two lane counts: one result per combination; the JSON records every resolved option', async () => {
      const tuned = dir.file('tuned.json');
      writeFileSync(
        tuned,
        JSON.stringify({
          store: { kind: 'lmdb', path: userStore },
          consumers: [fixture('cli-counter')],
          pool: { concurrentTasksPerWorker: 2 },
          dispatch: { lingerMs: 3, partitionBy: 'tenant' },
        }),
      );
      const out = dir.file('lanes.json');
      const r = await cli([
        'bench',
        '--config',
        tuned,
        '--threads',
        '1',
        '--batch',
        '64',
        '--lanes',
        '2,4',
        '--quick',
        '--events',
        '500',
        '--json',
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const report = JSON.parse(r.stdout) as SweepReport;
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), report);
      assert.deepEqual(report.config.grid, { threads: [1], maxBatch: [64], lanes: [2, 4] });
      assert.deepEqual(
        report.sweep.map((c) => [c.threads, c.maxBatch, c.lanes]),
        [
          [1, 64, 2],
          [1, 64, 4],
        ],
      );
      for (const c of report.sweep) {
        assert.equal(c.status, 'ok', c.error);
        assert.equal(c.events, 500);
        assert.ok(c.eventsPerSec > 0);
      }
      const options = report.config.options;
      assert.ok(options, 'the resolved options are recorded');
      assert.equal(options.pool.concurrentTasksPerWorker, 2);
      assert.equal(options.dispatch.lingerMs, 3);
      assert.equal(options.dispatch.partitionBy, 'tenant');
      assert.equal(options.delivery.maxAttempts, 1, 'as the sweep ran it');
      assert.equal(options.delivery.handlerTimeoutMs, 30_000, 'defaults are resolved too');
      assert.equal(options.checkpoint.intervalMs, 200);
      assert.equal(options.coordination.leaseMs, 10_000);
      assert.deepEqual(options.consumers, [{ module: fixture('cli-counter'), options: {} }]);
      assert.deepEqual(
        options.store,
        { kind: 'lmdb', path: 'a temporary folder per combination', prefix: 'eventrail' },
        "the store the sweep used, not the user's",
      );
    });

    test("--from-store replays the user's stored events; without --json the tables and the snippet go to stdout", async () => {
      const bus = await createBus({ store: { kind: 'lmdb', path: userStore }, consumers: [] });
      const user = uuid();
      await bus.emitMany(
        Array.from({ length: 50 }, (_, i) => ({
          event_type: i % 2 === 0 ? ('UserLoggedIn' as const) : { Custom: 'OrderPlaced' },
          payload: { i },
          metadata: { source: 'shop', user_id: user },
        })),
      );
      await bus.close();
      const r = await cli(['bench', '--config', config, '--from-store', '--threads', '1', '--quick', '--events', '500']);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      assert.match(r.stdout, /Sweep: 1 consumer module\(s\), store events/);
      assert.match(r.stdout, /threads\s+maxBatch\s+lanes\s+events\/s \(median\)/);
      assert.match(r.stdout, /Best setting: 1 thread\(s\), maxBatch \d+, 8 lanes/);
      const snippet = /Paste into your config file:\n(\{[\s\S]*?\n\})/.exec(r.stdout)?.[1];
      assert.ok(snippet, r.stdout);
      assert.deepEqual(JSON.parse(snippet), { pool: { maxThreads: 1 }, dispatch: { maxBatch: 1024, lanes: 8 } });
      assert.match(r.stdout, /The store held 50 events/);
    });
  });
});
