import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createBus, type Event, type EventBus, type EventInput, type Receipt } from '../src/index.js';
import { collect, recorder, tempDir, uuid } from './helpers.js';

describe('durable bus on lmdb', () => {
  const dir = tempDir();
  const out = recorder(dir);
  const path = dir.file('store');
  const tenants = [uuid(), uuid(), uuid()];
  const users = [uuid(), uuid()];
  const emitted: Event[] = [];
  let bus: EventBus;

  const inputs = (): EventInput[] => {
    const list: EventInput[] = [];
    for (let i = 0; i < 60; i++) {
      const tenant_id = i % 4 === 3 ? null : tenants[i % 3]!;
      const user_id = users[i % 2]!;
      const event_type =
        i % 5 === 0 ? 'UserLoggedIn' : i % 5 === 1 ? 'UserLoggedOut' : i % 5 === 2 ? { Custom: 'Audited' } : 'SessionExtended';
      list.push({
        // Timestamps out of emit order on purpose: replay is in store order, the time filter still applies.
        timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i % 2 === 0 ? i : 60 - i)).toISOString(),
        event_type,
        payload: { i, nested: { list: [i, String(i)] } },
        metadata: { source: 'durability-test', user_id, tenant_id },
      });
    }
    return list;
  };

  before(async () => {
    bus = await createBus({
      store: { kind: 'lmdb', path },
      consumers: [out.consumer('recorder')],
      audit: { eventTypes: ['UserLoggedIn', 'UserLoggedOut', { Custom: 'Audited' }] },
      dispatch: { maxBatch: 16 },
    });
    const list = inputs();
    // Several commits: the store holds several blocks.
    for (let k = 0; k < list.length; k += 20) await bus.emitMany(list.slice(k, k + 20));
    await bus.flush();
    const all = await collect(bus.replay());
    emitted.push(...all);
  });
  after(async () => {
    await bus.close();
    dir.remove();
  });

  it('replays every event in store order, equal to what consumers received', async () => {
    assert.equal(emitted.length, 60);
    assert.deepEqual(
      emitted.map((e) => (e.payload as { i: number }).i),
      Array.from({ length: 60 }, (_, i) => i),
    );
    const delivered = new Map(out.read().map((d) => [d.event_id, d]));
    for (const e of emitted) assert.ok(delivered.has(e.event_id));
    assert.deepEqual(emitted[7]!.payload, { i: 7, nested: { list: [7, '7'] } });
  });

  it('replays by tenant through its index: only that tenant, in order', async () => {
    for (const tenant of tenants) {
      const got = await collect(bus.replay({ tenantId: tenant }));
      const want = emitted.filter((e) => e.metadata.tenant_id === tenant);
      assert.ok(want.length > 0);
      assert.deepEqual(got, want);
    }
    assert.deepEqual(await collect(bus.replay({ tenantId: uuid() })), []);
  });

  it('replays by time range and type, in store order', async () => {
    const from = Date.UTC(2026, 0, 1, 0, 0, 20);
    const to = Date.UTC(2026, 0, 1, 0, 0, 40);
    const got = await collect(bus.replay({ from: new Date(from), to: new Date(to).toISOString() }));
    const want = emitted.filter((e) => Date.parse(e.timestamp) >= from && Date.parse(e.timestamp) < to);
    assert.ok(want.length > 5);
    assert.deepEqual(got, want);
    const logins = await collect(bus.replay({ types: ['UserLoggedIn', { Custom: 'Audited' }], tenantId: tenants[0]! }));
    assert.deepEqual(
      logins,
      emitted.filter(
        (e) =>
          e.metadata.tenant_id === tenants[0] &&
          (e.event_type === 'UserLoggedIn' || (typeof e.event_type === 'object' && e.event_type.Custom === 'Audited')),
      ),
    );
  });

  it('resumes after a position and honours limit', async () => {
    const receipts = await bus.emitMany([{ event_type: 'SessionCreated', metadata: { source: 'x' } }]);
    const firstTen = await collect(bus.replay({ limit: 10 }));
    assert.equal(firstTen.length, 10);
    const tail = await collect(bus.replay({ after: receipts[0]!.position }));
    assert.deepEqual(tail, []);
    await bus.flush();
  });

  it('writes the audit log in the events own transactions, queryable by user, tenant, type and time', async () => {
    const entries = await collect(bus.audit.query());
    const audited = emitted.filter((e) => (e.payload as { i: number }).i % 5 <= 2);
    assert.equal(entries.length, audited.length);
    assert.deepEqual(
      entries.map((a) => a.event_id),
      audited.map((e) => e.event_id),
    );
    const first = entries[0]!;
    assert.deepEqual(Object.keys(first), ['audit_id', 'event_id', 'event_type', 'timestamp', 'payload', 'metadata']);
    assert.match(first.audit_id, /^[0-9a-f]{8}-/);
    assert.equal(new Set(entries.map((a) => a.audit_id)).size, entries.length);
    assert.ok(
      entries.some((a) => a.event_type === 'Custom("Audited")'),
      'custom types as the seed formats them',
    );
    const byUser = await collect(bus.audit.query({ userId: users[1]! }));
    assert.deepEqual(
      byUser.map((a) => a.event_id),
      audited.filter((e) => e.metadata.user_id === users[1]).map((e) => e.event_id),
    );
    const byTenant = await collect(bus.audit.query({ tenantId: tenants[2]!, types: ['UserLoggedOut'] }));
    assert.deepEqual(
      byTenant.map((a) => a.event_id),
      audited.filter((e) => e.metadata.tenant_id === tenants[2] && e.event_type === 'UserLoggedOut').map((e) => e.event_id),
    );
    const from = Date.UTC(2026, 0, 1, 0, 0, 30);
    const late = await collect(bus.audit.query({ from }));
    assert.deepEqual(
      late.map((a) => a.event_id),
      audited.filter((e) => Date.parse(e.timestamp) >= from).map((e) => e.event_id),
    );
  });

  it('stores and delivers an event_id once, across emits and across a reopen', async () => {
    const event_id = uuid();
    const input: EventInput = { event_id, event_type: 'SessionCreated', payload: { once: true }, metadata: { source: 'test' } };
    const [a, b] = await Promise.all([bus.emit(input), bus.emit(input)]);
    assert.equal(a.position, b.position);
    assert.deepEqual([a.duplicate, b.duplicate].sort(), [false, true]);
    const c = await bus.emit(input);
    assert.equal(c.duplicate, true);
    assert.equal(c.position, a.position);
    await onceAcrossReopen(input, a);
  });

  /** Closes and reopens the bus, emits `input` again: a duplicate of `first`, delivered and stored once in all. */
  async function onceAcrossReopen(input: EventInput, first: Receipt): Promise<void> {
    await bus.flush();
    await bus.close();
    bus = await createBus({
      store: { kind: 'lmdb', path },
      consumers: [out.consumer('recorder')],
      audit: { eventTypes: ['UserLoggedIn'] },
    });
    const again = await bus.emit(input);
    assert.equal(again.duplicate, true);
    assert.equal(again.position, first.position);
    await bus.flush();
    assert.equal(out.read().filter((x) => x.event_id === first.event_id).length, 1, 'delivered once');
    assert.equal((await collect(bus.replay())).filter((e) => e.event_id === first.event_id).length, 1, 'stored once');
  }

  it('stores and delivers once an event emitted again with the event_id the bus generated for it', async () => {
    // The generated id has no id key of its own: the store finds it through the time index (indexedById).
    const input: EventInput = { event_type: 'SessionCreated', payload: { generated: true }, metadata: { source: 'test' } };
    const first = await bus.emit(input);
    assert.equal(first.duplicate, false);
    const again = await bus.emit({ ...input, event_id: first.event_id });
    assert.equal(again.duplicate, true);
    assert.equal(again.position, first.position);
    await onceAcrossReopen({ ...input, event_id: first.event_id }, first);
  });
});

