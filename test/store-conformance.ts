/**
 * The store conformance suite: what every EventStore backend must do, run by
 * each backend's test file (`testStore('lmdb', factory)`). Events are encoded
 * with the shared Codec, as the bus does.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Codec } from '../src/codec.js';
import { decodeAuditRecord, encodeAuditRecord } from '../src/event/audit.js';
import type { Event } from '../src/event/event.js';
import { IdSource, generatedIdTime } from '../src/event/ids.js';
import { setImmediate } from 'node:timers/promises';
import {
  commitEnd,
  comparePositions,
  type AppendItem,
  type CoordinateResult,
  type DeadLetterRecord,
  type EventStore,
  type FencedDeadLetter,
  type Position,
  type Release,
} from '../src/store/store.js';
import { collect } from './helpers.js';

export interface StoreUnderTest {
  readonly store: EventStore;
  /** Closes nothing: removes what the factory created (the test closes the stores it opened). */
  cleanup(): Promise<void>;
  /** Opens the same store again (same path or prefix), beside the first or after the test closed it. */
  reopen?(): Promise<EventStore>;
}

export type StoreFactory = () => Promise<StoreUnderTest>;

const codec = new Codec();
const BASE_MS = Date.UTC(2024, 0, 1);
/** Coordination rounds run on a clock of their own (`now` is the caller's): leases lapse when a test says so. */
const T0 = 1_700_000_000_000;
const LEASE_MS = 10_000;

export interface TestEventOptions {
  eventId?: string;
  checkDuplicate?: boolean;
  tenantId?: string | null;
  timestampMs?: number;
  audited?: boolean;
  /** Payload padding, to make large events. */
  padding?: number;
}

export interface TestEvent {
  readonly event: Event;
  readonly item: AppendItem;
}

export function testEvent(options: TestEventOptions = {}): TestEvent {
  const eventId = options.eventId ?? randomUUID();
  const timestampMs = options.timestampMs ?? BASE_MS;
  const tenantId = options.tenantId === undefined ? null : options.tenantId;
  const event: Event = {
    event_id: eventId,
    timestamp: new Date(timestampMs).toISOString(),
    event_type: options.audited ? 'UserLoggedIn' : { Custom: 'Tested' },
    payload: { n: Math.random(), pad: 'x'.repeat(options.padding ?? 0) },
    metadata: { correlation_id: randomUUID(), causation_id: null, user_id: randomUUID(), tenant_id: tenantId, source: 'store-conformance' },
  };
  return {
    event,
    item: {
      eventId,
      checkDuplicate: options.checkDuplicate ?? false,
      bytes: codec.encode(event),
      tenantId,
      timestampMs,
      auditId: options.audited ? randomUUID() : null,
    },
  };
}

export function testEvents(count: number, options: (i: number) => TestEventOptions = () => ({})): TestEvent[] {
  return Array.from({ length: count }, (_, i) => testEvent(options(i)));
}

const hex = (p: Position) => p.toString('hex');

/** A round of instance 'a' running one group from the beginning over one partition (releasing `release`). */
function holdOneGroup(store: EventStore, group: string, now: number, release?: Release[]): Promise<CoordinateResult> {
  return store.coordinate({
    instance: 'a',
    groups: [{ name: group, startFrom: 'beginning' }],
    partitions: 1,
    leaseMs: LEASE_MS,
    now,
    release,
  });
}

function assertIncreasing(positions: readonly Position[], what: string): void {
  for (let i = 1; i < positions.length; i++) {
    assert.ok(comparePositions(positions[i - 1]!, positions[i]!) < 0, `${what}: ${hex(positions[i - 1]!)} < ${hex(positions[i]!)} at ${i}`);
  }
}

/** Appends and returns every stored event with its position, in append order. */
async function appendAll(
  store: EventStore,
  batches: readonly (readonly TestEvent[])[],
): Promise<{ position: Position; bytes: Buffer; item: AppendItem }[]> {
  const out: { position: Position; bytes: Buffer; item: AppendItem }[] = [];
  for (const batch of batches) {
    const result = await store.append(batch.map((e) => e.item));
    assert.equal(result.positions.length, batch.length);
    batch.forEach((e, i) => {
      if (!result.duplicate[i]) out.push({ position: result.positions[i]!, bytes: e.item.bytes, item: e.item });
    });
  }
  return out;
}

