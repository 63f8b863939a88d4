/**
 * Store: lmdb with group commit (one transaction per batch of 1024, the
 * intake's shape) against one commit per event, through eventrail's LmdbStore,
 * and against lmdb-js's own `put` per event (the literal design's store).
 * Events are encoded before the run: what is measured is the store. Every
 * variant resolves once the write is flushed (durable).
 */
import { Codec } from '../../src/codec.js';
import type { Event } from '../../src/event/event.js';
import { LmdbStore } from '../../src/store/lmdb.js';
import type { AppendItem } from '../../src/store/store.js';
import { literalEvent } from '../literal-event.js';
import { LiteralStore } from '../peers/lmdb-put.js';
import type { Scenario, Suite, SuiteContext } from '../scenario.js';
import { PER_EVENT_IN_FLIGHT, perEventInputs } from './dispatch.js';

const BATCH = 1024;

function appendItems(events: readonly Event[], codec: Codec): AppendItem[] {
  return events.map((e) => ({
    eventId: e.event_id,
    checkDuplicate: false,
    bytes: codec.encode(e),
    tenantId: e.metadata.tenant_id,
    timestampMs: Date.parse(e.timestamp),
    auditId: null,
  }));
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function inFlight<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

function lmdbStoreScenario(ctx: SuiteContext, id: string, name: string, events: readonly Event[], perCommit: number): Scenario {
  let store: LmdbStore | undefined;
  const codec = new Codec();
  const items = appendItems(events, codec);
  const batches: AppendItem[][] = [];
  for (let i = 0; i < items.length; i += perCommit) batches.push(items.slice(i, i + perCommit));
  return {
    id,
    suite: 'store',
    name,
    role: 'eventrail',
    events: items.length,
    async setup() {
      store = await LmdbStore.open({ path: ctx.folder('store'), prefix: 'bench', codec });
    },
    async run() {
      const s = store!;
      // The intake does not wait for one commit before starting the next: neither does this.
      await inFlight(batches, PER_EVENT_IN_FLIGHT, (batch) => s.append(batch));
    },
    async teardown() {
      await store?.close();
      store = undefined;
    },
  };
}

function lmdbPutScenario(ctx: SuiteContext, events: readonly Event[]): Scenario {
  let db: LiteralStore | undefined;
  return {
    id: 'store.lmdb-put',
    suite: 'store',
    name: `lmdb-js put per event (msgpack, ${PER_EVENT_IN_FLIGHT} in flight)`,
    role: 'peer',
    events: events.length,
    setup() {
      db = LiteralStore.open(ctx.folder('store-put'));
    },
    async run() {
      const d = db!;
      await inFlight(events, PER_EVENT_IN_FLIGHT, (e) => d.put(e));
    },
    async teardown() {
      await db?.close();
      db = undefined;
    },
  };
}

export function storeSuite(ctx: SuiteContext): Suite {
  const events = ctx.inputs.map(literalEvent);
  const perEvent = perEventInputs(ctx).map(literalEvent);
  return {
    scenarios: [
      lmdbStoreScenario(ctx, 'store.group-commit', `LmdbStore.append, ${BATCH} events per commit`, events, BATCH),
      lmdbStoreScenario(
        ctx,
        'store.commit-per-event',
        `LmdbStore.append, 1 event per commit (${PER_EVENT_IN_FLIGHT} in flight)`,
        perEvent,
        1,
      ),
      lmdbPutScenario(ctx, perEvent),
    ],
    ratios: [
      { name: 'group commit / one commit per event', of: 'store.group-commit', to: 'store.commit-per-event' },
      { name: 'group commit / lmdb-js put per event', of: 'store.group-commit', to: 'store.lmdb-put' },
    ],
  };
}
