/**
 * Audit blocks: the audit entries of one commit, one value next to its event
 * block (same stamp).
 */
import { StoreCorruptError } from '../../errors.js';
import { AUDIT_ID_BYTES, encodeAuditRecord, writeAuditId } from '../../event/audit.js';
import type { StoredAuditEntry } from '../store.js';
import { BLOCK_HEADER_BYTES } from './blocks.js';
import { positionOf, type Stamp } from './positions.js';

/** Audit blocks of the first format hold each entry's whole record (the audit id and a copy of the event); still read. */
const AUDIT_FORMAT_WITH_RECORDS = 1;
/** Each entry holds its audit id only: the record is made on read from the event in its block (same stamp, same index). */
const AUDIT_FORMAT = 2;
const NO_TENANT = 0xffff;
/** Per entry, besides its tenant and audit id: u16 index, f64 timestamp_ms, u16 tenant byte length. */
export const AUDIT_FRAME_BYTES = 12;

//
//   u8 format (2) | u32 count | per entry: u16 index | f64 timestamp_ms |
//   u16 tenant byte length (0xffff: none) | tenant UTF-8 | audit id (36 bytes)
//
// The entry's record (event/audit.ts: the audit id, then the event's bytes) is
// made when the log is read, from the event at the same stamp and index: the
// event is stored once, not once more per audit entry. Format 1, still read,
// had a u32 length and the whole record in place of the audit id. The
// timestamp and tenant are repeated here so audit queries filter without
// decoding entries or reading the event blocks.

export interface AuditFrame {
  /** The audited event's index in its block. */
  readonly index: number;
  readonly timestampMs: number;
  readonly tenantId: string | null;
  readonly auditId: string;
  /** The whole record, in blocks of the first format; null in the current one (read the event to make it). */
  readonly record: Buffer | null;
}

/** What an audited event of a batch offers: its time, tenant and audit id (null when not audited). */
export interface AuditedEvent {
  readonly timestampMs: number;
  readonly tenantId: string | null;
  readonly auditId: string | null;
}

/**
 * The audit block of a batch's events: an entry for `events[i]` at block
 * index i, for each i of `indices` (each audited), with no object per entry.
 */
export function encodeAuditBlockOf(events: readonly AuditedEvent[], indices: readonly number[]): Buffer {
  // Tenant ids are measured, then written straight into the block: no buffer per entry.
  const tenantBytes = new Uint16Array(indices.length);
  let length = BLOCK_HEADER_BYTES;
  for (let k = 0; k < indices.length; k++) {
    const e = events[indices[k]!]!;
    const bytes = e.tenantId === null ? 0 : Buffer.byteLength(e.tenantId, 'utf8');
    if (bytes >= NO_TENANT) throw new RangeError(`a tenant id is at most ${NO_TENANT - 1} bytes`);
    tenantBytes[k] = bytes;
    length += AUDIT_FRAME_BYTES + bytes + AUDIT_ID_BYTES;
  }
  const out = Buffer.allocUnsafe(length);
  out[0] = AUDIT_FORMAT;
  out.writeUInt32BE(indices.length, 1);
  let at = BLOCK_HEADER_BYTES;
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k]!;
    const e = events[index]!;
    at = out.writeUInt16BE(index, at);
    at = out.writeDoubleBE(e.timestampMs, at);
    if (e.tenantId === null) {
      at = out.writeUInt16BE(NO_TENANT, at);
    } else {
      at = out.writeUInt16BE(tenantBytes[k]!, at);
      at += out.write(e.tenantId, at, tenantBytes[k]!, 'utf8');
    }
    if (e.auditId === null) throw new RangeError(`the event at index ${index} is not audited`);
    at = writeAuditId(out, at, e.auditId);
  }
  return out;
}

export function decodeAuditBlock(block: Buffer): AuditFrame[] {
  const corrupt = () => new StoreCorruptError(`malformed audit block (${block.length} bytes)`);
  const format = block[0];
  if (block.length < BLOCK_HEADER_BYTES || (format !== AUDIT_FORMAT && format !== AUDIT_FORMAT_WITH_RECORDS)) throw corrupt();
  const count = block.readUInt32BE(1);
  const frames: AuditFrame[] = [];
  let at = BLOCK_HEADER_BYTES;
  try {
    for (let i = 0; i < count; i++) {
      const index = block.readUInt16BE(at);
      const timestampMs = block.readDoubleBE(at + 2);
      const tenantLength = block.readUInt16BE(at + 10);
      at += AUDIT_FRAME_BYTES;
      let tenantId: string | null = null;
      if (tenantLength !== NO_TENANT) {
        if (at + tenantLength > block.length) throw corrupt();
        tenantId = block.toString('utf8', at, at + tenantLength);
        at += tenantLength;
      }
      let record: Buffer | null = null;
      let idEnd = at + AUDIT_ID_BYTES;
      if (format === AUDIT_FORMAT_WITH_RECORDS) {
        const length = block.readUInt32BE(at);
        at += 4;
        if (length <= AUDIT_ID_BYTES) throw corrupt();
        record = block.subarray(at, at + length);
        idEnd = at + AUDIT_ID_BYTES;
        at += length;
      } else {
        at = idEnd;
      }
      if (at > block.length) throw corrupt();
      frames.push({ index, timestampMs, tenantId, auditId: block.toString('latin1', idEnd - AUDIT_ID_BYTES, idEnd), record });
    }
  } catch (err) {
    if (err instanceof StoreCorruptError) throw err;
    throw corrupt();
  }
  if (at !== block.length) throw corrupt();
  return frames;
}

/**
 * The stored entries of audit frames of one block: each record in place (first
 * format), or made of the audit id and the event's bytes, which `events` gives
 * for the indices `eventsNeededBy(frames)` named, in that order.
 */
export function auditEntries(stamp: Stamp, frames: readonly AuditFrame[], events: readonly Buffer[]): StoredAuditEntry[] {
  let next = 0;
  return frames.map((frame) => ({
    position: positionOf(stamp, frame.index),
    bytes: frame.record ?? encodeAuditRecord(frame.auditId, events[next++]!),
  }));
}

/** The event indices `auditEntries` needs read for these frames. */
export function eventsNeededBy(frames: readonly AuditFrame[]): number[] {
  const indices: number[] = [];
  for (const frame of frames) if (frame.record === null) indices.push(frame.index);
  return indices;
}
