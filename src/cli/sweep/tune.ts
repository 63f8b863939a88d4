/**
 * `eventrail bench`, as a function: the tuning sweep of pool threads × batch
 * size × lanes, on the consumers and options of a user's config file (or on
 * the sweep's own consumers), with progress on stderr; returns the report.
 * Every store it fills lives in a temporary folder removed at the end. The
 * repository's full benchmark (bench/, not shipped) runs this as its `sweep`
 * suite.
 */
import { availableParallelism } from 'node:os';
import { createBus } from '../../bus/bus.js';
import { Codec } from '../../codec.js';
import { InvalidOptionsError } from '../../errors.js';
import type { Event, EventInput, EventType } from '../../event/event.js';
import { eventTypeKey } from '../../event/event.js';
import { resolveOptions, type BusOptions, type ResolvedOptions } from '../../options.js';
import { openStore } from '../../store/open.js';
import { BenchError } from '../bench.js';
import { eventrailVersion } from '../version.js';
import { WORKLOADS, type Workload } from './consumers/paths.js';
import { syntheticInputs, typesFromSubscriptions } from './inputs.js';
import { loadAverage, machineInfo } from './machine.js';
import { FULL_SETTINGS, QUICK_SETTINGS, type MeasureSettings } from './measure.js';
import { Progress } from './progress.js';
import type { SweepReport, SweepResult } from './results.js';
import { bestSetting, combinations, runSweep, type Combination, type Grid, type SweepPlan } from './sweep.js';
import { TempFolders } from './temp.js';

export interface TuneOptions {
  readonly quick: boolean;
  /** Events per iteration. */
  readonly events?: number;
  /** Values to sweep; a dimension not given takes the config's value (or the default grid). */
  readonly grid?: Partial<Grid>;
  /** The user's config file: the sweep runs its consumers with its options. */
  readonly configFile?: string;
  /** Sweep on events read from the user's store instead of synthetic ones. */
  readonly fromStore?: boolean;
  /** The lmdb store folder to read with fromStore (default: the config's store). */
  readonly storePath?: string;
  /** Without a config file: the built-in consumers to run (default: the trivial ones). */
  readonly work?: Workload;
}

const SWEPT_ENV = ['EVENTRAIL_POOL_MAX_THREADS', 'EVENTRAIL_POOL_MIN_THREADS', 'EVENTRAIL_DISPATCH_MAX_BATCH', 'EVENTRAIL_DISPATCH_LANES'];

/** The grid when none is given: 1 and 2 threads (and 4 with 4+ cores), batches of 256 and 1024, 8 lanes. */
export function defaultGrid(): Grid {
  return { threads: availableParallelism() >= 4 ? [1, 2, 4] : [1, 2], maxBatch: [256, 1024], lanes: [8] };
}

export const defaultEvents = (quick: boolean) => (quick ? 5_000 : 20_000);

/** Interleaved rounds of a full run (see runSweep); a quick run measures once. */
export const FULL_ROUNDS = 3;

interface SweepSource {
  readonly consumers: readonly string[];
  readonly base: BusOptions;
  readonly inputs: EventInput[];
  readonly types: readonly string[];
  readonly source: 'synthetic' | 'store';
  readonly store: string;
  readonly grid: Grid;
  /** The options as the sweep runs them, for the report (the grid then sets its dimensions per combination). */
  readonly resolved: ResolvedOptions;
}

