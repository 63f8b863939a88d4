/**
 * `npm run bench`, as a function: runs the suites one after another, each in
 * a child process of its own (suite-child.ts; fresh heap, nothing loaded by
 * another suite), with its scenarios interleaved in rounds inside it; then the
 * memory steps, each in a child of its own too. Returns the report. Every
 * store it fills lives in a temporary folder removed at the end.
 */
import { fork } from 'node:child_process';
import { TRIVIAL_CONSUMERS } from '../src/cli/sweep/consumers/paths.js';
import { FULL_SETTINGS, QUICK_SETTINGS, type MeasureSettings } from '../src/cli/sweep/measure.js';
import { Progress } from '../src/cli/sweep/progress.js';
import type { SweepReport } from '../src/cli/sweep/results.js';
import { combinations } from '../src/cli/sweep/sweep.js';
import { TempFolders } from '../src/cli/sweep/temp.js';
import { FULL_ROUNDS, defaultEvents, defaultGrid } from '../src/cli/sweep/tune.js';
import { eventrailVersion } from '../src/cli/version.js';
import { loadAverage, machineInfo, packageVersions } from './machine.js';
import type { ClusterOptions } from './cluster.js';
import { OVERLOAD, type OverloadOptions } from './memory.js';
import { inChild } from './memory-child.js';
import type {
  BenchReport,
  ClusterResult,
  MemoryTrace,
  OverloadResult,
  OverloadStore,
  RatioResult,
  ReplayResult,
  ScenarioResult,
  SuiteName,
} from './results.js';
import { stepsOf, type RatioSpec } from './scenario.js';
import { planSuite, type SuiteChildOptions, type SuiteOutcome } from './suites.js';

export interface BenchOptions {
  readonly quick: boolean;
  /** Suites to run; default: every suite. */
  readonly suites?: readonly SuiteName[];
  /** Events per iteration. */
  readonly events?: number;
}

/** Every suite, in the order a full run takes them. */
export const ALL_SUITES: readonly SuiteName[] = ['codec', 'dispatch', 'store', 'durable', 'sweep', 'peers', 'memory', 'cluster'];

