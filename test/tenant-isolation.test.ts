/**
 * Queries filtered by tenant (replay, the audit log, dead letters) return
 * exactly that tenant's events: none of another tenant's, none without a
 * tenant, and none missing, for any interleaving of emits of several tenants,
 * whichever case the tenant's uuid is written in, and combined with the other
 * filters (from, to, types, after, limit), checked against a model. Every
 * event is delivered exactly once (Flaky, one attempt), and exactly the failed
 * ones are dead-lettered.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { EventInput, EventType, Receipt } from '../src/index.js';
import { collect, fixture, suiteBus, uuid } from './helpers.js';

const AUDITED: readonly EventType[] = ['UserLoggedIn', 'UserLoggedOut', 'SessionInvalidated'];
const NOT_AUDITED: readonly EventType[] = ['SessionCreated', 'TokenRefreshed', { Custom: 'TenantThing' }];
const TENANTS = 4;

type Case = 'lower' | 'upper' | 'mixed';
const spell = (id: string, how: Case) =>
  how === 'lower' ? id : how === 'upper' ? id.toUpperCase() : [...id].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join('');

/** One event of a run: its tenant (an index into the run's tenants, or null for none), type, and whether Flaky fails it. */
interface Planned {
  readonly tenant: number | null;
  readonly type: EventType;
  readonly fail: boolean;
  /** How the tenant's uuid is written in this emit. */
  readonly spelled: Case;
  readonly user: boolean;
}

const planned: fc.Arbitrary<Planned> = fc.record({
  tenant: fc.option(fc.nat(TENANTS - 1), { freq: 4 }),
  type: fc.constantFrom(...AUDITED, ...NOT_AUDITED),
  fail: fc.boolean(),
  spelled: fc.constantFrom<Case>('lower', 'upper', 'mixed'),
  user: fc.boolean(),
});

const ALL_TYPES: readonly EventType[] = [...AUDITED, ...NOT_AUDITED];
const typeKey = (t: EventType) => (typeof t === 'string' ? t : `Custom:${t.Custom}`);

/**
 * Filters combined with the tenant. Bounds are picked among the run's own
 * events (an index, taken modulo their number) so that they fall inside it:
 * `from` and `to` at an event's timestamp, `after` at an event's position.
 */
const filters = fc.record({
  from: fc.option(fc.nat()),
  to: fc.option(fc.nat()),
  after: fc.option(fc.nat()),
  types: fc.option(fc.subarray([...ALL_TYPES], { minLength: 1 })),
  limit: fc.option(fc.integer({ min: 0, max: 6 })),
});

/** Emits in groups: a group of one is an emit(), a larger one an emitMany(); groups are issued without waiting for each other. */
const run = fc.record({
  groups: fc.array(fc.array(planned, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 10 }),
  querySpelling: fc.constantFrom<Case>('lower', 'upper', 'mixed'),
  filters: fc.array(filters, { minLength: 1, maxLength: 3 }),
});

