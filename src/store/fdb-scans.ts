/**
 * The reads a FoundationDB page transaction is made of: a page of keys, whole
 * blocks gathered from their chunks, and only the chunks of a block that hold
 * some of its events. Each runs inside a transaction its caller gives.
 */
import { StoreCorruptError } from '../errors.js';
import type { PageLimits } from './bounds.js';
import type { Tn } from './fdb-client.js';
import { DecodedBlock, blockSpans, chunksOfSpans, copySpans, type SpanEvent } from './layout/blocks.js';
import { blockGatherer, type Gathered } from './layout/chunks.js';
import type { KeyRange, StoreLayout } from './layout/keys.js';
import { positionOf, type Stamp } from './layout/positions.js';
import type { Codec } from '../codec.js';
import { generatedIdTime } from '../event/ids.js';
import { indexOfId } from './generated.js';
import { decodeIndexList } from './layout/index-lists.js';
import type { Position } from './store.js';

/**
 * What a page transaction may read: about 4 MB of values (a few milliseconds
 * of reading) and 256 block fetches (8 windows of round trips in parallel), far
 * under FoundationDB's 5 s whatever the data, e.g. sparse audited events.
 */
export const PAGE_LIMITS: PageLimits = { bytes: 4_000_000, blocks: 256 };
/** Blocks fetched at once while a tenant page resolves its index keys. */
export const BLOCK_FETCH_WINDOW = 32;

/**
 * Up to `limit` entries of `range` and at most about PAGE_LIMITS.bytes of values,
 * streamed so that a page stops early; `more` is true unless the range was
 * read to its end.
 */
export async function readPage(tn: Tn, range: KeyRange, limit: number): Promise<{ entries: [Buffer, Buffer][]; more: boolean }> {
  const entries: [Buffer, Buffer][] = [];
  let bytes = 0;
  for await (const entry of tn.getRange(range.start, range.end, { limit: limit + 1 })) {
    if (entries.length >= limit || bytes >= PAGE_LIMITS.bytes) return { entries, more: true };
    entries.push(entry);
    bytes += entry[1].length;
  }
  return { entries, more: false };
}

/**
 * Reads whole blocks (every chunk of a stamp) from `range`, handing each to
 * `visit` with the bytes it took, and stops after the block at which
 * `enough()` turns true or the page holds PAGE_LIMITS.bytes. A block whose
 * chunks do not run in order comes as `corrupt`. Returns the stamp of the
 * last block read and whether the range is exhausted.
 */
export async function scanBlocks(
  tn: Tn,
  range: KeyRange,
  decodeKey: (key: Buffer) => { stamp: Stamp; chunk: number },
  visit: (block: Gathered<Stamp>, bytes: number) => void,
  enough: () => boolean,
  what = 'block',
): Promise<{ last: Stamp | undefined; done: boolean }> {
  const gatherer = blockGatherer(what);
  let bytes = 0;
  let total = 0;
  for await (const [key, value] of tn.getRange(range.start, range.end)) {
    const at = decodeKey(key);
    const whole = gatherer.add(at.stamp, at.chunk, value);
    if (whole !== null) {
      visit(whole, bytes);
      bytes = 0;
      // Leaving the loop ends the range read.
      if (enough() || total >= PAGE_LIMITS.bytes) return { last: whole.id, done: false };
    }
    bytes += value.length;
    total += value.length;
  }
  const whole = gatherer.finish();
  if (whole !== null) visit(whole, bytes);
  return { last: whole?.id, done: true };
}

/** One whole block by stamp, its chunks joined. */
export async function readBlock(tn: Tn, layout: StoreLayout, stamp: Stamp): Promise<Buffer> {
  const range = layout.blockChunks(stamp);
  const entries = await tn.getRangeAll(range.start, range.end);
  const gatherer = blockGatherer();
  for (const [key, value] of entries) gatherer.add(stamp, layout.decodeBlockKey(key).chunk, value);
  const whole = gatherer.finish();
  if (whole === null) throw new StoreCorruptError(`an index names block ${stamp.toString('hex')}, which is not stored`);
  if (whole.corrupt) throw whole.corrupt;
  return whole.value;
}

/**
 * Some events of a block: its first chunk (whose header says where each event
 * lies), then only the other chunks that hold those events, in parallel. A
 * tenant has a few events in each block; reading whole blocks for them would
 * move far more bytes than the page holds. `bytes` is what was read, chunks
 * not yielded included, for the page's byte count.
 */
export async function readEventsOf(
  tn: Tn,
  layout: StoreLayout,
  stamp: Stamp,
  indices: readonly number[],
): Promise<{ events: SpanEvent[]; bytes: number }> {
  const first = await tn.get(layout.blockKey(stamp, 0));
  if (first === undefined) throw new StoreCorruptError(`an index names block ${stamp.toString('hex')}, which is not stored`);
  const found = blockSpans(first, indices);
  if (!found) {
    const whole = await readBlock(tn, layout, stamp);
    const block = new DecodedBlock(whole);
    const events = indices.map((index) => {
      if (index >= block.count) throw new StoreCorruptError(`an index names event ${index} of a block of ${block.count}`);
      return { index, bytes: block.bytes(index), timestampMs: block.timestampMs(index) };
    });
    return { events, bytes: first.length + whole.length };
  }
  const numbers = chunksOfSpans(found.spans);
  const values = await Promise.all(numbers.map((c) => tn.get(layout.blockKey(stamp, c))));
  const chunks = new Map<number, Buffer>([[0, first]]);
  let bytes = first.length;
  numbers.forEach((c, i) => {
    const value = values[i];
    if (value === undefined) return; // copySpans reports the chunk missing
    chunks.set(c, value);
    bytes += value.length;
  });
  return { events: copySpans(stamp, found.spans, (c) => chunks.get(c)), bytes };
}

/**
 * Where the event whose id the bus generated is (it has no id key: see
 * generated.ts), or null: the time index at the id's millisecond, read in `tn`.
 */
export async function findGenerated(tn: Tn, layout: StoreLayout, codec: Codec, eventId: string): Promise<Position | null> {
  const ms = generatedIdTime(eventId);
  if (ms === null) return null;
  const range = layout.timeRange(ms, ms + 1);
  for (const [key, value] of await tn.getRangeAll(range.start, range.end)) {
    const stamp = layout.stampOfIndexKey(key);
    const { events } = await readEventsOf(tn, layout, stamp, decodeIndexList(value));
    const index = indexOfId(codec, events, eventId);
    if (index >= 0) return positionOf(stamp, index);
  }
  return null;
}
