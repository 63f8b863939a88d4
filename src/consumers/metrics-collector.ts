/**
 * The seed's MetricsCollector as a consumer module: counts logins and expired
 * sessions. Counters are reported through ctx.metrics, aggregated per batch in
 * the worker and added to the bus's registry on the main thread, so they show
 * in `bus.metrics()`. Load it like any consumer module, by its URL:
 * `createBus({ consumers: [import.meta.resolve('eventrail/consumers/metrics-collector')] })`.
 */
import { defineConsumer } from '../consumer.js';

export default defineConsumer({
  name: 'MetricsCollector',
  eventTypes: ['UserLoggedIn', 'SessionExpired'],
  handle(event, ctx) {
    switch (event.event_type) {
      case 'UserLoggedIn':
        ctx.metrics.increment('user_logins_total');
        break;
      case 'SessionExpired':
        ctx.metrics.increment('sessions_expired_total');
        break;
    }
  },
});
