/**
 * The audit log's record. The seed's AuditLogger writes an `AuditEntry` per
 * audited event; every field but `audit_id` is the event's own, so the stored
 * record is the audit id followed by the event's bytes, already encoded for
 * the event itself: no second encoding of the payload on the hot path. The
 * entry is rebuilt when the log is read.
 */
import type { Codec } from '../codec.js';
import { StoreCorruptError } from '../errors.js';
import { debugEventType, type AuditEntry, type Event } from './event.js';

const ID_CHARS = 36;

export function encodeAuditRecord(auditId: string, eventBytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(ID_CHARS + eventBytes.length);
  out.write(auditId, 0, ID_CHARS, 'latin1');
  eventBytes.copy(out, ID_CHARS);
  return out;
}

export function decodeAuditRecord(codec: Codec, record: Buffer): AuditEntry {
  if (record.length <= ID_CHARS) throw new StoreCorruptError(`an audit record of ${record.length} bytes is too short`);
  const event = codec.decode<Event>(record.subarray(ID_CHARS));
  return {
    audit_id: record.toString('latin1', 0, ID_CHARS),
    event_id: event.event_id,
    event_type: debugEventType(event.event_type),
    timestamp: event.timestamp,
    payload: event.payload,
    metadata: event.metadata,
  };
}
