/**
 * The typed event catalogue and trace context step of emit
 * (src/event/catalog.ts, src/trace/otel.ts): what is stored beside an event.
 */
import { EventrailError } from '../errors.js';
import type { Envelope } from '../event/envelope.js';
import type { Event } from '../event/event.js';
import type { ResolvedOptions } from '../options.js';
import type { CapturedContext } from '../trace/otel.js';

/**
 * Checks the payload against the bus's catalogue (replacing it with the
 * schema's output, itself checked as JSON to limits.maxDepth) and gathers
 * what is stored beside the event: null, the common case, when there is
 * nothing (no versioned type, no active span).
 */
export function envelopeOf(
  options: Pick<ResolvedOptions, 'events' | 'limits'>,
  data: { event_type: Event['event_type']; payload?: unknown },
  trace: CapturedContext | null,
): Envelope | null | EventrailError {
  let version = 1;
  const catalog = options.events;
  if (catalog !== undefined) {
    const checked = catalog.check(data.event_type, data.payload, options.limits.maxDepth);
    if (checked instanceof EventrailError) return checked;
    data.payload = checked.payload;
    version = checked.version;
  }
  if (version === 1 && trace === null) return null;
  return version === 1 ? trace : { v: version, ...trace };
}