export async function runTune(options: TuneOptions, progress: Progress = new Progress()): Promise<SweepReport> {
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const quick = options.quick;
  const settings: MeasureSettings = quick ? QUICK_SETTINGS : FULL_SETTINGS;
  const events = options.events ?? defaultEvents(quick);
  const notes: string[] = [];
  const folders = new TempFolders();
  // Ctrl-C leaves no store folders behind. The signal is then raised again with its default action:
  // process.exit() would run native teardown under live lmdb and worker threads.
  const interrupted = (signal: NodeJS.Signals) => {
    folders.removeAll();
    process.stderr.write(`\neventrail bench: stopped by ${signal}\n`);
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  // createBus reads EVENTRAIL_* on top of its options: left set, these would silently override the grid.
  for (const name of SWEPT_ENV) {
    if (process.env[name] !== undefined) {
      notes.push(`${name}=${process.env[name]} was ignored: the sweep sets that option itself`);
      delete process.env[name];
    }
  }

  try {
    progress.line(`eventrail bench ${eventrailVersion()}${quick ? ' --quick' : ''}: sweep`);
    const source = await prepareSweep(options, events, notes, progress);
    const combos = combinations(source.grid);
    const rounds = quick ? 1 : FULL_ROUNDS;
    // A caller that counts steps across several runs (the repository's bench) has set the total already.
    if (progress.total === 0) progress.total = combos.length * rounds;
    const folderOf = new Map<Combination, string>();
    const plan: SweepPlan = {
      inputs: source.inputs,
      settings,
      latencyMs: quick ? 300 : 1500,
      options: (combo) => {
        const base = source.base;
        if (base.store?.kind === 'none') return base;
        const path = folders.make('sweep');
        folderOf.set(combo, path);
        return { ...base, store: { kind: 'lmdb', path } };
      },
      finished: (combo) => {
        const path = folderOf.get(combo);
        if (path !== undefined) folders.remove(path);
      },
    };
    const sweep: SweepResult[] = await runSweep(plan, combos, rounds, progress);
    const failed = sweep.reduce((n, r) => n + r.failedDeliveries, 0);
    if (failed > 0) {
      notes.push(
        `${failed} deliveries failed during the sweep (consumers threw or timed out; the sweep makes one attempt each). ` +
          (source.source === 'synthetic' ? 'Synthetic events may not be what your consumers expect: try --from-store.' : ''),
      );
    }
    return {
      schema: 'eventrail-bench/1',
      startedAt: startedAt.toISOString(),
      seconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
      machine: machineInfo(loadAtStart),
      packages: { eventrail: eventrailVersion() },
      config: {
        quick,
        events,
        settings: { ...settings, rounds },
        grid: source.grid,
        consumers: source.consumers,
        source: source.source,
        eventTypes: source.types,
        configFile: options.configFile ?? null,
        store: source.store,
        options: source.resolved,
      },
      sweep,
      best: bestSetting(sweep),
      notes,
    };
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    folders.removeAll();
  }
}

/** Consumers, options, events and grid of the sweep: the user's from their config, or the built-in ones. */
async function prepareSweep(options: TuneOptions, events: number, notes: string[], progress: Progress): Promise<SweepSource> {
  if (options.configFile === undefined) {
    if (options.fromStore) throw new BenchError('--from-store needs a config file (the store to read and the consumers to run)');
    const consumers = [...WORKLOADS[options.work ?? 'trivial']];
    const grid = { ...defaultGrid(), ...definedOnly(options.grid) };
    const base: BusOptions = { consumers };
    return {
      consumers,
      base,
      resolved: sweptStore(resolveOptions(base)),
      inputs: syntheticInputs(events, ['UserLoggedIn']),
      types: ['UserLoggedIn'],
      source: 'synthetic',
      store: 'lmdb, in a temporary folder',
      grid,
    };
  }
  const resolved = resolveOptions(options.configFile);
  if (resolved.consumers.length === 0) {
    throw new InvalidOptionsError(
      [{ path: 'consumers', message: 'consumers is empty: there is nothing to tune (list your consumer modules in "consumers")' }],
      options.configFile,
    );
  }
  const grid: Grid = {
    threads: options.grid?.threads ?? [resolved.pool.maxThreads],
    maxBatch: options.grid?.maxBatch ?? [resolved.dispatch.maxBatch],
    lanes: options.grid?.lanes ?? [resolved.dispatch.lanes],
  };
  const base = structuredClone(resolved) as unknown as BusOptions & {
    delivery: { maxAttempts: number };
    backpressure: { onOverflow: string };
  };
  base.delivery.maxAttempts = 1;
  notes.push('The sweep ran with delivery.maxAttempts 1: a failing consumer is counted, not retried with backoff.');
  if (base.backpressure.onOverflow === 'reject') {
    // The bench emits each iteration in one burst; with 'reject' the burst itself would be refused.
    base.backpressure.onOverflow = 'wait';
    notes.push(
      "The sweep ran with backpressure.onOverflow 'wait' (the config says 'reject'): each iteration emits its events in one burst.",
    );
  }
  const storeLabel =
    resolved.store.kind === 'none' ? 'none (as in the config)' : 'lmdb, in a temporary folder (your store is only read, with --from-store)';
  if (resolved.store.kind === 'fdb')
    notes.push('The config uses FoundationDB: the sweep ran on lmdb in a temporary folder, so store costs differ from production.');

  let inputs: EventInput[];
  let types: string[];
  let source: 'synthetic' | 'store';
  if (options.fromStore) {
    const path = options.storePath ?? (resolved.store.kind === 'lmdb' ? resolved.store.path : undefined);
    progress.line(`reading up to ${events.toLocaleString('en-US')} events from ${path ?? 'the configured store'}`);
    inputs = await inputsFromStore(resolved, path, events);
    if (inputs.length === 0) throw new BenchError(`the store ${path ?? ''} holds no events to emit`);
    types = [...new Set(inputs.map((i) => eventTypeKey(i.event_type)))];
    source = 'store';
    if (inputs.length < events) notes.push(`The store held ${inputs.length} events: each iteration emits those.`);
  } else {
    progress.line(`loading the consumers of ${options.configFile} to see which event types they subscribe to`);
    const probe = await createBus({ ...base, store: { kind: 'none' }, pool: { ...base.pool, minThreads: 1, maxThreads: 1 } } as BusOptions);
    const subscriptions = probe.consumers.map((c) => c.eventTypes);
    await probe.close();
    const eventTypes: EventType[] = typesFromSubscriptions(subscriptions);
    inputs = syntheticInputs(events, eventTypes);
    types = eventTypes.map(eventTypeKey);
    source = 'synthetic';
  }
  return {
    consumers: resolved.consumers.map((c) => c.module),
    base,
    resolved: sweptStore(base as unknown as ResolvedOptions),
    inputs,
    types,
    source,
    store: storeLabel,
    grid,
  };
}

/** The options with the store the sweep really uses: none as configured, else lmdb in a temporary folder (see the plan in runBench). */
function sweptStore(options: ResolvedOptions): ResolvedOptions {
  if (options.store.kind === 'none') return options;
  return { ...options, store: { kind: 'lmdb', path: 'a temporary folder per combination', prefix: 'eventrail' } };
}

/** Up to `limit` stored events as inputs: ids and timestamps are left out, so every emit stores a new event. */
async function inputsFromStore(resolved: ResolvedOptions, path: string | undefined, limit: number): Promise<EventInput[]> {
  const storeOptions =
    path === undefined
      ? resolved.store
      : { kind: 'lmdb' as const, path, prefix: resolved.store.kind === 'lmdb' ? resolved.store.prefix : 'eventrail' };
  if (storeOptions.kind === 'none')
    throw new BenchError("the config's store is { kind: 'none' }, which keeps no events: give --store PATH");
  const store = await openStore(storeOptions);
  const codec = new Codec();
  const inputs: EventInput[] = [];
  try {
    for await (const stored of store!.readEvents()) {
      const e = codec.decode<Event>(stored.bytes);
      inputs.push({
        event_type: e.event_type,
        payload: e.payload,
        metadata: {
          correlation_id: e.metadata.correlation_id,
          user_id: e.metadata.user_id,
          tenant_id: e.metadata.tenant_id,
          source: e.metadata.source,
        },
      });
      if (inputs.length >= limit) break;
    }
  } finally {
    await store!.close();
  }
  return inputs;
}

function definedOnly(grid: Partial<Grid> | undefined): Partial<Grid> {
  const out: { -readonly [K in keyof Grid]?: Grid[K] } = {};
  if (grid?.threads) out.threads = grid.threads;
  if (grid?.maxBatch) out.maxBatch = grid.maxBatch;
  if (grid?.lanes) out.lanes = grid.lanes;
  return out;
}
