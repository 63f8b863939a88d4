/**
 * Event blocks: one value per commit holding the batch's events, and where
 * one event lies in a block (so a reader can fetch only the chunks that hold
 * it).
 *
 * Why blocks: lmdb encodes and copies every value on the main thread, so one
 * key per event costs about 3× the throughput of one value per batch (DESIGN,
 * "Measured here").
 */
import { StoreCorruptError } from '../../errors.js';
import { MAX_VALUE_BYTES } from '../limits.js';
import type { Position, StoredEvent } from '../store.js';
import type { Gathered } from './chunks.js';
import { positionOf, type Stamp } from './positions.js';

const BLOCK_FORMAT = 1;
/** The head of a block, and of an audit block: format u8, count u32. */
export const BLOCK_HEADER_BYTES = 5;
/** Per event in a block's header: u32 byte length and f64 timestamp_ms. */
export const BLOCK_ENTRY_BYTES = 12;

//
//   u8 format (1) | u32 count | count × u32 byte length | count × f64 timestamp_ms | events back to back
//
// The lengths let a reader slice out one event's bytes without decoding the
// block, and the timestamps let a time-bounded replay filter without decoding
// either. What follows the header is valid `codec.decodeMany` input.

export interface BlockEvent {
  readonly bytes: Buffer;
  readonly timestampMs: number;
  /**
   * What an accepted event offers instead of `bytes`: its encoded bytes are
   * bytes `start` to `end` of `source` (the codec's arena, shared by the
   * events encoded one after another), so no view is made per event and
   * events that lie end to end are copied with one copy.
   */
  readonly source?: Buffer;
  readonly start?: number;
  readonly end?: number;
}

/** An event's encoded length, without a view of its bytes when it offers its source. */
export function bodyLength(event: BlockEvent): number {
  return event.source === undefined ? event.bytes.length : event.end! - event.start!;
}

/**
 * Copies the events' encoded bytes end to end into `target` at `at`, one copy
 * per run of events that lie end to end in one source buffer (a burst of
 * emits encodes into the codec's arena one after another: a batch is then a
 * few copies, not one per event). Returns the bytes copied.
 */
export function copyBodies(events: readonly BlockEvent[], target: Buffer, at: number): number {
  let written = 0;
  let i = 0;
  while (i < events.length) {
    const first = events[i]!;
    if (first.source === undefined) {
      target.set(first.bytes, at + written);
      written += first.bytes.length;
      i++;
      continue;
    }
    const source = first.source;
    const start = first.start!;
    let end = first.end!;
    for (i++; i < events.length; i++) {
      const next = events[i]!;
      if (next.source !== source || next.start !== end) break;
      end = next.end!;
    }
    written += source.copy(target, at + written, start, end);
  }
  return written;
}

export function encodeBlock(events: readonly BlockEvent[]): Buffer {
  const count = events.length;
  let length = BLOCK_HEADER_BYTES + count * BLOCK_ENTRY_BYTES;
  for (let i = 0; i < count; i++) length += bodyLength(events[i]!);
  const out = Buffer.allocUnsafe(length);
  out[0] = BLOCK_FORMAT;
  out.writeUInt32BE(count, 1);
  let lengthAt = BLOCK_HEADER_BYTES;
  let timeAt = BLOCK_HEADER_BYTES + count * 4;
  for (let i = 0; i < count; i++) {
    const event = events[i]!;
    out.writeUInt32BE(bodyLength(event), lengthAt);
    lengthAt += 4;
    out.writeDoubleBE(event.timestampMs, timeAt);
    timeAt += 8;
  }
  copyBodies(events, out, BLOCK_HEADER_BYTES + count * BLOCK_ENTRY_BYTES);
  return out;
}

/** A block parsed once: events are views into the block's buffer. */
export class DecodedBlock {
  readonly count: number;
  readonly #block: Buffer;
  readonly #offsets: Uint32Array;

  constructor(block: Buffer) {
    if (block.length < BLOCK_HEADER_BYTES || block[0] !== BLOCK_FORMAT)
      throw new StoreCorruptError(`unknown block format ${block[0]} (${block.length} bytes)`);
    const count = block.readUInt32BE(1);
    const bodyAt = BLOCK_HEADER_BYTES + count * BLOCK_ENTRY_BYTES;
    if (bodyAt > block.length) throw new StoreCorruptError(`a block of ${count} events is ${block.length} bytes, shorter than its header`);
    const offsets = new Uint32Array(count + 1);
    let at = bodyAt;
    for (let i = 0; i < count; i++) {
      offsets[i] = at;
      at += block.readUInt32BE(BLOCK_HEADER_BYTES + i * 4);
    }
    offsets[count] = at;
    if (at !== block.length) throw new StoreCorruptError(`a block's events add up to ${at} bytes, the block is ${block.length}`);
    this.count = count;
    this.#block = block;
    this.#offsets = offsets;
  }

  bytes(index: number): Buffer {
    return this.#block.subarray(this.#offsets[index], this.#offsets[index + 1]);
  }

  timestampMs(index: number): number {
    return this.#block.readDoubleBE(BLOCK_HEADER_BYTES + this.count * 4 + index * 8);
  }

  /** The events back to back: `codec.decodeMany(block.body)`. */
  get body(): Buffer {
    return this.#block.subarray(this.#offsets[0], this.#offsets[this.count]);
  }
}

