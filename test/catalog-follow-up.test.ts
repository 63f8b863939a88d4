/**
 * A catalogue consumer's follow-ups are checked against its catalogue at
 * ctx.emit, in the worker: a payload the catalogue rejects throws a
 * PayloadSchemaError there, where the handler can catch it, instead of failing
 * the whole delivery later (and re-running the handler); what is emitted is
 * the schema's output. Real lmdb store, consumers in real workers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RefundAttempt } from './fixtures/catalog-follow-up.js';
import { collect, fixture, linesOf, uuid, withBus } from './helpers.js';

describe('catalogue consumers: follow-ups', () => {
  it('ctx.emit throws the PayloadSchemaError at once and emits the schema output of a valid payload', async () => {
    await withBus(
      (dir) => ({
        store: { kind: 'lmdb', path: dir.file('store') },
        // No bus catalogue: only the consumer's own catalogue checks (and fills in) the follow-up.
        consumers: [fixture('catalog-follow-up')],
        pool: { maxThreads: 1 },
        delivery: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 1 } },
      }),
      async ({ bus, out }) => {
        const login = await bus.emit({
          event_type: 'UserLoggedIn',
          payload: { user_id: uuid() },
          metadata: { source: 'test', user_id: null, correlation_id: uuid() },
        });
        await bus.flush();

        const attempts = linesOf<RefundAttempt>(out.path, 'Refunder');
        assert.equal(attempts.length, 1, 'the handler ran once: the delivery did not fail');
        assert.equal(attempts[0]!.attempt, 1);
        assert.equal(attempts[0]!.thrown, 'ERR_EVENTRAIL_PAYLOAD_SCHEMA', 'ctx.emit threw the catalogue error');
        assert.match(attempts[0]!.message ?? '', /Refunded/);
        assert.match(attempts[0]!.message ?? '', /payload\.amount/);
        assert.equal((await bus.deadLetters.list()).length, 0);

        const stored = await collect(bus.replay());
        const refunds = stored.filter((e) => typeof e.event_type === 'object' && e.event_type.Custom === 'Refunded');
        assert.equal(refunds.length, 1, 'only the valid follow-up was stored');
        assert.deepEqual(refunds[0]!.payload, { order_id: login.event_id, amount: 0 }, 'stored as the schema outputs it');
        assert.equal(refunds[0]!.metadata.causation_id, login.event_id);
      },
    );
  });
});
