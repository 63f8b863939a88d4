/**
 * `eventrail bench`, as a function: plans the steps (suites, sweep, peers,
 * memory), runs them one after another with progress on stderr, and returns the
 * report. Every store it fills lives in a temporary folder removed at the end.
 */
import { availableParallelism } from 'node:os';
import { createBus } from '../bus/bus.js';
import { Codec } from '../codec.js';
import { InvalidOptionsError } from '../errors.js';
import type { Event, EventInput, EventType } from '../event/event.js';
import { eventTypeKey } from '../event/event.js';
import { resolveOptions, type BusOptions, type ResolvedOptions } from '../options.js';
import { openStore } from '../store/open.js';
import { TRIVIAL_CONSUMERS } from './consumers/paths.js';
import { syntheticInputs, typesFromSubscriptions } from './inputs.js';
import { eventrailVersion, loadAverage, machineInfo, packageVersions } from './machine.js';
import { FULL_SETTINGS, QUICK_SETTINGS, type MeasureSettings } from './measure.js';
import { OVERLOAD, type OverloadOptions } from './memory.js';
import { inChild } from './memory-child.js';
import { bullmqMissing } from './peers/bullmq.js';
import { killRedisServers } from './peers/redis-server.js';
import { Progress } from './progress.js';
import type { BenchReport, MemoryTrace, OverloadResult, OverloadStore, RatioResult, ReplayResult, ScenarioResult, SuiteName, SweepResult } from './results.js';
import { runInterleaved, stepsOf, type RatioSpec, type Suite, type SuiteContext } from './scenario.js';
import { codecSuite } from './suites/codec.js';
import { dispatchSuite } from './suites/dispatch.js';
import { durableSuite } from './suites/durable.js';
import { peersSuite } from './suites/peers.js';
import { storeSuite } from './suites/store.js';
import { bestSetting, combinations, runSweep, type Combination, type Grid, type SweepPlan } from './sweep.js';
import { TempFolders } from './temp.js';

export interface BenchOptions {
  readonly quick: boolean;
  /** Suites to run; default: every suite, or only the sweep with a config file. */
  readonly suites?: readonly SuiteName[];
  /** Events per iteration. */
  readonly events?: number;
  /** Values to sweep; a dimension not given takes the config's value (or the bench's default grid). */
  readonly grid?: Partial<Grid>;
  /** The user's config file: the sweep runs its consumers with its options. */
  readonly configFile?: string;
  /** Sweep on events read from the user's store instead of synthetic ones. */
  readonly fromStore?: boolean;
  /** The lmdb store folder to read with fromStore (default: the config's store). */
  readonly storePath?: string;
}

/** Something the bench cannot do with what it was given (no events to replay, say): told in one line, not as a bug. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}

const SWEPT_ENV = ['EVENTRAIL_POOL_MAX_THREADS', 'EVENTRAIL_POOL_MIN_THREADS', 'EVENTRAIL_DISPATCH_MAX_BATCH', 'EVENTRAIL_DISPATCH_LANES'];

/** The bench's grid when none is given: 1 and 2 threads (and 4 with 4+ cores), batches of 256 and 1024, 8 lanes. */
export function defaultGrid(): Grid {
  return { threads: availableParallelism() >= 4 ? [1, 2, 4] : [1, 2], maxBatch: [256, 1024], lanes: [8] };
}

export const defaultEvents = (quick: boolean) => (quick ? 5_000 : 20_000);

/** Rounds of a full run's suites (interleaved, see runInterleaved); a quick run measures once. */
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