export async function runBench(options: BenchOptions, progress: Progress = new Progress()): Promise<BenchReport> {
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const quick = options.quick;
  const settings: MeasureSettings = quick ? QUICK_SETTINGS : FULL_SETTINGS;
  const events = options.events ?? defaultEvents(quick);
  const wanted = new Set(options.suites ?? ALL_SUITES);
  const suites = ALL_SUITES.filter((s) => wanted.has(s));
  const rounds = quick ? 1 : FULL_ROUNDS;
  const notes: string[] = [];
  const folders = new TempFolders();
  const interrupted = (signal: NodeJS.Signals) => {
    // The children get the signal too (same process group) and clean up after themselves.
    folders.removeAll();
    process.stderr.write(`\nnpm run bench: stopped by ${signal}\n`);
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    progress.line(`eventrail bench ${eventrailVersion()}${quick ? ' --quick' : ''}: ${suites.join(', ')}, each suite in a child process`);
    // The steps of every suite, counted here so that the progress lines of all children share one count.
    const stepsOfSuite = new Map<SuiteName, number>();
    const dry = { quick, inputs: [], folder: () => '' };
    for (const s of suites) {
      if (s === 'sweep') stepsOfSuite.set(s, combinations(defaultGrid()).length * rounds);
      else if (s === 'memory') stepsOfSuite.set(s, 3);
      else if (s === 'cluster') stepsOfSuite.set(s, 1);
      else stepsOfSuite.set(s, stepsOf((await planSuite(s, dry)).scenarios, rounds));
    }
    progress.total = [...stepsOfSuite.values()].reduce((a, b) => a + b, 0);
    let stepsBefore = 0;
    /** Steps this process's progress has counted so far (its own, and the children's it skipped over). */
    let countedHere = 0;

    const scenarios: ScenarioResult[] = [];
    const ratioSpecs: RatioSpec[] = [];
    let sweep: SweepReport | null = null;
    let overload: OverloadResult | null = null;
    let overloadDurable: OverloadResult | null = null;
    let replay: ReplayResult | null = null;
    let cluster: ClusterResult | null = null;
    for (const suite of suites) {
      const childOptions: SuiteChildOptions = { quick, events, rounds, firstStep: stepsBefore, totalSteps: progress.total };
      stepsBefore += stepsOfSuite.get(suite)!;
      if (suite === 'memory' || suite === 'cluster') {
        // Steps in this process: first count those the children took since this process last counted.
        for (; countedHere < childOptions.firstStep; countedHere++) progress.skip();
        if (suite === 'memory') ({ overload, overloadDurable, replay } = await memorySteps(quick, folders, progress));
        else cluster = await clusterStep(events, folders, progress);
        countedHere += stepsOfSuite.get(suite)!;
        continue;
      }
      const outcome = await inSuiteChild(suite, childOptions).catch((err: Error) => err);
      if (outcome instanceof Error) {
        progress.note(outcome.message);
        if (suite === 'sweep') notes.push(`the sweep failed: ${outcome.message}`);
        else
          for (const p of (await planSuite(suite, dry)).scenarios)
            scenarios.push({ id: p.id, suite: p.suite, name: p.name, role: p.role, status: 'failed', error: outcome.message });
        continue;
      }
      if (outcome.kind === 'sweep') {
        sweep = outcome.report;
        notes.push(...outcome.report.notes);
      } else {
        scenarios.push(...outcome.scenarios);
        ratioSpecs.push(...outcome.ratios);
      }
    }
    for (const s of scenarios) if (s.status === 'skipped') notes.push(`${s.name} was skipped: ${s.reason}`);

    const byId = new Map(scenarios.map((s) => [s.id, s]));
    return {
      schema: 'eventrail-bench/1',
      startedAt: startedAt.toISOString(),
      seconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
      machine: machineInfo(loadAtStart),
      packages: packageVersions(),
      config: {
        quick,
        suites,
        events,
        settings: { ...settings, rounds },
        grid: sweep?.config.grid ?? { threads: [], maxBatch: [], lanes: [] },
        consumers: sweep?.config.consumers ?? [...TRIVIAL_CONSUMERS],
        source: 'synthetic',
        eventTypes: ['UserLoggedIn'],
        configFile: null,
        store: 'lmdb, in a temporary folder',
        options: sweep?.config.options ?? null,
      },
      scenarios,
      ratios: ratioSpecs.map((r) => ratioOf(r, byId)),
      sweep: sweep?.sweep ?? [],
      best: sweep?.best ?? null,
      memory: { overload, overloadDurable, replay },
      cluster,
      notes,
    };
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    folders.removeAll();
  }
}

/** Runs one suite in a child process of its own (suite-child.ts); its progress lines go to this process's stderr. */
function inSuiteChild(suite: Exclude<SuiteName, 'memory' | 'cluster'>, options: SuiteChildOptions): Promise<SuiteOutcome> {
  return new Promise<SuiteOutcome>((resolve, reject) => {
    const child = fork(new URL('./suite-child.js', import.meta.url), [suite, JSON.stringify(options)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let outcome: SuiteOutcome | undefined;
    child.on('message', (message: SuiteOutcome) => (outcome = message));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (outcome !== undefined) resolve(outcome);
      else reject(new Error(`the ${suite} suite's child process exited with ${signal ?? code} before its result`));
    });
  });
}

