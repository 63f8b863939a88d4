/**
 * bus.metrics(): the Prometheus text of one bus's own registry, with exact
 * counts after known traffic, plus what consumers report through ctx.metrics
 * (the seed's MetricsCollector among them).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createBus, type EventInput } from '../src/index.js';
import { metricValue, recorder, tempDir, uuid } from './helpers.js';

const METRICS_COLLECTOR = fileURLToPath(new URL('../src/consumers/metrics-collector.js', import.meta.url));

const event = (event_type: EventInput['event_type'], payload: Record<string, unknown> = {}): EventInput => ({
  event_type,
  payload: payload as EventInput['payload'],
  metadata: { source: 'test', user_id: uuid() },
});

describe('bus.metrics()', () => {
  it('counts emits, deliveries, failures, retries and dead letters exactly', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const bus = await createBus({
      store: { kind: 'none' },
      consumers: [out.consumer('flaky'), out.consumer('recorder'), METRICS_COLLECTOR],
      pool: { maxThreads: 2 },
      delivery: { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 5 } },
    });
    try {
      await bus.emitMany([
        ...Array.from({ length: 10 }, (_, i) => event('UserLoggedIn', { fail: i < 3 })),
        ...Array.from({ length: 4 }, () => event('SessionExpired')),
        ...Array.from({ length: 2 }, () => event('UserLoggedOut')),
      ]);
      await bus.emit(event({ Custom: 'Nobody' }, { failTimes: 1 }));
      await bus.flush();
      const text = await bus.metrics();
      const value = (series: string) => metricValue(text, series);

      assert.equal(value('eventrail_events_emitted_total{event_type="UserLoggedIn"}'), 10);
      assert.equal(value('eventrail_events_emitted_total{event_type="SessionExpired"}'), 4);
      assert.equal(value('eventrail_events_emitted_total{event_type="UserLoggedOut"}'), 2);
      assert.equal(value('eventrail_events_emitted_total{event_type="Custom:Nobody"}'), 1);

      assert.equal(value('eventrail_deliveries_total{consumer="Recorder"}'), 17);
      assert.equal(value('eventrail_deliveries_total{consumer="Flaky"}'), 14, '17 events, 3 of which always fail');
      assert.equal(value('eventrail_deliveries_total{consumer="MetricsCollector"}'), 14, 'logins and expired sessions only');

      assert.equal(value('eventrail_delivery_failures_total{consumer="Flaky"}'), 3 * 2 + 1);
      assert.equal(value('eventrail_delivery_retries_total{consumer="Flaky"}'), 3 + 1);
      assert.equal(value('eventrail_dead_letters_total{consumer="Flaky"}'), 3);
      assert.equal(
        value('eventrail_delivery_failures_total{consumer="Recorder"}'),
        undefined,
        'no series for a consumer that never failed',
      );
      assert.equal((await bus.deadLetters.list()).length, 3);

      // Every event is in some batch once, plus once more per retry.
      assert.equal(value('eventrail_batch_size_sum'), 17 + 4);
      assert.ok(value('eventrail_batch_size_count')! >= 1);
      assert.ok(text.includes('eventrail_batch_size_bucket{le="+Inf"}'));
      // One observation per dispatched batch of fresh events (not per event, and not for retries).
      const latencyCount = value('eventrail_emit_to_handled_seconds_count')!;
      assert.ok(latencyCount >= 1 && latencyCount <= value('eventrail_batch_size_count')!, `${latencyCount} observations`);
      assert.ok(value('eventrail_emit_to_handled_seconds_sum')! > 0);
      assert.equal(value('eventrail_pending_events'), 0);
      const utilization = value('eventrail_pool_utilization');
      assert.ok(utilization !== undefined && utilization >= 0 && utilization <= 1, `utilization ${utilization}`);

      // The seed's MetricsCollector, reported through ctx.metrics.
      assert.equal(value('user_logins_total'), 10);
      assert.equal(value('sessions_expired_total'), 4);

      for (const name of [
        'eventrail_events_emitted_total',
        'eventrail_deliveries_total',
        'eventrail_delivery_failures_total',
        'eventrail_dead_letters_total',
        'eventrail_batch_size',
        'eventrail_emit_to_handled_seconds',
        'eventrail_pending_events',
        'eventrail_pool_utilization',
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is declared`);
      }
    } finally {
      await bus.close();
      dir.remove();
    }
  });

  it('counts rejected emits by code', async () => {
    const bus = await createBus({ store: { kind: 'none' }, pool: { maxThreads: 1 }, limits: { maxEventBytes: 512 } });
    try {
      await assert.rejects(bus.emit({ event_type: 'Nope' as never, metadata: { source: 'test' } }));
      await assert.rejects(bus.emit(null as never));
      await assert.rejects(bus.emit(event('UserLoggedIn', { blob: 'x'.repeat(1000) })));
      const text = await bus.metrics();
      assert.equal(metricValue(text, 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_INVALID_EVENT"}'), 2);
      assert.equal(metricValue(text, 'eventrail_emits_rejected_total{code="ERR_EVENTRAIL_EVENT_TOO_LARGE"}'), 1);
      assert.equal(metricValue(text, 'eventrail_events_emitted_total{event_type="UserLoggedIn"}'), undefined);
    } finally {
      await bus.close();
    }
  });

  it('two buses keep separate registries', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const a = await createBus({ store: { kind: 'none' }, consumers: [out.consumer('recorder')], pool: { maxThreads: 1 } });
    const b = await createBus({ store: { kind: 'none' }, consumers: [METRICS_COLLECTOR], pool: { maxThreads: 1 } });
    try {
      await a.emitMany([event('UserLoggedIn'), event('UserLoggedIn'), event('UserLoggedIn')]);
      await b.emitMany(Array.from({ length: 5 }, () => event('UserLoggedIn')));
      await Promise.all([a.flush(), b.flush()]);
      const [textA, textB] = await Promise.all([a.metrics(), b.metrics()]);
      assert.equal(metricValue(textA, 'eventrail_events_emitted_total{event_type="UserLoggedIn"}'), 3);
      assert.equal(metricValue(textB, 'eventrail_events_emitted_total{event_type="UserLoggedIn"}'), 5);
      assert.equal(metricValue(textA, 'eventrail_deliveries_total{consumer="Recorder"}'), 3);
      assert.equal(metricValue(textB, 'eventrail_deliveries_total{consumer="Recorder"}'), undefined);
      assert.equal(metricValue(textB, 'eventrail_deliveries_total{consumer="MetricsCollector"}'), 5);
      assert.equal(metricValue(textB, 'user_logins_total'), 5);
      assert.doesNotMatch(textA, /user_logins_total/, 'a consumer metric shows only on its own bus');
    } finally {
      await Promise.all([a.close(), b.close()]);
      dir.remove();
    }
  });

  it("the MetricsCollector only subscribes to the seed's two types", async () => {
    const bus = await createBus({ store: { kind: 'none' }, consumers: [METRICS_COLLECTOR], pool: { maxThreads: 1 } });
    try {
      assert.deepEqual(
        bus.consumers.map((c) => [c.name, c.eventTypes]),
        [['MetricsCollector', ['UserLoggedIn', 'SessionExpired']]],
      );
      await bus.emitMany([event('UserLoggedOut'), event('SessionExpired'), event('SessionCreated')]);
      await bus.flush();
      const text = await bus.metrics();
      assert.equal(metricValue(text, 'sessions_expired_total'), 1);
      assert.equal(metricValue(text, 'user_logins_total'), undefined);
      assert.equal(metricValue(text, 'eventrail_deliveries_total{consumer="MetricsCollector"}'), 1);
    } finally {
      await bus.close();
    }
  });
});