export async function runBench(options: BenchOptions, progress: Progress = new Progress()): Promise<BenchReport> {
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const quick = options.quick;
  const settings: MeasureSettings = quick ? QUICK_SETTINGS : FULL_SETTINGS;
  const events = options.events ?? defaultEvents(quick);
  const suites: SuiteName[] = [...(options.suites ?? (options.configFile ? ['sweep'] : ['codec', 'dispatch', 'store', 'durable', 'sweep', 'peers', 'memory']))];
  const notes: string[] = [];
  const folders = new TempFolders();
  // Ctrl-C leaves no store folders or redis-server behind. The signal is then raised again with its
  // default action: process.exit() would run native teardown under live lmdb and worker threads.
  const interrupted = (signal: NodeJS.Signals) => {
    killRedisServers();
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
    if (process.env[name] !== undefined && suites.includes('sweep')) {
      notes.push(`${name}=${process.env[name]} was ignored: the sweep sets that option itself`);
      delete process.env[name];
    }
  }

  try {
    progress.line(`eventrail bench ${eventrailVersion()}${quick ? ' --quick' : ''}: ${suites.join(', ')}`);
    const sweepSource = suites.includes('sweep') ? await prepareSweep(options, events, notes, progress) : null;

    const ctx: SuiteContext = {
      quick,
      inputs: syntheticInputs(events, ['UserLoggedIn']),
      folder: (label) => folders.make(label),
    };
    const planned: Suite[] = [];
    if (suites.includes('codec')) planned.push(codecSuite(ctx));
    if (suites.includes('dispatch')) planned.push(dispatchSuite(ctx));
    if (suites.includes('store')) planned.push(storeSuite(ctx));
    if (suites.includes('durable')) planned.push(durableSuite(ctx));
    // The peers run after the sweep: setting up BullMQ imports ioredis, which slows V8's string paths for
    // the rest of the process (see writeName in src/codec.ts), so whatever ran after it would be measured
    // in a changed process. The memory steps run in child processes of their own.
    const peers = suites.includes('peers') ? peersSuite(ctx, await bullmqMissing()) : null;
    const combos = sweepSource ? combinations(sweepSource.grid) : [];
    const memorySteps = suites.includes('memory') ? 3 : 0;
    const rounds = quick ? 1 : FULL_ROUNDS;
    progress.total = [...planned, ...(peers ? [peers] : [])].reduce((n, s) => n + stepsOf(s.scenarios, rounds), 0) + combos.length * rounds + memorySteps;

    const scenarios: ScenarioResult[] = [];
    for (const suite of planned) scenarios.push(...(await runInterleaved(suite.scenarios, settings, rounds, progress)));

    const sweep: SweepResult[] = [];
    if (sweepSource) {
      const folderOf = new Map<Combination, string>();
      const plan: SweepPlan = {
        inputs: sweepSource.inputs,
        settings,
        latencyMs: quick ? 300 : 1500,
        options: (combo) => {
          const base = sweepSource.base;
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
      sweep.push(...(await runSweep(plan, combos, rounds, progress)));
      const failed = sweep.reduce((n, r) => n + r.failedDeliveries, 0);
      if (failed > 0) {
        notes.push(
          `${failed} deliveries failed during the sweep (consumers threw or timed out; the sweep makes one attempt each). ` +
            (sweepSource.source === 'synthetic' ? 'Synthetic events may not be what your consumers expect: try --from-store.' : ''),
        );
      }
    }

    if (peers) {
      planned.push(peers);
      scenarios.push(...(await runInterleaved(peers.scenarios, settings, rounds, progress)));
    }
    for (const s of scenarios) if (s.status === 'skipped') notes.push(`${s.name} was skipped: ${s.reason}`);

    let overload: OverloadResult | null = null;
    let overloadDurable: OverloadResult | null = null;
    let replay: ReplayResult | null = null;
    if (memorySteps > 0) {
      const memoryEvents = quick ? 100_000 : 1_000_000;
      const overloadOn = async (store: OverloadStore): Promise<OverloadResult> => {
        progress.step(`memory: emit ${memoryEvents.toLocaleString('en-US')} events into a slow consumer, maxPending 10 000, store ${store}`);
        const folder = store === 'lmdb' ? folders.make('overload') : undefined;
        const options: OverloadOptions = { ...OVERLOAD, events: memoryEvents, store, ...(folder === undefined ? {} : { folder }) };
        const result = await inChild<OverloadResult>('overload', options, (t) => progress.note(t)).catch((err: Error) => failedOverload(options, err));
        if (folder !== undefined) folders.remove(folder);
        if (result.status === 'ok') progress.note(`${Math.round(result.eventsPerSec).toLocaleString('en-US')} events/s; ${memoryNote(result.memory)}`);
        return result;
      };
      overload = await overloadOn('none');
      overloadDurable = await overloadOn('lmdb');
      progress.step(`memory: replay ${memoryEvents.toLocaleString('en-US')} stored events`);
      const replaySettings: MeasureSettings = { timeMs: 0, minIterations: quick ? 2 : 3, warmupMs: 0, warmupIterations: 1 };
      replay = await inChild<ReplayResult>('replay', { events: memoryEvents, folder: folders.make('replay'), settings: replaySettings }, (t) => progress.note(t)).catch(
        (err: Error) => failedReplay(memoryEvents, err),
      );
      if (replay.status === 'ok') progress.note(`${Math.round(replay.eventsPerSec).toLocaleString('en-US')} events/s; ${memoryNote(replay.memory)}`);
    }

    const byId = new Map(scenarios.map((s) => [s.id, s]));
    const ratios = planned.flatMap((s) => s.ratios).map((r) => ratioOf(r, byId));
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
        grid: sweepSource?.grid ?? { threads: [], maxBatch: [], lanes: [] },
        consumers: sweepSource?.consumers ?? [...TRIVIAL_CONSUMERS],
        source: sweepSource?.source ?? 'synthetic',
        eventTypes: sweepSource?.types ?? ['UserLoggedIn'],
        configFile: options.configFile ?? null,
        store: sweepSource?.store ?? 'lmdb, in a temporary folder',
        options: sweepSource?.resolved ?? null,
      },
      scenarios,
      ratios,
      sweep,
      best: bestSetting(sweep),
      memory: { overload, overloadDurable, replay },
      notes,
    };
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    folders.removeAll();
  }
}

