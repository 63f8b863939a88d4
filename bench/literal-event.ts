/** The event the seed's design builds by hand: ids and time made per event, no validation. */
import type { Event, EventInput } from '../src/event/event.js';

export function literalEvent(input: EventInput): Event {
  return {
    event_id: crypto.randomUUID(),
    timestamp: new Date().toISOString(),
    event_type: input.event_type,
    payload: input.payload ?? {},
    metadata: {
      correlation_id: input.metadata.correlation_id ?? crypto.randomUUID(),
      causation_id: input.metadata.causation_id ?? null,
      user_id: input.metadata.user_id ?? null,
      tenant_id: input.metadata.tenant_id ?? null,
      source: input.metadata.source,
    },
  };
}