/**
 * Decodes a block for a scan. A block that cannot be decoded becomes one
 * `corrupt` entry at its first position, so the scan reports it and goes on.
 */
export function decodeBlockOrReport(block: Gathered<Stamp>, page: StoredEvent[], after?: Position): DecodedBlock | null {
  const stamp = block.id;
  try {
    if (block.corrupt) throw block.corrupt;
    return new DecodedBlock(block.value);
  } catch (err) {
    // A read that starts past this whole commit (`after` is its end) does not report it again.
    if (after !== undefined && positionOf(stamp, 0xffff).compare(after) <= 0) return null;
    const corrupt = err instanceof StoreCorruptError ? err : new StoreCorruptError((err as Error)?.message ?? String(err), err);
    page.push({ position: positionOf(stamp, 0), bytes: Buffer.alloc(0), corrupt });
    return null;
  }
}

/** Where one event sits in its (joined) block. */
export interface EventSpan {
  readonly index: number;
  /** Byte offset in the block: the event is in chunks floor(start / MAX_VALUE_BYTES) onwards. */
  readonly start: number;
  readonly length: number;
  readonly timestampMs: number;
}

/**
 * The spans of the events at `indices` (ascending) of a block, from its first
 * chunk alone, so a reader can fetch only the chunks that hold them. Null when
 * the header does not fit in the first chunk (blocks of more than ~8 300 events).
 */
export function blockSpans(firstChunk: Buffer, indices: readonly number[]): { count: number; spans: EventSpan[] } | null {
  const count = blockCount(firstChunk);
  const bodyAt = BLOCK_HEADER_BYTES + count * BLOCK_ENTRY_BYTES;
  if (bodyAt > firstChunk.length) return null;
  const spans: EventSpan[] = [];
  let at = bodyAt;
  let next = 0;
  for (let i = 0; i < count && next < indices.length; i++) {
    const length = firstChunk.readUInt32BE(BLOCK_HEADER_BYTES + i * 4);
    if (indices[next] === i) {
      spans.push({ index: i, start: at, length, timestampMs: firstChunk.readDoubleBE(BLOCK_HEADER_BYTES + count * 4 + i * 8) });
      next++;
    }
    at += length;
  }
  if (next < indices.length) throw new StoreCorruptError(`an index names event ${indices[next]} of a block of ${count}`);
  return { count, spans };
}

/** The number of events in a block, read from its first chunk alone. */
export function blockCount(firstChunk: Buffer): number {
  if (firstChunk.length < BLOCK_HEADER_BYTES || firstChunk[0] !== BLOCK_FORMAT)
    throw new StoreCorruptError(`unknown block format ${firstChunk[0]}`);
  return firstChunk.readUInt32BE(1);
}

/** The chunks of a block, other than the first, that hold the events of `spans`. */
export function chunksOfSpans(spans: readonly EventSpan[]): number[] {
  const wanted = new Set<number>();
  for (const span of spans) {
    if (span.length === 0) continue;
    const last = Math.floor((span.start + span.length - 1) / MAX_VALUE_BYTES);
    for (let c = Math.max(1, Math.floor(span.start / MAX_VALUE_BYTES)); c <= last; c++) wanted.add(c);
  }
  return [...wanted].sort((a, b) => a - b);
}

/** One event copied out of its block's chunks. */
export interface SpanEvent {
  readonly index: number;
  readonly bytes: Buffer;
  readonly timestampMs: number;
}

/**
 * Copies the events of `spans` (ascending, from `blockSpans`) out of a block's
 * chunks into one buffer of their own, each event a view of it. `chunkAt(c)`
 * gives chunk c, or undefined when it is not stored; it is called once each
 * time the chunk needed changes, and its result is used before the next call
 * (lmdb hands out memory valid only until its next read). A chunk missing, or
 * ending before the event does, is a StoreCorruptError.
 */
export function copySpans(stamp: Stamp, spans: readonly EventSpan[], chunkAt: (chunk: number) => Buffer | undefined): SpanEvent[] {
  let total = 0;
  for (const span of spans) total += span.length;
  const slab = Buffer.allocUnsafeSlow(total);
  let slabAt = 0;
  let chunkNo = -1;
  let chunk: Buffer | undefined;
  const events: SpanEvent[] = [];
  for (const span of spans) {
    const bytes = slab.subarray(slabAt, slabAt + span.length);
    slabAt += span.length;
    let copied = 0;
    while (copied < span.length) {
      const at = span.start + copied;
      const wanted = Math.floor(at / MAX_VALUE_BYTES);
      if (wanted !== chunkNo) {
        chunk = chunkAt(wanted);
        chunkNo = wanted;
      }
      if (chunk === undefined) throw new StoreCorruptError(`block ${stamp.toString('hex')} has no chunk ${wanted}`);
      const from = at - wanted * MAX_VALUE_BYTES;
      // A view with explicit bounds: the buffer lmdb's getBinaryFast returns is
      // larger than its `length` says, which Buffer#copy misreads at the end.
      const piece = chunk.subarray(from, Math.min(chunk.length, from + span.length - copied));
      if (piece.length === 0)
        throw new StoreCorruptError(`block ${stamp.toString('hex')}: chunk ${wanted} ends before event ${span.index}`);
      bytes.set(piece, copied);
      copied += piece.length;
    }
    events.push({ index: span.index, bytes, timestampMs: span.timestampMs });
  }
  return events;
}