/** Peak memory of 1M events (100k quick) into a slow consumer, store none and lmdb, and of a replay: each in a child of its own. */
async function memorySteps(quick: boolean, folders: TempFolders, progress: Progress): Promise<BenchReport['memory']> {
  const memoryEvents = quick ? 100_000 : 1_000_000;
  const overloadOn = async (store: OverloadStore): Promise<OverloadResult> => {
    progress.step(`memory: emit ${memoryEvents.toLocaleString('en-US')} events into a slow consumer, maxPending 10 000, store ${store}`);
    const folder = store === 'lmdb' ? folders.make('overload') : undefined;
    const options: OverloadOptions = { ...OVERLOAD, events: memoryEvents, store, ...(folder === undefined ? {} : { folder }) };
    const result = await inChild<OverloadResult>('overload', options, (t) => progress.note(t)).catch((err: Error) =>
      failedOverload(options, err),
    );
    if (folder !== undefined) folders.remove(folder);
    if (result.status === 'ok')
      progress.note(`${Math.round(result.eventsPerSec).toLocaleString('en-US')} events/s; ${memoryNote(result.memory)}`);
    return result;
  };
  const overload = await overloadOn('none');
  const overloadDurable = await overloadOn('lmdb');
  progress.step(`memory: replay ${memoryEvents.toLocaleString('en-US')} stored events`);
  const replaySettings: MeasureSettings = { timeMs: 0, minIterations: quick ? 2 : 3, warmupMs: 0, warmupIterations: 1 };
  const replay = await inChild<ReplayResult>(
    'replay',
    { events: memoryEvents, folder: folders.make('replay'), settings: replaySettings },
    (t) => progress.note(t),
  ).catch((err: Error) => failedReplay(memoryEvents, err));
  if (replay.status === 'ok')
    progress.note(`${Math.round(replay.eventsPerSec).toLocaleString('en-US')} events/s; ${memoryNote(replay.memory)}`);
  return { overload, overloadDurable, replay };
}

/** The cluster suite (cluster.ts) in a child of its own: 3 instance processes on one lmdb store, `events` each. */
async function clusterStep(events: number, folders: TempFolders, progress: Progress): Promise<ClusterResult> {
  const instances = 3;
  progress.step(
    `cluster: ${instances} instances on one lmdb store, ${events.toLocaleString('en-US')} events each, 2 groups; then a SIGKILL and the takeover`,
  );
  const options: ClusterOptions = { folders: [folders.make('cluster-one'), folders.make('cluster-three')], events, instances };
  const result = await inChild<ClusterResult>('cluster', options, (t) => progress.note(t)).catch((err: Error): ClusterResult => ({
    status: 'failed',
    error: err.message,
    instances,
    eventsPerInstance: events,
    groups: 2,
    partitions: 0,
    leaseMs: 0,
    renewMs: 0,
    checkpointMs: 0,
    single: null,
    cluster: null,
    takeoverMs: null,
    lapseMs: null,
    victimLeases: null,
  }));
  for (const folder of options.folders) folders.remove(folder);
  return result;
}

function memoryNote(m: MemoryTrace | null): string {
  if (m === null) return '';
  const own = m.anonRss === null ? '' : `, anonymous RSS ${m.anonRss.start} → peak ${m.anonRss.peak} MiB`;
  return `RSS ${m.rss.start} → peak ${m.rss.peak} MiB${own}`;
}

export function ratioOf(spec: RatioSpec, byId: ReadonlyMap<string, ScenarioResult>): RatioResult {
  const a = byId.get(spec.of);
  const b = byId.get(spec.to);
  const value = a?.status === 'ok' && b?.status === 'ok' && b.eventsPerSec > 0 ? a.eventsPerSec / b.eventsPerSec : null;
  const target = spec.target ?? null;
  return { name: spec.name, of: spec.of, to: spec.to, value, target, met: value === null || target === null ? null : value >= target };
}

function failedOverload(options: OverloadOptions, err: Error): OverloadResult {
  return {
    status: 'failed',
    error: err.message,
    store: options.store,
    storeMiB: null,
    events: options.events,
    maxPending: options.maxPending,
    slowConsumerMicros: options.slowConsumerMicros,
    seconds: 0,
    eventsPerSec: 0,
    memory: null,
    maxPendingSeen: 0,
  };
}

function failedReplay(events: number, err: Error): ReplayResult {
  return {
    status: 'failed',
    error: err.message,
    events,
    fillSeconds: 0,
    storeMiB: 0,
    timing: null,
    eventsPerSec: 0,
    eventsPerSecP99: 0,
    memory: null,
  };
}
