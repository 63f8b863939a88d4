/**
 * The one "is this an event?" check for decoded data: a worker runs it on
 * every event of a batch, and every reader of the store (replay, audit, dead
 * letters, the CLI) on what it reads back. It checks the shape the bus writes,
 * not the full schema: it runs for every event, so it must stay cheap.
 */
import { eventTypeProblem } from './schema.js';

const isNullableString = (v: unknown) => v === null || typeof v === 'string';

/** Why a decoded value is not an event as the bus encodes one, or null. */
export function notAnEvent(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not an object';
  const e = value as Record<string, unknown>;
  if (typeof e.event_id !== 'string' || typeof e.timestamp !== 'string') return 'event_id and timestamp must be strings';
  const typeProblem = eventTypeProblem(e.event_type);
  if (typeProblem !== null) return `event_type ${typeProblem}`;
  if (!('payload' in e)) return 'no payload';
  const md = e.metadata as Record<string, unknown> | null;
  if (
    md === null ||
    typeof md !== 'object' ||
    typeof md.correlation_id !== 'string' ||
    typeof md.source !== 'string' ||
    !isNullableString(md.causation_id) ||
    !isNullableString(md.user_id) ||
    !isNullableString(md.tenant_id)
  ) {
    return 'metadata is not event metadata';
  }
  return null;
}
