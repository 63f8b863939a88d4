/**
 * Follow-up events: a consumer emits through ctx.emit; the follow-up is caused
 * by the handled event (causation_id), inherits its correlation_id, goes through
 * the same pipeline, and flush() waits for the whole chain. A follow-up that
 * cannot be accepted fails the delivery that emitted it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type EventBus, type Receipt } from '../src/index.js';
import type { JsonDelivery } from './fixtures/json-recorder.js';
import type { Delivered } from './fixtures/record.js';
import { fixture, linesOf, metricValue, uuid, withBus } from './helpers.js';

interface EventJson {
  event_id: string;
  event_type: unknown;
  metadata: { correlation_id: string; causation_id: string | null; user_id: string | null; source: string };
}

describe('follow-up events', () => {
  it('a login causes WelcomeSent, which causes WelcomeOpened; flush() waits for the chain', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('follow-up'), fixture('recorder'), fixture('json-recorder')],
        pool: { maxThreads: 2 },
      },
      async ({ bus, out }) => {
        const correlation = uuid();
        const user = uuid();
        const login = await bus.emit({
          event_type: 'UserLoggedIn',
          payload: { seq: 0 },
          metadata: { source: 'login_handler', user_id: user, correlation_id: correlation },
        });
        await bus.flush();

        const events = linesOf<JsonDelivery>(out.path, 'JsonRecorder').map((d) => JSON.parse(d.json) as EventJson);
        const ofType = (type: unknown) => {
          const found = events.filter((e) => JSON.stringify(e.event_type) === JSON.stringify(type));
          assert.equal(found.length, 1, `exactly one ${JSON.stringify(type)}`);
          return found[0]!;
        };
        const sent = ofType({ Custom: 'WelcomeSent' });
        const opened = ofType({ Custom: 'WelcomeOpened' });
        assert.equal(ofType('UserLoggedIn').event_id, login.event_id);

        assert.equal(sent.metadata.causation_id, login.event_id, 'WelcomeSent is caused by the login');
        assert.equal(sent.metadata.correlation_id, correlation, 'WelcomeSent inherits the correlation');
        assert.equal(sent.metadata.source, 'Welcomer', 'the source defaults to the consumer name');
        assert.equal(opened.metadata.causation_id, sent.event_id, 'WelcomeOpened is caused by WelcomeSent');
        assert.equal(opened.metadata.correlation_id, correlation);
        assert.equal(opened.metadata.source, 'mailer', 'a given source is kept');
        assert.notEqual(sent.event_id, login.event_id);
        assert.notEqual(opened.event_id, sent.event_id);

        // Who saw what: the Welcomer its two types, the Recorder all three, each exactly once.
        const seen = out.read();
        const typesOf = (consumer: string) =>
          seen
            .filter((d) => d.consumer === consumer)
            .map((d) => d.type)
            .sort();
        assert.deepEqual(typesOf('Welcomer'), ['Custom:WelcomeSent', 'UserLoggedIn']);
        assert.deepEqual(typesOf('Recorder'), ['Custom:WelcomeOpened', 'Custom:WelcomeSent', 'UserLoggedIn']);
        assert.equal(bus.pending, 0);
      },
    );
  });

  it('many logins: one chain each, and the consumer metrics reach bus.metrics()', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('follow-up'), fixture('recorder')],
        pool: { maxThreads: 2, concurrentTasksPerWorker: 2 },
        dispatch: { maxBatch: 4 },
      },
      async ({ bus, out }) => {
        const logins: Receipt[] = await bus.emitMany(
          Array.from({ length: 25 }, (_, seq) => ({
            event_type: 'UserLoggedIn' as const,
            payload: { seq },
            metadata: { source: 'login_handler', user_id: uuid() },
          })),
        );
        await bus.flush();
        const recorded = out.read().filter((d) => d.consumer === 'Recorder');
        const byType = (type: string) => recorded.filter((d) => d.type === type);
        assert.equal(byType('UserLoggedIn').length, 25);
        const sent = byType('Custom:WelcomeSent');
        const opened = byType('Custom:WelcomeOpened');
        assert.equal(sent.length, 25);
        assert.equal(opened.length, 25);
        assert.deepEqual(new Set(sent.map((d) => d.causation_id)), new Set(logins.map((l) => l.event_id)));
        assert.deepEqual(new Set(opened.map((d) => d.causation_id)), new Set(sent.map((d) => d.event_id)));

        const text = await bus.metrics();
        assert.equal(metricValue(text, 'welcomes_total{kind="UserLoggedIn"}'), 25);
        assert.equal(metricValue(text, 'welcomes_total{kind="WelcomeSent"}'), 25);
        assert.equal(metricValue(text, 'eventrail_events_emitted_total{event_type="UserLoggedIn"}'), 25);
        assert.equal(metricValue(text, 'eventrail_events_emitted_total{event_type="Custom:WelcomeSent"}'), 25);
        assert.equal(metricValue(text, 'eventrail_events_emitted_total{event_type="Custom:WelcomeOpened"}'), 25);
      },
    );
  });

  describe('a follow-up that cannot be accepted', () => {
    async function withBadFollowUps(run: (bus: EventBus, read: () => Delivered[]) => Promise<void>) {
      await withBus(
        {
          store: { kind: 'none' },
          consumers: [fixture('bad-follow-up'), fixture('recorder')],
          pool: { maxThreads: 1 },
          delivery: { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 5 } },
          limits: { maxEventBytes: 1024 },
        },
        async ({ bus, out }) => {
          await run(bus, () => out.read());
        },
      );
    }

    it('an invalid follow-up (ctx.emit with a bad type) fails that delivery, which ends as a dead letter', async () => {
      await withBadFollowUps(async (bus, read) => {
        const login = await bus.emit({ event_type: 'UserLoggedIn', payload: { mode: 'bad-type' }, metadata: { source: 'test' } });
        await bus.flush();
        const dead = await bus.deadLetters.list();
        assert.equal(dead.length, 1);
        assert.equal(dead[0]!.consumer, 'BadFollowUp');
        assert.equal(dead[0]!.event.event_id, login.event_id);
        assert.equal(dead[0]!.attempts, 2);
        assert.equal(dead[0]!.error.code, 'ERR_EVENTRAIL_INVALID_EVENT');
        assert.match(dead[0]!.error.message, /event_type/);
        const seen = read();
        assert.deepEqual(
          seen.filter((d) => d.consumer === 'BadFollowUp').map((d) => d.attempt),
          [1, 2],
        );
        assert.equal(
          seen.filter((d) => d.consumer === 'Recorder' && d.event_id === login.event_id).length,
          1,
          'the other consumer got it once',
        );
        assert.equal(
          seen.filter((d) => d.type === 'Custom:ShouldNotBePublished').length,
          0,
          'a failed delivery publishes none of its follow-ups, not even the valid one before the bad one',
        );

        // The bus keeps working.
        const next = await bus.emit({ event_type: 'UserLoggedIn', payload: {}, metadata: { source: 'test' } });
        await bus.flush();
        assert.ok(read().some((d) => d.consumer === 'BadFollowUp' && d.event_id === next.event_id));
        assert.equal((await bus.deadLetters.list()).length, 1);
      });
    });

    it('a follow-up the main thread rejects (over limits.maxEventBytes) fails the delivery, which is not counted as delivered', async () => {
      await withBadFollowUps(async (bus, read) => {
        const login = await bus.emit({ event_type: 'UserLoggedIn', payload: { mode: 'too-large' }, metadata: { source: 'test' } });
        await bus.flush();
        const dead = await bus.deadLetters.list({ consumer: 'BadFollowUp' });
        assert.equal(dead.length, 1);
        assert.equal(dead[0]!.event.event_id, login.event_id);
        assert.equal(dead[0]!.attempts, 2);
        assert.equal(dead[0]!.error.code, 'ERR_EVENTRAIL_EVENT_TOO_LARGE');
        assert.equal(read().filter((d) => d.type === 'Custom:HugeFollowUp').length, 0);
        const text = await bus.metrics();
        assert.equal(metricValue(text, 'eventrail_delivery_failures_total{consumer="BadFollowUp"}'), 2);
        assert.equal(metricValue(text, 'eventrail_dead_letters_total{consumer="BadFollowUp"}'), 1);
        assert.equal(metricValue(text, 'eventrail_deliveries_total{consumer="Recorder"}'), 1);
        assert.equal(
          metricValue(text, 'eventrail_deliveries_total{consumer="BadFollowUp"}') ?? 0,
          0,
          'a delivery whose follow-up could not be accepted was not handled successfully',
        );
      });
    });
  });
});