describe('tenant isolation', { timeout: 120_000 }, () => {
  const suite = suiteBus((dir) => ({
    store: { kind: 'lmdb', path: dir.file('store') },
    consumers: [fixture('flaky')],
    pool: { maxThreads: 1 },
    dispatch: { lingerMs: 0, lanes: 4 },
    delivery: { maxAttempts: 1 },
  }));
  /** Tenants of earlier runs: their data must never show up in a later run's queries either. */
  const allTenants = new Set<string>();

  it('replay, audit and dead letters by tenant return exactly that tenant’s events, for any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(run, async ({ groups, querySpelling, filters: combos }) => {
        // Fresh tenants per run, so runs cannot see each other's events by accident.
        const tenants = Array.from({ length: TENANTS }, () => uuid());
        for (const t of tenants) allTenants.add(t);
        const emitted: Array<{ plan: Planned; receipt: Receipt }> = [];
        await Promise.all(
          groups.map(async (group) => {
            const inputs: EventInput[] = group.map((plan) => ({
              event_type: plan.type,
              payload: { fail: plan.fail },
              metadata: {
                source: 'tenant-test',
                tenant_id: plan.tenant === null ? null : spell(tenants[plan.tenant]!, plan.spelled),
                user_id: plan.user ? uuid() : null,
              },
            }));
            const receipts = inputs.length === 1 ? [await suite.bus.emit(inputs[0]!)] : await suite.bus.emitMany(inputs);
            receipts.forEach((receipt, i) => emitted.push({ plan: group[i]!, receipt }));
          }),
        );
        await suite.bus.flush();
        emitted.sort((a, b) => (a.receipt.position < b.receipt.position ? -1 : 1));

        // Delivered: every event of the run exactly once (one attempt each, failing or not), and nothing else of this run's.
        const ids = new Set(emitted.map((e) => e.receipt.event_id));
        const deliveries = suite.out.read().filter((d) => ids.has(d.event_id));
        assert.equal(deliveries.length, emitted.length, `${deliveries.length} deliveries for ${emitted.length} events`);
        assert.deepEqual(new Set(deliveries.map((d) => d.event_id)), ids);
        assert.ok(deliveries.every((d) => d.attempt === 1));

        // The stored timestamps, for the time filters' model.
        const timeOf = new Map<string, number>();
        const beforeFirst = (BigInt(`0x${emitted[0]!.receipt.position}`) - 1n).toString(16).padStart(24, '0');
        for await (const e of suite.bus.replay({ after: beforeFirst })) {
          timeOf.set(e.event_id, Date.parse(e.timestamp));
        }
        for (const e of emitted) assert.ok(timeOf.has(e.receipt.event_id), 'every emitted event is stored');

        for (let t = 0; t < TENANTS; t++) {
          const tenant = tenants[t]!;
          const query = spell(tenant, querySpelling);
          const mine = emitted.filter((e) => e.plan.tenant === t);

          const replayed = await collect(suite.bus.replay({ tenantId: query }));
          assert.ok(
            replayed.every((e) => e.metadata.tenant_id === tenant),
            `replay for ${tenant} returned another tenant's events: ${JSON.stringify(replayed.map((e) => e.metadata.tenant_id))}`,
          );
          assert.deepEqual(
            replayed.map((e) => e.event_id),
            mine.map((e) => e.receipt.event_id),
            `replay for tenant ${t} (queried as ${query}) returns exactly its ${mine.length} events, in store order`,
          );

          const audited = await collect(suite.bus.audit.query({ tenantId: query }));
          assert.ok(
            audited.every((a) => a.metadata.tenant_id === tenant),
            'the audit query returned another tenant’s entries',
          );
          assert.deepEqual(
            audited.map((a) => a.event_id),
            mine.filter((e) => AUDITED.includes(e.plan.type)).map((e) => e.receipt.event_id),
            `audit for tenant ${t} returns exactly its audited events`,
          );

          const dead = await suite.bus.deadLetters.list({ tenantId: query });
          assert.ok(
            dead.every((d) => d.event.metadata.tenant_id === tenant),
            'the dead-letter query returned another tenant’s events',
          );
          assert.deepEqual(
            new Set(dead.map((d) => d.event.event_id)),
            new Set(mine.filter((e) => e.plan.fail).map((e) => e.receipt.event_id)),
            `dead letters for tenant ${t} are exactly its failed events`,
          );
          assert.equal(dead.length, mine.filter((e) => e.plan.fail).length, 'one dead letter per failed event');
        }

        // The tenant combined with the other filters: exactly what the model says, in store order.
        for (const combo of combos) {
          const at = (i: number | null) => (i === null ? null : emitted[i % emitted.length]!);
          const from = at(combo.from) === null ? undefined : timeOf.get(at(combo.from)!.receipt.event_id)!;
          const to = at(combo.to) === null ? undefined : timeOf.get(at(combo.to)!.receipt.event_id)!;
          const after = at(combo.after)?.receipt.position;
          const types = combo.types ?? undefined;
          const limit = combo.limit ?? undefined;
          const typeKeys = types === undefined ? null : new Set(types.map(typeKey));
          const inTime = (e: { receipt: Receipt }) => {
            const ms = timeOf.get(e.receipt.event_id)!;
            return (from === undefined || ms >= from) && (to === undefined || ms < to);
          };
          const ofType = (e: { plan: Planned }) => typeKeys === null || typeKeys.has(typeKey(e.plan.type));
          const afterIt = (e: { receipt: Receipt }) => after === undefined || e.receipt.position > after;
          const take = <T>(list: T[]) => (limit === undefined ? list : list.slice(0, limit));
          for (let t = 0; t < TENANTS; t++) {
            const query = spell(tenants[t]!, querySpelling);
            const ofTenant = emitted.filter((e) => e.plan.tenant === t);
            const mine = ofTenant.filter((e) => inTime(e) && ofType(e) && afterIt(e));
            const what = `tenant ${t} with ${JSON.stringify({ from, to, after, types, limit })}`;

            const replayed = await collect(suite.bus.replay({ tenantId: query, from, to, after, types, limit }));
            assert.deepEqual(
              replayed.map((e) => e.event_id),
              take(mine).map((e) => e.receipt.event_id),
              `replay for ${what}`,
            );

            const audited = await collect(suite.bus.audit.query({ tenantId: query, from, to, types, limit }));
            assert.deepEqual(
              audited.map((a) => a.event_id),
              // The audit query has no `after`.
              take(ofTenant.filter((e) => inTime(e) && ofType(e) && AUDITED.includes(e.plan.type))).map((e) => e.receipt.event_id),
              `audit for ${what}`,
            );

            const dead = await suite.bus.deadLetters.list({ tenantId: query, types, limit });
            const failed = ofTenant.filter((e) => e.plan.fail && ofType(e));
            assert.deepEqual(
              dead.map((d) => d.event.event_id),
              take(failed).map((e) => e.receipt.event_id),
              `dead letters for ${what}`,
            );
          }
        }

        // A tenant that never emitted, and one differing from a real one in the last digit, see nothing.
        const last = tenants[0]!.at(-1) === '0' ? '1' : '0';
        for (const stranger of [uuid(), tenants[0]!.slice(0, -1) + last]) {
          assert.deepEqual(await collect(suite.bus.replay({ tenantId: stranger })), []);
          assert.deepEqual(await collect(suite.bus.audit.query({ tenantId: stranger })), []);
          assert.deepEqual(await suite.bus.deadLetters.list({ tenantId: stranger }), []);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('across all runs: every stored event with a tenant is returned for that tenant only, and the counts add up', async () => {
    const everything = await collect(suite.bus.replay());
    const byTenant = new Map<string | null, number>();
    for (const e of everything) byTenant.set(e.metadata.tenant_id, (byTenant.get(e.metadata.tenant_id) ?? 0) + 1);
    let sum = 0;
    for (const tenant of allTenants) {
      const replayed = await collect(suite.bus.replay({ tenantId: tenant }));
      assert.ok(replayed.every((e) => e.metadata.tenant_id === tenant));
      assert.equal(replayed.length, byTenant.get(tenant) ?? 0, `tenant ${tenant}`);
      sum += replayed.length;
    }
    assert.equal(sum + (byTenant.get(null) ?? 0), everything.length, 'events with a tenant plus events without one are all the events');
    const allDead = await suite.bus.deadLetters.list();
    let deadSum = 0;
    for (const tenant of allTenants) deadSum += (await suite.bus.deadLetters.list({ tenantId: tenant })).length;
    assert.equal(deadSum + allDead.filter((d) => d.event.metadata.tenant_id === null).length, allDead.length);
  });
});
