/**
 * A developer benchmark, not a suite of `npm run bench` (its `store` suite
 * is bench/group-commit.bench.ts), on the same harness (scenario.ts). The lmdb store alone (no bus): appends of
 * 1024-event batches of ~350-byte events, one batch in flight and four (the
 * bus does not wait for one commit before starting the next), and reads of
 * what was stored: the whole log, one tenant of 50, a time window.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Codec } from '../src/codec.js';
import type { Event } from '../src/event/event.js';
import { LmdbStore } from '../src/store/lmdb.js';
import type { AppendItem, ReadEventsQuery } from '../src/store/store.js';
import { FULL_SETTINGS, QUICK_SETTINGS } from '../src/cli/sweep/measure.js';
import { Progress } from '../src/cli/sweep/progress.js';
import { formatTable, rate } from '../src/cli/sweep/table.js';
import { loadAverage, machineInfo } from './machine.js';
import type { MeasuredScenario } from './results.js';
import { ratioOf } from './run.js';
import { runInterleaved, type Scenario } from './scenario.js';

const BATCH = 1024;
const BATCHES = Number(process.env.BENCH_STORE_BATCHES ?? 50);
const BASE_MS = Date.UTC(2024, 0, 1);
const codec = new Codec();
const tenants = Array.from({ length: 50 }, () => randomUUID());

/** Batches as the bus hands them to the store; ~100 events share each millisecond. */
function batches(count: number): AppendItem[][] {
  let n = 0;
  return Array.from({ length: count }, () =>
    Array.from({ length: BATCH }, () => {
      const i = n++;
      const tenantId = tenants[i % tenants.length]!;
      const timestampMs = BASE_MS + Math.floor(i / 100);
      const event: Event = {
        event_id: randomUUID(),
        timestamp: new Date(timestampMs).toISOString(),
        event_type: 'UserLoggedIn',
        payload: { user_id: randomUUID(), session_id: randomUUID(), ip: '10.0.0.1', agent: 'Mozilla/5.0 (X11; Linux x86_64)' },
        metadata: { correlation_id: randomUUID(), causation_id: null, user_id: randomUUID(), tenant_id: tenantId, source: 'login_handler' },
      };
      return { eventId: event.event_id, checkDuplicate: false, bytes: codec.encode(event), tenantId, timestampMs, auditId: null };
    }),
  );
}

/** Time-ordered ids, as the bus's uuid v7s are: the id index grows at its end, not at random pages. */
const orderedId = (run: number, i: number) => `${run.toString(16).padStart(8, '0')}-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;

function appendScenario(id: string, name: string, data: AppendItem[][], inFlight: number): Scenario {
  let path = '';
  let store: LmdbStore;
  let runs = 0;
  return {
    id,
    suite: 'store',
    name,
    role: 'eventrail',
    events: data.length * BATCH,
    async setup() {
      path = mkdtempSync(join(tmpdir(), 'eventrail-bench-'));
      store = await LmdbStore.open({ path, prefix: 'bench' });
    },
    async run() {
      // Fresh ids each iteration, so every iteration stores every event (the
      // bytes are opaque to the store and stay the same).
      const run = ++runs;
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < data.length) {
            const b = next++;
            await store.append(data[b]!.map((item, i) => ({ ...item, eventId: orderedId(run, b * BATCH + i) })));
          }
        }),
      );
    },
    async teardown() {
      await store.close();
      rmSync(path, { recursive: true, force: true });
    },
  };
}

function readScenario(id: string, name: string, store: () => LmdbStore, query: ReadEventsQuery, events: number): Scenario {
  return {
    id,
    suite: 'store',
    name,
    role: 'eventrail',
    events,
    async run() {
      let n = 0;
      for await (const _ of store().readEvents(query)) n++;
      if (n !== events) throw new Error(`${name}: read ${n} events, expected ${events}`);
    },
  };
}

export async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'string' } }, strict: true });
  const load = loadAverage();
  const data = batches(BATCHES);
  const total = BATCHES * BATCH;
  const path = mkdtempSync(join(tmpdir(), 'eventrail-bench-'));
  const filled = await LmdbStore.open({ path, prefix: 'bench' });
  for (const batch of data) await filled.append(batch);
  const windowMs = Math.floor(total / 100 / 10);
  const windowFrom = BASE_MS + windowMs * 4;
  try {
    const results = await runInterleaved(
      [
        appendScenario('lmdb.append-1', 'append, 1 batch in flight', data, 1),
        appendScenario('lmdb.append-4', 'append, 4 batches in flight', data, 4),
        readScenario('lmdb.read-all', 'read all', () => filled, {}, total),
        readScenario('lmdb.read-tenant', 'read one tenant of 50', () => filled, { tenantId: tenants[7]! }, total / tenants.length),
        readScenario(
          'lmdb.read-window',
          'read a 10 % time window',
          () => filled,
          { fromMs: windowFrom, toMs: windowFrom + windowMs },
          windowMs * 100,
        ),
      ],
      values.quick ? QUICK_SETTINGS : FULL_SETTINGS,
      values.quick ? 1 : 3,
      new Progress(),
    );
    const byId = new Map(results.map((r) => [r.id, r]));
    const ratios = [
      { name: '4 in flight / 1 in flight', of: 'lmdb.append-4', to: 'lmdb.append-1' },
      { name: 'read all / append (4 in flight)', of: 'lmdb.read-all', to: 'lmdb.append-4' },
      { name: 'one tenant / read all', of: 'lmdb.read-tenant', to: 'lmdb.read-all' },
    ].map((r) => ratioOf(r, byId));
    const measured = results.filter((r): r is MeasuredScenario => r.status === 'ok');
    const machine = machineInfo(load);
    console.log(`\nlmdb store (${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}, load ${machine.loadAverage.start[0]})`);
    console.log(
      formatTable({
        title: 'LmdbStore alone, 1024-event batches',
        headers: ['scenario', 'events/s (median)', 'events/s (p99 iteration)', 'samples'],
        align: ['l', 'r', 'r', 'r'],
        rows: measured.map((r) => [r.name, rate(r.eventsPerSec), rate(r.eventsPerSecP99), String(r.timing.samples)]),
      }),
    );
    for (const r of ratios) console.log(`  ${r.name}: ${r.value === null ? 'n/a' : `${r.value.toFixed(2)}x`}`);
    if (values.json)
      writeFileSync(values.json, `${JSON.stringify({ suite: 'lmdb-store', machine, scenarios: results, ratios }, null, 2)}\n`);
    if (results.some((r) => r.status !== 'ok')) process.exitCode = 1;
  } finally {
    await filled.close();
    rmSync(path, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