function memoryNote(m: MemoryTrace | null): string {
  if (m === null) return '';
  const own = m.anonRss === null ? '' : `, anonymous RSS ${m.anonRss.start} → peak ${m.anonRss.peak} MiB`;
  return `RSS ${m.rss.start} → peak ${m.rss.peak} MiB${own}`;
}

function ratioOf(spec: RatioSpec, byId: ReadonlyMap<string, ScenarioResult>): RatioResult {
  const a = byId.get(spec.of);
  const b = byId.get(spec.to);
  const value = a?.status === 'ok' && b?.status === 'ok' && b.eventsPerSec > 0 ? a.eventsPerSec / b.eventsPerSec : null;
  const target = spec.target ?? null;
  return { name: spec.name, of: spec.of, to: spec.to, value, target, met: value === null || target === null ? null : value >= target };
}

/** Consumers, options, events and grid of the sweep: the user's from their config, or the bench's own. */
async function prepareSweep(options: BenchOptions, events: number, notes: string[], progress: Progress): Promise<SweepSource> {
  if (options.configFile === undefined) {
    if (options.fromStore) throw new BenchError('--from-store needs a config file (the store to read and the consumers to run)');
    const grid = { ...defaultGrid(), ...definedOnly(options.grid) };
    const base: BusOptions = { consumers: [...TRIVIAL_CONSUMERS] };
    return {
      consumers: [...TRIVIAL_CONSUMERS],
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
    throw new InvalidOptionsError([{ path: 'consumers', message: 'consumers is empty: there is nothing to tune (list your consumer modules in "consumers")' }], options.configFile);
  }
  const grid: Grid = {
    threads: options.grid?.threads ?? [resolved.pool.maxThreads],
    maxBatch: options.grid?.maxBatch ?? [resolved.dispatch.maxBatch],
    lanes: options.grid?.lanes ?? [resolved.dispatch.lanes],
  };
  const base = structuredClone(resolved) as unknown as BusOptions & { delivery: { maxAttempts: number }; backpressure: { onOverflow: string } };
  base.delivery.maxAttempts = 1;
  notes.push('The sweep ran with delivery.maxAttempts 1: a failing consumer is counted, not retried with backoff.');
  if (base.backpressure.onOverflow === 'reject') {
    // The bench emits each iteration in one burst; with 'reject' the burst itself would be refused.
    base.backpressure.onOverflow = 'wait';
    notes.push("The sweep ran with backpressure.onOverflow 'wait' (the config says 'reject'): each iteration emits its events in one burst.");
  }
  const storeLabel = resolved.store.kind === 'none' ? 'none (as in the config)' : 'lmdb, in a temporary folder (your store is only read, with --from-store)';
  if (resolved.store.kind === 'fdb') notes.push('The config uses FoundationDB: the sweep ran on lmdb in a temporary folder, so store costs differ from production.');

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
  return { consumers: resolved.consumers.map((c) => c.module), base, resolved: sweptStore(base as unknown as ResolvedOptions), inputs, types, source, store: storeLabel, grid };
}

/** The options with the store the sweep really uses: none as configured, else lmdb in a temporary folder (see the plan in runBench). */
function sweptStore(options: ResolvedOptions): ResolvedOptions {
  if (options.store.kind === 'none') return options;
  return { ...options, store: { kind: 'lmdb', path: 'a temporary folder per combination', prefix: 'eventrail' } };
}

/** Up to `limit` stored events as inputs: ids and timestamps are left out, so every emit stores a new event. */
async function inputsFromStore(resolved: ResolvedOptions, path: string | undefined, limit: number): Promise<EventInput[]> {
  const storeOptions = path === undefined ? resolved.store : { kind: 'lmdb' as const, path, prefix: resolved.store.kind === 'lmdb' ? resolved.store.prefix : 'eventrail' };
  if (storeOptions.kind === 'none') throw new BenchError("the config's store is { kind: 'none' }, which keeps no events: give --store PATH");
  const store = await openStore(storeOptions);
  const codec = new Codec();
  const inputs: EventInput[] = [];
  try {
    for await (const stored of store!.readEvents()) {
      const e = codec.decode<Event>(stored.bytes);
      inputs.push({
        event_type: e.event_type,
        payload: e.payload,
        metadata: { correlation_id: e.metadata.correlation_id, user_id: e.metadata.user_id, tenant_id: e.metadata.tenant_id, source: e.metadata.source },
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

function failedOverload(options: OverloadOptions, err: Error): OverloadResult {
  return {
    status: 'failed', error: err.message, store: options.store, storeMiB: null, events: options.events, maxPending: options.maxPending,
    slowConsumerMicros: options.slowConsumerMicros, seconds: 0, eventsPerSec: 0, memory: null, maxPendingSeen: 0,
  };
}

function failedReplay(events: number, err: Error): ReplayResult {
  return {
    status: 'failed', error: err.message, events, fillSeconds: 0, storeMiB: 0, timing: null, eventsPerSec: 0, eventsPerSecP99: 0,
    memory: null,
  };
}
