/**
 * Finding an event by an event_id the bus generated, which has no id index
 * key (indexedById in layout/append-plan.ts): the id's millisecond names the
 * time index keys to read, and the event with that id is among theirs.
 */
import type { Codec } from '../codec.js';
import type { Event } from '../event/event.js';
import type { SpanEvent } from './layout/blocks.js';

/**
 * The block index of the event of `events` whose event_id is `eventId`, or
 * -1. An event is decoded only when the id's bytes are in it (msgpack keeps a
 * string's UTF-8 as is); one that cannot be decoded is not the one.
 */
export function indexOfId(codec: Codec, events: readonly SpanEvent[], eventId: string): number {
  const needle = Buffer.from(eventId, 'latin1');
  for (const { index, bytes } of events) {
    if (bytes.indexOf(needle) < 0) continue;
    let event: Event | null;
    try {
      event = codec.decode<Event | null>(bytes);
    } catch {
      continue;
    }
    if (event !== null && typeof event === 'object' && event.event_id === eventId) return index;
  }
  return -1;
}
