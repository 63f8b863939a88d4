/**
 * Dispatch: store `none`, two trivial consumers in one worker. eventrail
 * (validated, batched, one transferred buffer per batch) against the seed's
 * shape translated literally (one piscina.run() per event), with piscina's
 * defaults and at its best for that pattern (concurrentTasksPerWorker: 16),
 * and against node's EventEmitter in process.
 */
import { EventEmitter } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { createBus, type Consumer, type ConsumerContext, type Event, type EventBus, type EventInput } from '../src/index.js';
import { ratio, report, runSuite, type Scenario } from './suite.js';

const N = Number(process.env.BENCH_EVENTS ?? 20_000);
const consumerPaths = ['trivial-a', 'trivial-b'].map((n) => fileURLToPath(new URL(`./consumers/${n}.js`, import.meta.url)));
const consumerUrls = consumerPaths.map((p) => pathToFileURL(p).href);

function inputs(count: number): EventInput[] {
  return Array.from({ length: count }, () => {
    const user_id = crypto.randomUUID();
    return {
      event_type: 'UserLoggedIn' as const,
      payload: { user_id, session_id: crypto.randomUUID() },
      metadata: { source: 'login_handler', user_id, tenant_id: crypto.randomUUID() },
    };
  });
}

/** The event the literal design would build: ids and time made per event, no validation. */
function literalEvent(input: EventInput): Event {
  return {
    event_id: crypto.randomUUID(),
    timestamp: new Date().toISOString(),
    event_type: input.event_type,
    payload: input.payload ?? {},
    metadata: {
      correlation_id: crypto.randomUUID(),
      causation_id: null,
      user_id: input.metadata.user_id ?? null,
      tenant_id: input.metadata.tenant_id ?? null,
      source: input.metadata.source,
    },
  };
}

export function eventrailScenario(name: string, events: readonly EventInput[], options: Parameters<typeof createBus>[0]): Scenario {
  let bus: EventBus;
  return {
    name,
    events: events.length,
    async setup() {
      bus = await createBus(options);
    },
    async run() {
      for (const e of events) void bus.emit(e);
      await bus.flush();
    },
    async teardown() {
      await bus.close();
    },
  };
}

function perEventScenario(name: string, events: readonly EventInput[], concurrentTasksPerWorker?: number, inFlight = 512): Scenario {
  let pool: Piscina;
  return {
    name,
    events: events.length,
    setup() {
      pool = new Piscina({
        filename: new URL('./peers/per-event-worker.js', import.meta.url).href,
        maxThreads: 1,
        minThreads: 1,
        ...(concurrentTasksPerWorker ? { concurrentTasksPerWorker } : {}),
        workerData: { consumers: consumerUrls },
      });
    },
    async run() {
      let next = 0;
      const lane = async () => {
        while (next < events.length) await pool.run(literalEvent(events[next++]!));
      };
      await Promise.all(Array.from({ length: inFlight }, lane));
    },
    async teardown() {
      await pool.destroy();
    },
  };
}

function emitterScenario(name: string, events: readonly EventInput[]): Scenario {
  const emitter = new EventEmitter();
  let loaded: Consumer[] = [];
  const ctx = (consumer: string): ConsumerContext => ({
    consumer,
    attempt: 1,
    signal: new AbortController().signal,
    metrics: { increment() {}, observe() {} },
    emit() {},
  });
  return {
    name,
    events: events.length,
    async setup() {
      loaded = await Promise.all(consumerUrls.map(async (u) => ((await import(u)) as { default: Consumer }).default));
      for (const c of loaded) {
        const context = ctx(c.name);
        const types = c.eventTypes === '*' ? null : new Set(c.eventTypes as readonly string[]);
        emitter.on('event', (event: Event) => {
          if (types === null || types.has(event.event_type as string)) void c.handle(event, context);
        });
      }
    },
    async run() {
      for (const e of events) emitter.emit('event', literalEvent(e));
    },
  };
}

export async function main(): Promise<void> {
  const events = inputs(N);
  const perEventEvents = events.slice(0, Math.max(1000, Math.floor(N / 10)));
  const results = await runSuite('dispatch', [
    eventrailScenario('eventrail (store none, 1 thread)', events, {
      store: { kind: 'none' },
      consumers: consumerPaths,
      pool: { maxThreads: 1, minThreads: 1 },
    }),
    perEventScenario('piscina.run() per event (defaults)', perEventEvents),
    perEventScenario('piscina.run() per event (concurrentTasksPerWorker 16)', perEventEvents, 16),
    emitterScenario('EventEmitter in process (no worker, no validation)', events),
  ]);
  report('dispatch', results, {
    'eventrail / piscina per event (defaults)': ratio(results, 'eventrail (store none, 1 thread)', 'piscina.run() per event (defaults)'),
    'eventrail / piscina per event (tuned)': ratio(
      results,
      'eventrail (store none, 1 thread)',
      'piscina.run() per event (concurrentTasksPerWorker 16)',
    ),
    'eventrail / EventEmitter': ratio(results, 'eventrail (store none, 1 thread)', 'EventEmitter in process (no worker, no validation)'),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
