/**
 * Queries filtered by tenant (replay, the audit log, dead letters) return
 * exactly that tenant's events: none of another tenant's, none without a
 * tenant, and none missing, for any interleaving of emits of several tenants,
 * whichever case the tenant's uuid is written in.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBus, type EventBus, type EventInput, type EventType, type Receipt } from '../src/index.js';
import { fixture, recorder, tempDir, uuid } from './helpers.js';

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

/** Emits in groups: a group of one is an emit(), a larger one an emitMany(); groups are issued without waiting for each other. */
const run = fc.record({
  groups: fc.array(fc.array(planned, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 10 }),
  querySpelling: fc.constantFrom<Case>('lower', 'upper', 'mixed'),
});

describe('tenant isolation', { timeout: 120_000 }, () => {
  const dir = tempDir();
  recorder(dir);
  let bus: EventBus;
  /** Tenants of earlier runs: their data must never show up in a later run's queries either. */
  const allTenants = new Set<string>();

  before(async () => {
    bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [fixture('flaky')],
      pool: { maxThreads: 1 },
      dispatch: { lingerMs: 0, lanes: 4 },
      delivery: { maxAttempts: 1 },
    });
  });
  after(async () => {
    await bus?.close();
    dir.remove();
  });

  async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of source) out.push(item);
    return out;
  }

  it('replay, audit and dead letters by tenant return exactly that tenant’s events, for any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(run, async ({ groups, querySpelling }) => {
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
            const receipts = inputs.length === 1 ? [await bus.emit(inputs[0]!)] : await bus.emitMany(inputs);
            receipts.forEach((receipt, i) => emitted.push({ plan: group[i]!, receipt }));
          }),
        );
        await bus.flush();
        emitted.sort((a, b) => (a.receipt.position < b.receipt.position ? -1 : 1));

        for (let t = 0; t < TENANTS; t++) {
          const tenant = tenants[t]!;
          const query = spell(tenant, querySpelling);
          const mine = emitted.filter((e) => e.plan.tenant === t);

          const replayed = await collect(bus.replay({ tenantId: query }));
          assert.ok(
            replayed.every((e) => e.metadata.tenant_id === tenant),
            `replay for ${tenant} returned another tenant's events: ${JSON.stringify(replayed.map((e) => e.metadata.tenant_id))}`,
          );
          assert.deepEqual(
            replayed.map((e) => e.event_id),
            mine.map((e) => e.receipt.event_id),
            `replay for tenant ${t} (queried as ${query}) returns exactly its ${mine.length} events, in store order`,
          );

          const audited = await collect(bus.audit.query({ tenantId: query }));
          assert.ok(audited.every((a) => a.metadata.tenant_id === tenant), 'the audit query returned another tenant’s entries');
          assert.deepEqual(
            audited.map((a) => a.event_id),
            mine.filter((e) => AUDITED.includes(e.plan.type)).map((e) => e.receipt.event_id),
            `audit for tenant ${t} returns exactly its audited events`,
          );

          const dead = await bus.deadLetters.list({ tenantId: query });
          assert.ok(dead.every((d) => d.event.metadata.tenant_id === tenant), 'the dead-letter query returned another tenant’s events');
          assert.deepEqual(
            new Set(dead.map((d) => d.event.event_id)),
            new Set(mine.filter((e) => e.plan.fail).map((e) => e.receipt.event_id)),
            `dead letters for tenant ${t} are exactly its failed events`,
          );
          assert.equal(dead.length, mine.filter((e) => e.plan.fail).length, 'one dead letter per failed event');
        }

        // A tenant that never emitted, and one differing from a real one in the last digit, see nothing.
        const last = tenants[0]!.at(-1) === '0' ? '1' : '0';
        for (const stranger of [uuid(), tenants[0]!.slice(0, -1) + last]) {
          assert.deepEqual(await collect(bus.replay({ tenantId: stranger })), []);
          assert.deepEqual(await collect(bus.audit.query({ tenantId: stranger })), []);
          assert.deepEqual(await bus.deadLetters.list({ tenantId: stranger }), []);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('across all runs: every stored event with a tenant is returned for that tenant only, and the counts add up', async () => {
    const everything = await collect(bus.replay());
    const byTenant = new Map<string | null, number>();
    for (const e of everything) byTenant.set(e.metadata.tenant_id, (byTenant.get(e.metadata.tenant_id) ?? 0) + 1);
    let sum = 0;
    for (const tenant of allTenants) {
      const replayed = await collect(bus.replay({ tenantId: tenant }));
      assert.ok(replayed.every((e) => e.metadata.tenant_id === tenant));
      assert.equal(replayed.length, byTenant.get(tenant) ?? 0, `tenant ${tenant}`);
      sum += replayed.length;
    }
    assert.equal(sum + (byTenant.get(null) ?? 0), everything.length, 'events with a tenant plus events without one are all the events');
    const allDead = await bus.deadLetters.list();
    let deadSum = 0;
    for (const tenant of allTenants) deadSum += (await bus.deadLetters.list({ tenantId: tenant })).length;
    assert.equal(deadSum + allDead.filter((d) => d.event.metadata.tenant_id === null).length, allDead.length);
  });
});