describe('dead letters are persisted', () => {
  it('survive a reopen, and redrive reaches only the failed consumer', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const path = dir.file('store');
    const options = {
      store: { kind: 'lmdb' as const, path },
      consumers: [out.consumer('flaky'), out.consumer('recorder')],
      delivery: { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 2 } },
    };
    try {
      let bus = await createBus(options);
      // Event 3 is ~300 KB: its dead letter is stored in chunks (FoundationDB's values are at most 100 KB).
      const pad = 'x'.repeat(300_000);
      const receipts = await bus.emitMany(
        [0, 1, 2, 3].map((seq) => ({
          event_type: 'SessionCreated' as const,
          payload: { seq, failTimes: seq % 2 === 1 ? 2 : 0, ...(seq === 3 ? { pad } : {}) },
          metadata: { source: 't', tenant_id: uuid() },
        })),
      );
      await bus.flush();
      await bus.close();
      bus = await createBus(options);
      const dead = await bus.deadLetters.list();
      assert.equal(dead.length, 2);
      assert.deepEqual(
        dead.map((d) => d.event.event_id),
        [receipts[1]!.event_id, receipts[3]!.event_id],
      );
      assert.ok(dead.every((d) => d.consumer === 'Flaky'));
      assert.equal((dead[1]!.event.payload as { pad: string }).pad, pad, 'the big event read back whole');
      const recorderBefore = out.read().filter((d) => d.consumer === 'Recorder').length;
      assert.equal(await bus.deadLetters.redrive({ consumer: 'Flaky' }), 2);
      await bus.flush();
      assert.deepEqual(await bus.deadLetters.list(), []);
      assert.equal(out.read().filter((d) => d.consumer === 'Recorder').length, recorderBefore, 'the recorder was not called again');
      await bus.close();
    } finally {
      dir.remove();
    }
  });
});

describe('the default store', () => {
  it('is lmdb in ./eventrail-data', async () => {
    const dir = tempDir();
    const cwd = process.cwd();
    process.chdir(dir.path);
    try {
      const bus = await createBus();
      assert.equal(bus.options.store.kind, 'lmdb');
      await bus.emit({ event_type: 'SessionCreated', metadata: { source: 't' } });
      assert.equal((await collect(bus.replay())).length, 1);
      await bus.close();
      assert.ok(existsSync(join(dir.path, 'eventrail-data')));
    } finally {
      process.chdir(cwd);
      dir.remove();
    }
  });
});
