/**
 * A developer benchmark, not a suite of `eventrail bench` (its `store` suite
 * is bench/group-commit.bench.ts). The lmdb store alone (no bus): appends of
 * 1024-event batches of ~350-byte events, one batch in flight and four (the
 * bus does not wait for one commit before starting the next), and reads of
 * what was stored: the whole log, one tenant of 50, a time window.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Codec } from '../src/codec.js';
import type { Event } from '../src/event/event.js';
import { LmdbStore } from '../src/store/lmdb.js';
import type { AppendItem, ReadEventsQuery } from '../src/store/store.js';
import { ratio, report, runSuite, type Scenario } from './suite.js';

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

function appendScenario(name: string, data: AppendItem[][], inFlight: number): Scenario {
  let path = '';
  let store: LmdbStore;
  let runs = 0;
  return {
    name,
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

function readScenario(name: string, store: () => LmdbStore, query: ReadEventsQuery, events: number): Scenario {
  return {
    name,
    events,
    async run() {
      let n = 0;
      for await (const _ of store().readEvents(query)) n++;
      if (n !== events) throw new Error(`${name}: read ${n} events, expected ${events}`);
    },
  };
}

export async function main(): Promise<void> {
  const data = batches(BATCHES);
  const total = BATCHES * BATCH;
  const path = mkdtempSync(join(tmpdir(), 'eventrail-bench-'));
  const filled = await LmdbStore.open({ path, prefix: 'bench' });
  for (const batch of data) await filled.append(batch);
  const windowMs = Math.floor(total / 100 / 10);
  const windowFrom = BASE_MS + windowMs * 4;
  try {
    const results = await runSuite('store', [
      appendScenario('append, 1 batch in flight', data, 1),
      appendScenario('append, 4 batches in flight', data, 4),
      readScenario('read all', () => filled, {}, total),
      readScenario('read one tenant of 50', () => filled, { tenantId: tenants[7]! }, total / tenants.length),
      readScenario('read a 10 % time window', () => filled, { fromMs: windowFrom, toMs: windowFrom + windowMs }, windowMs * 100),
    ]);
    report('store', results, {
      '4 in flight / 1 in flight': ratio(results, 'append, 4 batches in flight', 'append, 1 batch in flight'),
      'read all / append (4 in flight)': ratio(results, 'read all', 'append, 4 batches in flight'),
      'one tenant / read all': ratio(results, 'read one tenant of 50', 'read all'),
    });
  } finally {
    await filled.close();
    rmSync(path, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
