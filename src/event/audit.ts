/**
 * The audit log's record. The seed's AuditLogger writes an `AuditEntry` per
 * audited event; every field but `audit_id` is the event's own, so the record
 * is the audit id followed by the event's bytes, already encoded for the event
 * itself: no second encoding of the payload. The store keeps only the id (with
 * the event's index, time and tenant) in its audit block and makes the record
 * on read from the stored event (store/layout/audit-blocks.ts); the AuditEntry is rebuilt
 * from the record.
 */
import type { Codec } from '../codec.js';
import { StoreCorruptError } from '../errors.js';
import { debugEventType, type AuditEntry, type Event } from './event.js';
import { notAnEvent } from './shape.js';

/** Bytes of the audit_id at the head of a record (a uuid, one byte per character). */
export const AUDIT_ID_BYTES = 36;

/** Bytes of the record of an event of `eventBytes` bytes. */
export function auditRecordBytes(eventBytes: number): number {
  return AUDIT_ID_BYTES + eventBytes;
}

/** Writes an audit id (36 bytes) at `at` in `out`; returns where it ends. */
export function writeAuditId(out: Buffer, at: number, auditId: string): number {
  if (auditId.length !== AUDIT_ID_BYTES || out.write(auditId, at, AUDIT_ID_BYTES, 'latin1') !== AUDIT_ID_BYTES) {
    throw new RangeError(`an audit_id is a uuid of ${AUDIT_ID_BYTES} characters, got ${JSON.stringify(auditId)}`);
  }
  return at + AUDIT_ID_BYTES;
}

/** The record of an entry: its audit id, then the event's bytes. */
export function encodeAuditRecord(auditId: string, eventBytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(auditRecordBytes(eventBytes.length));
  eventBytes.copy(out, writeAuditId(out, 0, auditId));
  return out;
}

/** The AuditEntry of a stored record; bytes that do not decode to one are a StoreCorruptError. */
export function decodeAuditRecord(codec: Codec, record: Buffer): AuditEntry {
  if (record.length <= AUDIT_ID_BYTES) throw new StoreCorruptError(`an audit record of ${record.length} bytes is too short`);
  let event: Event;
  try {
    event = codec.decode<Event>(record.subarray(AUDIT_ID_BYTES));
  } catch (err) {
    throw new StoreCorruptError(
      `the event of audit record ${record.toString('latin1', 0, AUDIT_ID_BYTES)} cannot be decoded: ${(err as Error)?.message}`,
      err,
    );
  }
  // Read back from the store: bytes that decode to something else are corrupt too.
  const problem = notAnEvent(event);
  if (problem !== null) {
    throw new StoreCorruptError(`the event of audit record ${record.toString('latin1', 0, AUDIT_ID_BYTES)} is not an event: ${problem}`);
  }
  return {
    audit_id: record.toString('latin1', 0, AUDIT_ID_BYTES),
    event_id: event.event_id,
    event_type: debugEventType(event.event_type),
    timestamp: event.timestamp,
    payload: event.payload,
    metadata: event.metadata,
  };
}

/**
 * The AuditEntry of a stored record, or null once `onCorrupt` has been told
 * why the record cannot be one (the reader skips it and goes on).
 */
export function readAuditEntry(
  codec: Codec,
  record: Buffer,
  position: string,
  onCorrupt: (error: StoreCorruptError) => void,
): AuditEntry | null {
  try {
    return decodeAuditRecord(codec, record);
  } catch (err) {
    onCorrupt(
      err instanceof StoreCorruptError
        ? err
        : new StoreCorruptError(`the audit entry at ${position} cannot be decoded: ${(err as Error)?.message}`, err),
    );
    return null;
  }
}