export function testStore(name: string, factory: StoreFactory): void {
  /** Runs a test against a fresh store, then closes every store it opened (close() must be idempotent) and cleans up. */
  const withStore = (body: (ctx: { store: EventStore; reopen?: () => Promise<EventStore> }) => Promise<void>) => async () => {
    const under = await factory();
    const opened = [under.store];
    const reopen = under.reopen;
    try {
      await body({
        store: under.store,
        ...(reopen ? { reopen: async () => opened[opened.push(await reopen()) - 1]! } : {}),
      });
    } finally {
      for (const store of opened) await store.close();
      await under.cleanup();
    }
  };

  describe(`store conformance: ${name}`, () => {
    it(
      'appends with positions increasing in batch order and across batches',
      withStore(async ({ store }) => {
        const empty = await store.append([]);
        assert.deepEqual(empty, { positions: [], duplicate: [] });
        const all: Position[] = [];
        for (const size of [1, 5, 300]) {
          const result = await store.append(testEvents(size).map((e) => e.item));
          assert.deepEqual(result.duplicate, new Array(size).fill(false));
          for (const p of result.positions) assert.equal(p.length, 12);
          all.push(...result.positions);
        }
        assertIncreasing(all, 'positions');
      }),
    );

    it(
      'reads events back byte for byte, in order',
      withStore(async ({ store }) => {
        const stored = await appendAll(store, [testEvents(3), testEvents(40), testEvents(1)]);
        const read = await collect(store.readEvents());
        assert.deepEqual(
          read.map((e) => hex(e.position)),
          stored.map((e) => hex(e.position)),
        );
        read.forEach((e, i) => assert.ok(e.bytes.equals(stored[i]!.bytes), `event ${i} bytes`));
        assert.deepEqual(codec.decode(read[5]!.bytes), codec.decode(stored[5]!.bytes));
      }),
    );

    it(
      'pages across batches with a small page size',
      withStore(async ({ store }) => {
        const stored = await appendAll(store, [testEvents(1000), testEvents(1000), testEvents(1000)]);
        const read = await collect(store.readEvents({ pageSize: 7 }));
        assert.equal(read.length, 3000);
        assert.deepEqual(
          read.map((e) => hex(e.position)),
          stored.map((e) => hex(e.position)),
        );
        assertIncreasing(
          read.map((e) => e.position),
          'read positions',
        );
        const one = await collect(store.readEvents({ pageSize: 1 }));
        assert.equal(one.length, 3000);
      }),
    );

    it(
      'reads strictly after `after` and up to `until` inclusive',
      withStore(async ({ store }) => {
        const stored = await appendAll(store, [testEvents(10), testEvents(10), testEvents(10)]);
        const positions = stored.map((e) => hex(e.position));
        const read = async (query: Parameters<EventStore['readEvents']>[0]) =>
          (await collect(store.readEvents(query))).map((e) => hex(e.position));
        assert.deepEqual(await read({ after: stored[4]!.position }), positions.slice(5));
        assert.deepEqual(await read({ until: stored[14]!.position }), positions.slice(0, 15));
        assert.deepEqual(await read({ after: stored[9]!.position, until: stored[20]!.position, pageSize: 3 }), positions.slice(10, 21));
        assert.deepEqual(await read({ after: stored[29]!.position }), []);
        assert.deepEqual(await read({ after: stored[20]!.position, until: stored[10]!.position }), []);
        assert.deepEqual(await read({ after: stored[12]!.position, until: stored[12]!.position }), []);
        assert.deepEqual(await read({ after: Buffer.alloc(12), until: Buffer.alloc(12, 0xff) }), positions);
      }),
    );

    it(
      'appends idempotently by event_id',
      withStore(async ({ store }) => {
        const first = testEvents(5);
        const firstResult = await store.append(first.map((e) => e.item));
        // The same ids again, supplied by the caller: stored once, reported at their first position.
        const again = first.slice(1, 3).map((e) => testEvent({ eventId: e.item.eventId, checkDuplicate: true }));
        const newcomer = testEvent({ checkDuplicate: true });
        const second = await store.append([again[0]!.item, newcomer.item, again[1]!.item]);
        assert.deepEqual(second.duplicate, [true, false, true]);
        assert.equal(hex(second.positions[0]!), hex(firstResult.positions[1]!));
        assert.equal(hex(second.positions[2]!), hex(firstResult.positions[2]!));
        assert.ok(comparePositions(second.positions[1]!, firstResult.positions[4]!) > 0);

        // The same id twice in one batch: the second takes the first's position.
        const twice = testEvent({ checkDuplicate: true });
        const third = await store.append([twice.item, testEvent().item, { ...twice.item }]);
        assert.deepEqual(third.duplicate, [false, false, true]);
        assert.equal(hex(third.positions[2]!), hex(third.positions[0]!));

        // A batch of duplicates only stores nothing, and later positions still increase.
        const onlyDuplicates = await store.append([{ ...newcomer.item }, { ...first[0]!.item, checkDuplicate: true }]);
        assert.deepEqual(onlyDuplicates.duplicate, [true, true]);
        assert.equal(hex(onlyDuplicates.positions[0]!), hex(second.positions[1]!));
        const after = await store.append([testEvent().item]);
        assert.ok(comparePositions(after.positions[0]!, third.positions[1]!) > 0);

        const read = await collect(store.readEvents());
        assert.equal(read.length, 5 + 1 + 2 + 1);
        assert.equal(new Set(read.map((e) => hex(e.position))).size, read.length);
        // The stored bytes are the first event's, not the duplicate's.
        assert.ok(read[1]!.bytes.equals(first[1]!.item.bytes));
        assert.equal((await store.stats()).events, 9);
      }),
    );

    it(
      'looks events up by id',
      withStore(async ({ store }) => {
        const events = testEvents(20);
        const result = await store.append(events.map((e) => e.item));
        for (const i of [0, 7, 19]) assert.equal(hex((await store.lookup(events[i]!.item.eventId))!), hex(result.positions[i]!));
        assert.equal(await store.lookup(randomUUID()), null);
      }),
    );

    it(
      'finds an event whose id the bus generated without an id key, and stores it once',
      withStore(async ({ store }) => {
        // Ids as IdSource makes them, with the timestamp of their own millisecond: no id key is written for them
        // (indexedById); one with another timestamp, and a caller-supplied one, get their id key as before.
        const ids = new IdSource();
        const generated = (timestampMs?: number) => {
          const eventId = ids.uuid();
          return testEvent({ eventId, timestampMs: timestampMs ?? generatedIdTime(eventId)!, tenantId: 'acme' });
        };
        const events = [generated(), generated(), generated(BASE_MS), testEvent(), generated()];
        const result = await store.append(events.map((e) => e.item));
        const later = await store.append([generated().item]);
        for (const [i, e] of events.entries())
          assert.equal(hex((await store.lookup(e.item.eventId))!), hex(result.positions[i]!), `event ${i}`);
        // A generated-looking id that was never stored, at a millisecond that has events, and one at a millisecond without.
        const absent = `${events[0]!.item.eventId.slice(0, 19)}${'0'.repeat(17)}`;
        assert.equal(await store.lookup(absent), null);
        assert.equal(await store.lookup('00000000-0001-7ae7-8000-000000000000'), null);

        // Emitted again with those ids, now supplied by the caller: stored once, at their first positions.
        const again = [events[1]!, events[2]!, events[4]!].map((e) => testEvent({ eventId: e.item.eventId, checkDuplicate: true }));
        const newcomer = testEvent({ eventId: ids.uuid(), checkDuplicate: true });
        const second = await store.append([again[0]!.item, newcomer.item, again[1]!.item, again[2]!.item]);
        assert.deepEqual(second.duplicate, [true, false, true, true]);
        assert.equal(hex(second.positions[0]!), hex(result.positions[1]!));
        assert.equal(hex(second.positions[2]!), hex(result.positions[2]!));
        assert.equal(hex(second.positions[3]!), hex(result.positions[4]!));
        assert.equal(hex((await store.lookup(newcomer.item.eventId))!), hex(second.positions[1]!));
        assert.ok(comparePositions(second.positions[1]!, later.positions[0]!) > 0);
        assert.equal((await store.stats()).events, 7);
      }),
    );

    it(
      'reads one tenant through the tenant index',
      withStore(async ({ store }) => {
        const tenants = Array.from({ length: 12 }, () => randomUUID());
        const batches = [0, 1, 2].map((b) =>
          testEvents(97, (i) => ({ tenantId: (i * 7 + b) % 13 === 12 ? null : tenants[(i * 7 + b) % 13]! })),
        );
        const stored = await appendAll(store, batches);
        for (const tenant of tenants) {
          const expected = stored.filter((e) => e.item.tenantId === tenant);
          assert.ok(expected.length > 0);
          const read = await collect(store.readEvents({ tenantId: tenant, pageSize: 5 }));
          assert.deepEqual(
            read.map((e) => hex(e.position)),
            expected.map((e) => hex(e.position)),
            `tenant ${tenant}`,
          );
          read.forEach((e, i) => assert.ok(e.bytes.equals(expected[i]!.bytes)));
          for (const e of read) assert.equal((codec.decode(e.bytes) as Event).metadata.tenant_id, tenant);
        }
        assert.deepEqual(await collect(store.readEvents({ tenantId: randomUUID() })), []);

        const tenant = tenants[3]!;
        const mine = stored.filter((e) => e.item.tenantId === tenant);
        const middle = mine[Math.floor(mine.length / 2)]!.position;
        const after = await collect(store.readEvents({ tenantId: tenant, after: middle }));
        assert.deepEqual(
          after.map((e) => hex(e.position)),
          mine.filter((e) => comparePositions(e.position, middle) > 0).map((e) => hex(e.position)),
        );
        const until = await collect(store.readEvents({ tenantId: tenant, until: middle }));
        assert.deepEqual(
          until.map((e) => hex(e.position)),
          mine.filter((e) => comparePositions(e.position, middle) <= 0).map((e) => hex(e.position)),
        );
      }),
    );

    it(
      'reads a time range in position order, whatever the user timestamps',
      withStore(async ({ store }) => {
        // Timestamps jump back and forth within and across batches.
        const ms = (b: number, i: number) => BASE_MS + (((i * 37 + b * 11) % 50) - 10) * 1000 + (i % 3);
        const stored = await appendAll(
          store,
          [0, 1, 2, 3].map((b) => testEvents(60, (i) => ({ timestampMs: ms(b, i), tenantId: i % 2 ? 'odd' : 'even' }))),
        );
        const check = async (fromMs: number | undefined, toMs: number | undefined, tenantId?: string) => {
          const expected = stored.filter(
            (e) =>
              (fromMs === undefined || e.item.timestampMs >= fromMs) &&
              (toMs === undefined || e.item.timestampMs < toMs) &&
              (tenantId === undefined || e.item.tenantId === tenantId),
          );
          const read = await collect(store.readEvents({ fromMs, toMs, tenantId, pageSize: 4 }));
          assert.deepEqual(
            read.map((e) => hex(e.position)),
            expected.map((e) => hex(e.position)),
            `[${fromMs}, ${toMs}) ${tenantId ?? ''}`,
          );
          return read.length;
        };
        assert.ok((await check(BASE_MS, BASE_MS + 20_000)) > 0);
        const oneMs = stored[17]!.item.timestampMs;
        assert.ok((await check(oneMs, oneMs + 1)) > 0);
        await check(BASE_MS + 30_000, undefined);
        await check(undefined, BASE_MS);
        await check(BASE_MS - 10_000, BASE_MS + 40_000);
        await check(BASE_MS + 1_000, BASE_MS + 9_000, 'odd');
        assert.equal(await check(BASE_MS + 100_000, undefined), 0);
        assert.equal(await check(BASE_MS, BASE_MS), 0);
        // With position bounds too.
        const after = stored[70]!.position;
        const read = await collect(store.readEvents({ fromMs: BASE_MS, toMs: BASE_MS + 20_000, after }));
        assert.deepEqual(
          read.map((e) => hex(e.position)),
          stored
            .filter(
              (e) => e.item.timestampMs >= BASE_MS && e.item.timestampMs < BASE_MS + 20_000 && comparePositions(e.position, after) > 0,
            )
            .map((e) => hex(e.position)),
        );
      }),
    );

    it(
      'writes audit entries with their events and reads them with filters',
      withStore(async ({ store }) => {
        const batches = [0, 1, 2].map((b) =>
          testEvents(30, (i) => ({ audited: i % 4 === b, tenantId: i % 3 ? 'a' : 'b', timestampMs: BASE_MS + i * 1000 })),
        );
        const stored = await appendAll(store, batches);
        const audited = stored.filter((e) => e.item.auditId !== null);
        const all = await collect(store.readAudit({ pageSize: 2 }));
        assert.deepEqual(
          all.map((a) => hex(a.position)),
          audited.map((e) => hex(e.position)),
        );
        all.forEach((a, i) => {
          const { item } = audited[i]!;
          const event = codec.decode<Event>(item.bytes);
          assert.ok(a.bytes.equals(encodeAuditRecord(item.auditId!, item.bytes)));
          const entry = decodeAuditRecord(codec, a.bytes);
          assert.deepEqual(entry, {
            audit_id: item.auditId,
            event_id: event.event_id,
            event_type: 'UserLoggedIn',
            timestamp: event.timestamp,
            payload: event.payload,
            metadata: event.metadata,
          });
        });
        const byTenant = await collect(store.readAudit({ tenantId: 'b' }));
        assert.deepEqual(
          byTenant.map((a) => hex(a.position)),
          audited.filter((e) => e.item.tenantId === 'b').map((e) => hex(e.position)),
        );
        const byTime = await collect(store.readAudit({ fromMs: BASE_MS + 5000, toMs: BASE_MS + 15_000 }));
        assert.deepEqual(
          byTime.map((a) => hex(a.position)),
          audited.filter((e) => e.item.timestampMs >= BASE_MS + 5000 && e.item.timestampMs < BASE_MS + 15_000).map((e) => hex(e.position)),
        );
        const after = audited[3]!.position;
        assert.deepEqual(
          (await collect(store.readAudit({ after }))).map((a) => hex(a.position)),
          audited.slice(4).map((e) => hex(e.position)),
        );

        // A duplicate does not write its audit entry again.
        await store.append([{ ...audited[0]!.item, checkDuplicate: true }]);
        assert.equal((await collect(store.readAudit())).length, audited.length);
        assert.equal((await store.stats()).auditEntries, audited.length);
      }),
    );

    it(
      'keeps dead letters: put, list, filter, remove',
      withStore(async ({ store }) => {
        const events = testEvents(4, (i) => ({ tenantId: i % 2 ? 'a' : null }));
        const { positions } = await store.append(events.map((e) => e.item));
        const letter = (consumer: string, i: number, attempts = 3): DeadLetterRecord => ({
          consumer,
          position: positions[i]!,
          event: events[i]!.item.bytes,
          error: {
            code: 'ERR_EVENTRAIL_HANDLER_FAILED',
            name: 'HandlerFailedError',
            message: `failed ${i}`,
            stack: i % 2 ? undefined : 'Error: x\n    at y',
          },
          attempts,
          failedAt: new Date(BASE_MS + i).toISOString(),
          tenantId: events[i]!.item.tenantId,
        });
        const letters = [letter('Mailer', 0), letter('Mailer', 1), letter('Audit', 1), letter('Mailer', 3)];
        await store.writeProgress({ deadLetters: letters });
        const normal = (r: DeadLetterRecord) => ({
          ...r,
          position: hex(r.position),
          event: r.event.toString('hex'),
          error: { ...r.error, stack: r.error.stack ?? undefined },
        });
        const all = await collect(store.readDeadLetters({ pageSize: 1 }));
        assert.equal(all.length, 4);
        // Listed by consumer, then position.
        assert.deepEqual(all.map(normal), [letters[2]!, letters[0]!, letters[1]!, letters[3]!].map(normal));
        assert.deepEqual(
          (await collect(store.readDeadLetters({ consumer: 'Mailer' }))).map(normal),
          [letters[0]!, letters[1]!, letters[3]!].map(normal),
        );
        assert.deepEqual(
          (await collect(store.readDeadLetters({ tenantId: 'a' }))).map(normal),
          [letters[2]!, letters[1]!, letters[3]!].map(normal),
        );
        assert.deepEqual(await collect(store.readDeadLetters({ consumer: 'Nobody' })), []);
        assert.equal((await store.stats()).deadLetters, 4);

        // Writing the same letter again replaces it and counts once.
        await store.writeProgress({ deadLetters: [letter('Mailer', 0, 9)] });
        assert.equal((await store.stats()).deadLetters, 4);
        assert.equal((await collect(store.readDeadLetters({ consumer: 'Mailer' })))[0]!.attempts, 9);

        await store.writeProgress({
          removeDeadLetters: [
            { consumer: 'Mailer', position: positions[1]! },
            { consumer: 'Mailer', position: positions[2]! },
          ],
        });
        assert.deepEqual(
          (await collect(store.readDeadLetters({ consumer: 'Mailer' }))).map((r) => hex(r.position)),
          [hex(positions[0]!), hex(positions[3]!)],
        );
        assert.equal((await store.stats()).deadLetters, 3);
      }),
    );

    it(
      'keeps a dead letter larger than a value (its event ~300 KB) intact across chunks',
      withStore(async ({ store }) => {
        const big = testEvent({ padding: 300_000, tenantId: 'big' });
        const events = [testEvent(), big, testEvent({ tenantId: 'big' })];
        const { positions } = await store.append(events.map((e) => e.item));
        assert.ok(big.item.bytes.length > 3 * 100_000, 'the event alone needs four chunks');
        const letter = (consumer: string, i: number, event = events[i]!.item.bytes, attempts = 3): DeadLetterRecord => ({
          consumer,
          position: positions[i]!,
          event,
          error: { code: 'ERR_EVENTRAIL_HANDLER_FAILED', name: 'Error', message: `failed ${i}`, stack: 'Error: x\n    at y' },
          attempts,
          failedAt: new Date(BASE_MS + i).toISOString(),
          tenantId: events[i]!.item.tenantId,
        });
        // The big letter sits between two small ones of the same consumer, and after one of another.
        await store.writeProgress({ deadLetters: [letter('Mailer', 0), letter('Mailer', 1), letter('Mailer', 2), letter('Audit', 1)] });
        const normal = (r: DeadLetterRecord) => ({
          ...r,
          position: hex(r.position),
          event: r.event.toString('hex'),
          error: { ...r.error, stack: r.error.stack ?? undefined },
        });
        const expected = [letter('Audit', 1), letter('Mailer', 0), letter('Mailer', 1), letter('Mailer', 2)].map(normal);
        for (const pageSize of [undefined, 1, 2]) {
          const read = await collect(store.readDeadLetters(pageSize === undefined ? {} : { pageSize }));
          assert.deepEqual(read.map(normal), expected, `pageSize ${pageSize}`);
        }
        const mine = await collect(store.readDeadLetters({ consumer: 'Mailer', tenantId: 'big' }));
        assert.deepEqual(
          mine.map((r) => hex(r.position)),
          [hex(positions[1]!), hex(positions[2]!)],
        );
        assert.ok(mine[0]!.event.equals(big.item.bytes));
        assert.deepEqual(codec.decode<Event>(mine[0]!.event), big.event);
        assert.equal((await store.stats()).deadLetters, 4);

        // Replaced by a small letter: no chunk of the big one is left behind, and it counts once.
        await store.writeProgress({ deadLetters: [letter('Mailer', 1, events[0]!.item.bytes, 9)] });
        const replaced = await collect(store.readDeadLetters({ consumer: 'Mailer' }));
        assert.deepEqual(
          replaced.map((r) => [hex(r.position), r.attempts, r.event.length]),
          [
            [hex(positions[0]!), 3, events[0]!.item.bytes.length],
            [hex(positions[1]!), 9, events[0]!.item.bytes.length],
            [hex(positions[2]!), 3, events[2]!.item.bytes.length],
          ],
        );
        assert.equal((await store.stats()).deadLetters, 4);

        // Big again, then removed (as a redrive does): every chunk goes, its neighbours stay.
        await store.writeProgress({ deadLetters: [letter('Mailer', 1)] });
        assert.ok((await collect(store.readDeadLetters({ consumer: 'Mailer' })))[1]!.event.equals(big.item.bytes));
        await store.writeProgress({ removeDeadLetters: [{ consumer: 'Mailer', position: positions[1]! }] });
        assert.deepEqual(
          (await collect(store.readDeadLetters({ pageSize: 1 }))).map(normal),
          [letter('Audit', 1), letter('Mailer', 0), letter('Mailer', 2)].map(normal),
        );
        assert.equal((await store.stats()).deadLetters, 3);
      }),
    );

    it(
      'coordinates: records the partition count, takes free leases, hands over to a newcomer',
      withStore(async ({ store }) => {
        assert.deepEqual(await store.readLeases(), []);
        const groups = [{ name: 'G', startFrom: 'beginning' as const }];
        const a1 = await store.coordinate({ instance: 'a', groups, partitions: 4, leaseMs: LEASE_MS, now: T0 });
        assert.equal(a1.partitions, 4);
        assert.deepEqual(a1.members, ['a']);
        assert.deepEqual(
          a1.held.map((h) => [h.group, h.partition, h.epoch, h.expiresAt, h.cursor]),
          [0, 1, 2, 3].map((p) => ['G', p, 1, T0 + LEASE_MS, null]),
        );
        assert.deepEqual(a1.handOver, []);
        // b asks for another count: the stored one wins. a's leases are live, so b takes none.
        const b1 = await store.coordinate({ instance: 'b', groups, partitions: 8, leaseMs: LEASE_MS, now: T0 + 1 });
        assert.equal(b1.partitions, 4);
        assert.deepEqual(b1.members, ['a', 'b']);
        assert.deepEqual(b1.held, []);
        const a2 = await store.coordinate({ instance: 'a', groups, partitions: 4, leaseMs: LEASE_MS, now: T0 + 2 });
        assert.deepEqual(
          a2.handOver.map((h) => h.partition),
          [1, 3],
        );
        assert.equal(a2.held.length, 4);
        // a releases them with their final cursors; b takes them with the next epoch and resumes there.
        const { positions } = await store.append(testEvents(2).map((e) => e.item));
        await store.coordinate({
          instance: 'a',
          groups,
          partitions: 4,
          leaseMs: LEASE_MS,
          now: T0 + 3,
          release: [
            { group: 'G', partition: 1, epoch: 1, cursor: positions[0]! },
            { group: 'G', partition: 3, epoch: 1, cursor: null },
          ],
        });
        const b2 = await store.coordinate({ instance: 'b', groups, partitions: 4, leaseMs: LEASE_MS, now: T0 + 4 });
        assert.deepEqual(
          b2.held.map((h) => [h.partition, h.epoch, h.cursor === null ? null : hex(h.cursor)]),
          [
            [1, 2, hex(positions[0]!)],
            [3, 2, null],
          ],
        );
        assert.deepEqual(
          (await store.readLeases()).map((l) => [l.group, l.partition, l.owner, l.epoch, l.expiresAt]),
          [
            ['G', 0, 'a', 1, T0 + 3 + LEASE_MS],
            ['G', 1, 'b', 2, T0 + 4 + LEASE_MS],
            ['G', 2, 'a', 1, T0 + 3 + LEASE_MS],
            ['G', 3, 'b', 2, T0 + 4 + LEASE_MS],
          ],
        );
        assert.deepEqual(
          (await store.readCursors()).map((c) => [c.group, c.partition, c.position === null ? null : hex(c.position)]),
          [['G', 1, hex(positions[0]!)]],
        );
        // b leaves: its membership goes.
        const gone = await store.coordinate({
          instance: 'b',
          groups,
          partitions: 4,
          leaseMs: LEASE_MS,
          now: T0 + 5,
          leaving: true,
          release: [1, 3].map((partition) => ({ group: 'G', partition, epoch: 2, cursor: null })),
        });
        assert.deepEqual(gone.members, ['a']);
        assert.deepEqual(gone.held, []);
      }),
    );

    it(
      "starts a group from the head ('now') or from the beginning",
      withStore(async ({ store }) => {
        // A store that holds events but was never coordinated is one of the layout before groups (migrated instead).
        await store.coordinate({ instance: 'a', groups: [], partitions: 2, leaseMs: LEASE_MS, now: T0 - 1 });
        const first = await store.append(testEvents(3).map((e) => e.item));
        const head = await store.head();
        assert.equal(hex(head!), hex(commitEnd(first.positions[2]!)));
        const round = await store.coordinate({
          instance: 'a',
          groups: [
            { name: 'Late', startFrom: 'now' },
            { name: 'Early', startFrom: 'beginning' },
          ],
          partitions: 2,
          leaseMs: LEASE_MS,
          now: T0,
        });
        assert.deepEqual(
          round.held.map((h) => [h.group, h.partition, h.cursor === null ? null : hex(h.cursor)]),
          [
            ['Late', 0, hex(head!)],
            ['Late', 1, hex(head!)],
            ['Early', 0, null],
            ['Early', 1, null],
          ],
        );
        // The events after the cursor are what the group reads next: none of the three before it.
        assert.deepEqual(await collect(store.readEvents({ after: round.held[0]!.cursor! })), []);
      }),
    );

    it(
      'fences progress: after a takeover the old owner’s cursors and fenced dead letters are refused and reported lost',
      withStore(async ({ store }) => {
        const groups = [{ name: 'G', startFrom: 'beginning' as const }];
        const { positions } = await store.append(testEvents(4).map((e) => e.item));
        await store.coordinate({ instance: 'a', groups, partitions: 2, leaseMs: LEASE_MS, now: T0 });
        const ok = await store.writeProgress({ instance: 'a', cursors: [{ group: 'G', partition: 0, epoch: 1, position: positions[0]! }] });
        assert.deepEqual(ok.lost, []);
        // a pauses past its lease; b takes both partitions over with epoch 2.
        const b = await store.coordinate({ instance: 'b', groups, partitions: 2, leaseMs: LEASE_MS, now: T0 + LEASE_MS + 1 });
        assert.deepEqual(
          b.held.map((h) => [h.partition, h.epoch, h.cursor === null ? null : hex(h.cursor)]),
          [
            [0, 2, hex(positions[0]!)],
            [1, 2, null],
          ],
        );
        const letter = (i: number, fence?: { partition: number; epoch: number }): FencedDeadLetter => ({
          consumer: 'G',
          position: positions[i]!,
          event: Buffer.from([0xc0]),
          error: { code: 'E', name: 'Error', message: `failed ${i}` },
          attempts: 1,
          failedAt: new Date(BASE_MS).toISOString(),
          tenantId: null,
          ...(fence ? { fence } : {}),
        });
        // a wakes up and writes with its old epoch: nothing fenced is written, the unfenced letter is.
        const stale = await store.writeProgress({
          instance: 'a',
          cursors: [
            { group: 'G', partition: 0, epoch: 1, position: positions[3]! },
            { group: 'G', partition: 1, epoch: 1, position: positions[3]! },
          ],
          deadLetters: [letter(1, { partition: 0, epoch: 1 }), letter(2, { partition: 0, epoch: 1 }), letter(3)],
        });
        assert.deepEqual(
          [...stale.lost].sort((x, y) => x.partition - y.partition),
          [
            { group: 'G', partition: 0 },
            { group: 'G', partition: 1 },
          ],
        );
        assert.deepEqual(
          (await store.readCursors()).map((c) => [c.partition, hex(c.position!)]),
          [[0, hex(positions[0]!)]],
        );
        assert.deepEqual(
          (await collect(store.readDeadLetters())).map((d) => hex(d.position)),
          [hex(positions[3]!)],
        );
        assert.equal((await store.stats()).deadLetters, 1);
        // A dead letter fenced by a lease a holds but with another instance's cursor write in the same progress: each entry alone.
        const mine = await store.writeProgress({
          instance: 'b',
          cursors: [{ group: 'G', partition: 1, epoch: 2, position: positions[2]! }],
          deadLetters: [letter(1, { partition: 1, epoch: 2 }), letter(0, { partition: 0, epoch: 1 })],
        });
        assert.deepEqual(mine.lost, [{ group: 'G', partition: 0 }]);
        assert.deepEqual(
          (await collect(store.readDeadLetters())).map((d) => hex(d.position)),
          [hex(positions[1]!), hex(positions[3]!)],
        );
        assert.deepEqual(
          (await store.readCursors()).map((c) => [c.partition, hex(c.position!)]),
          [
            [0, hex(positions[0]!)],
            [1, hex(positions[2]!)],
          ],
        );
        // A cursor write without the instance whose leases fence it is refused outright.
        await assert.rejects(
          store.writeProgress({ cursors: [{ group: 'G', partition: 1, epoch: 2, position: positions[3]! }] }),
          TypeError,
        );
      }),
    );

    it(
      'never moves a cursor backwards',
      withStore(async ({ store }) => {
        const { positions } = await store.append(testEvents(3).map((e) => e.item));
        await holdOneGroup(store, 'G', T0);
        const at = (i: number) => ({ group: 'G', partition: 0, epoch: 1, position: positions[i]! });
        await store.writeProgress({ instance: 'a', cursors: [at(2)] });
        assert.deepEqual(await store.writeProgress({ instance: 'a', cursors: [at(1)] }), { lost: [] });
        assert.equal(hex((await store.readCursors())[0]!.position!), hex(positions[2]!));
        // Within one write too: the greater wins, whatever the order.
        await store.writeProgress({ instance: 'a', cursors: [at(0), at(2), at(1)] });
        assert.equal(hex((await store.readCursors())[0]!.position!), hex(positions[2]!));
        // A release with a lower final cursor leaves it.
        await holdOneGroup(store, 'G', T0 + 1, [{ group: 'G', partition: 0, epoch: 1, cursor: positions[0]! }]);
        assert.equal(hex((await store.readCursors())[0]!.position!), hex(positions[2]!));
        assert.deepEqual(await store.writeProgress({}), { lost: [] });
      }),
    );

    it(
      'knows its head, and each append the head before it (where the backend can tell)',
      withStore(async ({ store }) => {
        assert.equal(await store.head(), null);
        const first = await store.append(testEvents(3).map((e) => e.item));
        assert.equal(hex((await store.head())!), hex(commitEnd(first.positions[2]!)));
        const second = await store.append(testEvents(2).map((e) => e.item));
        assert.equal(hex((await store.head())!), hex(commitEnd(second.positions[1]!)));
        if (store.kind === 'lmdb') {
          assert.equal(first.headBefore, null);
          assert.equal(hex(second.headBefore!), hex(commitEnd(first.positions[0]!)));
        } else {
          assert.equal(second.headBefore, undefined);
        }
        // An append of duplicates only stores nothing: the head stays.
        const firstItem = testEvent({ checkDuplicate: true });
        const stored = await store.append([firstItem.item]);
        const dup = await store.append([{ ...firstItem.item }]);
        assert.deepEqual(dup.duplicate, [true]);
        assert.equal(hex((await store.head())!), hex(commitEnd(stored.positions[0]!)));
        if (store.kind === 'lmdb') assert.equal(hex(dup.headBefore!), hex(commitEnd(stored.positions[0]!)));
      }),
    );

    it(
      'wakes a waiter when another store on the same log appends, and on abort',
      withStore(async ({ store, reopen }) => {
        // Resolves at once when the head is already past `after`.
        const first = await store.append(testEvents(1).map((e) => e.item));
        await store.waitForAppend(null, new AbortController().signal);
        await store.waitForAppend(Buffer.alloc(12), new AbortController().signal);
        // Resolves on abort, without an append.
        const aborter = new AbortController();
        const aborted = store.waitForAppend(await store.head(), aborter.signal);
        aborter.abort();
        await aborted;
        const already = new AbortController();
        already.abort();
        await store.waitForAppend(await store.head(), already.signal);
        if (!reopen) return;
        // Another store opened on the same folder or prefix appends: the waiter wakes.
        const other = await reopen();
        const head = await store.head();
        assert.equal(hex(head!), hex(commitEnd(first.positions[0]!)));
        let woken = false;
        const waiting = store.waitForAppend(head, new AbortController().signal).then(() => (woken = true));
        await setImmediate();
        assert.equal(woken, false, 'nothing was appended yet');
        const next = await other.append(testEvents(1).map((e) => e.item));
        // The store's own timers do not hold the process open (a bus has its pool for that): this test holds it.
        const keepAlive = setInterval(() => {}, 1_000);
        try {
          await waiting;
        } finally {
          clearInterval(keepAlive);
        }
        assert.ok(comparePositions((await store.head())!, head!) > 0);
        assert.equal(hex((await store.head())!), hex(commitEnd(next.positions[0]!)));
      }),
    );

    it(
      'counts what it holds',
      withStore(async ({ store }) => {
        const empty = await store.stats();
        assert.deepEqual({ ...empty, bytes: null }, { events: 0, auditEntries: 0, deadLetters: 0, bytes: null, lastPosition: null });
        const stored = await appendAll(store, [testEvents(10, (i) => ({ audited: i < 3 })), testEvents(7, (i) => ({ audited: i === 6 }))]);
        const stats = await store.stats();
        assert.equal(stats.events, 17);
        assert.equal(stats.auditEntries, 4);
        assert.equal(stats.deadLetters, 0);
        assert.equal(hex(stats.lastPosition!), hex(stored[16]!.position));
        assert.ok(stats.bytes === null || stats.bytes > 0);
      }),
    );

    it(
      'stores events larger than a value, across chunks',
      withStore(async ({ store }) => {
        const big = testEvent({ padding: 300_000, tenantId: 'big', audited: true, timestampMs: BASE_MS + 5 });
        const bigger = testEvent({ padding: 1_000_000, tenantId: 'big' });
        const stored = await appendAll(store, [[testEvent({ tenantId: 'big' }), big, testEvent()], [bigger], testEvents(2)]);
        assert.ok(big.item.bytes.length > 300_000);
        const read = await collect(store.readEvents({ pageSize: 1 }));
        assert.equal(read.length, stored.length);
        read.forEach((e, i) => assert.ok(e.bytes.equals(stored[i]!.bytes), `event ${i}`));
        const tenant = await collect(store.readEvents({ tenantId: 'big' }));
        assert.deepEqual(
          tenant.map((e) => e.bytes.length),
          [stored[0]!.bytes.length, big.item.bytes.length, bigger.item.bytes.length],
        );
        const timed = await collect(store.readEvents({ fromMs: BASE_MS + 5, toMs: BASE_MS + 6 }));
        assert.equal(timed.length, 1);
        assert.ok(timed[0]!.bytes.equals(big.item.bytes));
        const audit = await collect(store.readAudit());
        assert.equal(audit.length, 1);
        assert.ok(audit[0]!.bytes.equals(encodeAuditRecord(big.item.auditId!, big.item.bytes)));
      }),
    );

    it(
      'stores a batch of 9 000 events (a block whose header outgrows a chunk)',
      withStore(async ({ store }) => {
        const stored = await appendAll(store, [
          testEvents(9000, (i) => ({ tenantId: i % 3 ? 'a' : 'b', timestampMs: BASE_MS + (i % 10) })),
        ]);
        const read = await collect(store.readEvents({ pageSize: 500 }));
        assert.equal(read.length, 9000);
        read.forEach((e, i) => assert.ok(e.bytes.equals(stored[i]!.bytes)));
        const b = await collect(store.readEvents({ tenantId: 'b', fromMs: BASE_MS + 3, toMs: BASE_MS + 4 }));
        assert.deepEqual(
          b.map((e) => hex(e.position)),
          stored.filter((e) => e.item.tenantId === 'b' && e.item.timestampMs === BASE_MS + 3).map((e) => hex(e.position)),
        );
      }),
    );

    it(
      'takes concurrent appends, each atomically',
      withStore(async ({ store }) => {
        const batches = Array.from({ length: 8 }, () => testEvents(50));
        const results = await Promise.all(batches.map((b) => store.append(b.map((e) => e.item))));
        for (const r of results) assertIncreasing(r.positions, 'within a batch');
        const all = results.flatMap((r) => r.positions.map(hex));
        assert.equal(new Set(all).size, 400);
        const read = await collect(store.readEvents({ pageSize: 30 }));
        assert.deepEqual(
          read.map((e) => hex(e.position)),
          [...all].sort(),
        );
      }),
    );

    it(
      'keeps everything when reopened, and positions keep increasing',
      withStore(async ({ store, reopen }) => {
        if (!reopen) return;
        const stored = await appendAll(store, [testEvents(20, (i) => ({ tenantId: i % 2 ? 't' : null, audited: i === 3 }))]);
        await holdOneGroup(store, 'c', T0);
        await store.writeProgress({ instance: 'a', cursors: [{ group: 'c', partition: 0, epoch: 1, position: stored[5]!.position }] });
        await store.close();
        const again = await reopen();
        assert.deepEqual(
          (await collect(again.readEvents())).map((e) => hex(e.position)),
          stored.map((e) => hex(e.position)),
        );
        assert.deepEqual(
          (await again.readCursors()).map((c) => [c.group, c.partition, hex(c.position!)]),
          [['c', 0, hex(stored[5]!.position)]],
        );
        const round = await again.coordinate({
          instance: 'a',
          groups: [{ name: 'c', startFrom: 'now' }],
          partitions: 9,
          leaseMs: LEASE_MS,
          now: T0 + 1,
        });
        assert.deepEqual(
          round.held.map((h) => [h.partition, h.epoch, hex(h.cursor!)]),
          [[0, 1, hex(stored[5]!.position)]],
        );
        assert.equal(hex((await again.lookup(stored[7]!.item.eventId))!), hex(stored[7]!.position));
        const stats = await again.stats();
        assert.equal(stats.events, 20);
        assert.equal(stats.auditEntries, 1);
        const dup = await again.append([{ ...stored[0]!.item, checkDuplicate: true }, testEvent().item]);
        assert.deepEqual(dup.duplicate, [true, false]);
        assert.ok(comparePositions(dup.positions[1]!, stored[19]!.position) > 0);
      }),
    );
  });
}
