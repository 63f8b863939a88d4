/**
 * Failed deliveries are retried for the failed consumer only, with backoff, up
 * to delivery.maxAttempts, then kept as dead letters that can be listed and
 * redriven. Handlers that never settle time out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EventInput } from '../src/index.js';
import { fixture, metricValue, suiteBus, uuid, withBus } from './helpers.js';

const login = (payload: Record<string, unknown>): EventInput => ({
  event_type: 'UserLoggedIn',
  payload: payload as EventInput['payload'],
  metadata: { source: 'test', user_id: uuid() },
});

describe('retries and dead letters', () => {
  const suite = suiteBus({
    store: { kind: 'none' },
    consumers: [fixture('flaky'), fixture('recorder')],
    pool: { maxThreads: 2 },
    delivery: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 5 } },
  });

  const attemptsOf = (consumer: string, eventId: string) =>
    suite.out
      .read()
      .filter((d) => d.consumer === consumer && d.event_id === eventId)
      .map((d) => d.attempt);

  it('failTimes: 2 succeeds on attempt 3: attempts 1, 2, 3, no dead letter, the other consumer ran once', async () => {
    const { event_id } = await suite.bus.emit(login({ failTimes: 2 }));
    await suite.bus.flush();
    assert.deepEqual(attemptsOf('Flaky', event_id), [1, 2, 3]);
    assert.deepEqual(attemptsOf('Recorder', event_id), [1], 'retries re-run only the failed consumer');
    assert.deepEqual(await suite.bus.deadLetters.list({ eventId: event_id }), []);
  });

  it('fail: true ends as a dead letter after exactly maxAttempts (3) attempts', async () => {
    const { event_id, position } = await suite.bus.emit(login({ fail: true }));
    await suite.bus.flush();
    assert.deepEqual(attemptsOf('Flaky', event_id), [1, 2, 3]);
    assert.deepEqual(attemptsOf('Recorder', event_id), [1]);
    const dead = await suite.bus.deadLetters.list({ eventId: event_id });
    assert.equal(dead.length, 1);
    const [letter] = dead;
    assert.equal(letter!.consumer, 'Flaky');
    assert.equal(letter!.attempts, 3);
    assert.equal(letter!.position, position);
    assert.equal(letter!.event.event_id, event_id);
    assert.deepEqual(letter!.event.payload, { fail: true });
    assert.equal(letter!.error.message, 'flaky failure on attempt 3');
    assert.equal(letter!.error.code, 'ERR_EVENTRAIL_HANDLER_FAILED');
    assert.equal(letter!.error.name, 'Error');
    assert.match(letter!.error.stack ?? '', /flaky/);
    assert.ok(!Number.isNaN(Date.parse(letter!.failed_at)), 'failed_at is a timestamp');
  });

  it('a rejected promise is handled like a throw', async () => {
    const { event_id } = await suite.bus.emit(login({ fail: true, reject: true }));
    await suite.bus.flush();
    assert.deepEqual(attemptsOf('Flaky', event_id), [1, 2, 3]);
    const dead = await suite.bus.deadLetters.list({ eventId: event_id });
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.attempts, 3);
    assert.equal(dead[0]!.error.message, 'flaky rejection on attempt 3');
    const ok = await suite.bus.emit(login({ failTimes: 1, reject: true }));
    await suite.bus.flush();
    assert.deepEqual(attemptsOf('Flaky', ok.event_id), [1, 2]);
    assert.deepEqual(await suite.bus.deadLetters.list({ eventId: ok.event_id }), []);
  });

  it('lists dead letters, filterable by consumer, event id and type', async () => {
    const a = await suite.bus.emit(login({ fail: true }));
    const b = await suite.bus.emit({ event_type: 'SessionExpired', payload: { fail: true }, metadata: { source: 'test' } });
    await suite.bus.flush();
    const flaky = await suite.bus.deadLetters.list({ consumer: 'Flaky' });
    assert.equal(flaky.length, 4, 'fail, reject, and the two just emitted');
    assert.ok(flaky.every((d) => d.consumer === 'Flaky'));
    assert.ok(flaky.some((d) => d.event.event_id === a.event_id));
    assert.ok(flaky.some((d) => d.event.event_id === b.event_id));
    assert.deepEqual(await suite.bus.deadLetters.list({ consumer: 'Recorder' }), []);
    const expired = await suite.bus.deadLetters.list({ types: ['SessionExpired'] });
    assert.deepEqual(
      expired.map((d) => d.event.event_id),
      [b.event_id],
    );
    assert.equal((await suite.bus.deadLetters.list({ consumer: 'Flaky', limit: 2 })).length, 2);
    assert.equal((await suite.bus.deadLetters.list()).length, flaky.length);
  });

  it('the retry counters add up', async () => {
    const text = await suite.bus.metrics();
    const dead = (await suite.bus.deadLetters.list()).length;
    assert.equal(metricValue(text, 'eventrail_dead_letters_total{consumer="Flaky"}'), dead);
    assert.equal(metricValue(text, 'eventrail_delivery_failures_total{consumer="Recorder"}'), undefined);
    // Each dead letter failed 3 times; the two retried-then-succeeded events failed 2 and 1 times.
    assert.equal(metricValue(text, 'eventrail_delivery_failures_total{consumer="Flaky"}'), dead * 3 + 2 + 1);
    assert.equal(metricValue(text, 'eventrail_delivery_retries_total{consumer="Flaky"}'), dead * 2 + 2 + 1);
  });
});

describe('redrive', () => {
  it('re-dispatches a dead letter to the failed consumer only; on success the dead letter is gone', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('flaky'), fixture('recorder')],
        pool: { maxThreads: 1 },
        delivery: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 5 } },
      },
      async ({ bus, out }) => {
        // Fails its first 3 attempts: a dead letter. The redrive is attempt 4, which succeeds.
        const healing = await bus.emit(login({ failTimes: 3, seq: 1 }));
        const hopeless = await bus.emit(login({ fail: true, seq: 2 }));
        await bus.flush();
        assert.equal((await bus.deadLetters.list()).length, 2);

        assert.equal(await bus.deadLetters.redrive({ eventId: healing.event_id }), 1);
        await bus.flush();
        const seen = out.read();
        const attempts = (consumer: string, id: string) =>
          seen.filter((d) => d.consumer === consumer && d.event_id === id).map((d) => d.attempt);
        assert.deepEqual(attempts('Flaky', healing.event_id), [1, 2, 3, 4], 'ctx.attempt goes on counting after a redrive');
        assert.deepEqual(attempts('Recorder', healing.event_id), [1], 'the recorder is not called again');
        assert.deepEqual(attempts('Flaky', hopeless.event_id), [1, 2, 3], 'only the matching dead letter was redriven');
        const left = await bus.deadLetters.list();
        assert.deepEqual(
          left.map((d) => d.event.event_id),
          [hopeless.event_id],
        );

        // A redrive that fails again gets maxAttempts more attempts and stays a dead letter, with every attempt counted.
        assert.equal(await bus.deadLetters.redrive({ consumer: 'Flaky' }), 1);
        await bus.flush();
        assert.deepEqual(
          out
            .read()
            .filter((d) => d.consumer === 'Flaky' && d.event_id === hopeless.event_id)
            .map((d) => d.attempt),
          [1, 2, 3, 4, 5, 6],
        );
        const again = await bus.deadLetters.list();
        assert.equal(again.length, 1);
        assert.equal(again[0]!.attempts, 6);
        assert.equal(again[0]!.error.message, 'flaky failure on attempt 6');
        assert.equal(out.read().filter((d) => d.consumer === 'Recorder').length, 2, 'the recorder saw each event once');

        assert.equal(await bus.deadLetters.redrive({ consumer: 'Recorder' }), 0, 'nothing to redrive for a consumer without dead letters');
      },
    );
  });
});

describe('handler timeout', () => {
  it('a handler that never settles times out into a dead letter; the rest of its batch is delivered', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('hang'), fixture('recorder')],
        pool: { maxThreads: 1 },
        delivery: { handlerTimeoutMs: 200, maxAttempts: 1 },
      },
      async ({ bus, out }) => {
        const user = uuid();
        // One user and one emitMany: one commit, one lane, one batch.
        const receipts = await bus.emitMany(
          [0, 1, 2].map((seq) => ({
            event_type: 'UserLoggedIn' as const,
            payload: { seq, hang: seq === 1 },
            metadata: { source: 'test', user_id: user },
          })),
        );
        await bus.flush();
        const text = await bus.metrics();
        assert.equal(metricValue(text, 'eventrail_batch_size_count'), 1, 'the three events ran as one batch');

        const dead = await bus.deadLetters.list();
        assert.equal(dead.length, 1);
        assert.equal(dead[0]!.consumer, 'Hang');
        assert.equal(dead[0]!.event.event_id, receipts[1]!.event_id);
        assert.equal(dead[0]!.error.code, 'ERR_EVENTRAIL_HANDLER_TIMEOUT');
        assert.match(dead[0]!.error.message, /200 ms/);
        assert.equal(dead[0]!.attempts, 1);

        const seen = out.read();
        const seqs = (consumer: string) => seen.filter((d) => d.consumer === consumer).map((d) => d.seq);
        assert.deepEqual(seqs('Recorder'), [0, 1, 2]);
        assert.deepEqual(seqs('Hang'), [0, 1, 2], 'the event after the hanging one was still handled');
        assert.equal(metricValue(text, 'eventrail_deliveries_total{consumer="Hang"}'), 2);
        assert.equal(metricValue(text, 'eventrail_deliveries_total{consumer="Recorder"}'), 3);
      },
    );
  });
});
