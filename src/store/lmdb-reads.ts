/**
 * Reads of the lmdb store. Every page is one short, synchronous range read
 * whose cursor is closed before the page is yielded, so no read transaction
 * stays open while a consumer holds the iterator (a long-lived lmdb reader
 * stops page reuse and grows the file).
 */
import { statSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { RootDatabase } from 'lmdb';
import type { Codec } from '../codec.js';
import { StoreCorruptError, StoreReadError } from '../errors.js';
import {
  TIME_SCAN_PAGE,
  asCorrupt,
  auditFrameWanted,
  keyAfter,
  pageSizeOf,
  pushIfWithin,
  reportCorrupt,
  resolveBounds,
  widen,
  withinPositions,
  withinTime,
  type Bounds,
} from './bounds.js';
import { auditEntries, decodeAuditBlock, eventsNeededBy } from './layout/audit-blocks.js';
import { DecodedBlock, blockCount, blockSpans, copySpans, decodeBlockOrReport, type SpanEvent } from './layout/blocks.js';
import { blockGatherer, deadLetterGatherer, type DeadLetterId, type Gathered } from './layout/chunks.js';
import { decodeCount, type CountName } from './layout/counts.js';
import { decodeDeadLetters } from './layout/dead-letters.js';
import { decodeLease } from './layout/groups.js';
import { decodeIndexList } from './layout/index-lists.js';
import type { KeyRange, StoreLayout } from './layout/keys.js';
import { checkPosition, positionOf, type Stamp } from './layout/positions.js';
import { generatedIdTime } from '../event/ids.js';
import { indexOfId } from './generated.js';
import type {
  AuditQuery,
  CursorRecord,
  LeaseRecord,
  DeadLetterQuery,
  DeadLetterRecord,
  Position,
  ReadEventsQuery,
  StoreStats,
  StoredAuditEntry,
  StoredEvent,
} from './store.js';

type Db = RootDatabase<Buffer, Buffer>;

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class LmdbReader {
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #dataFile: string;
  readonly #checkOpen: () => void;

  constructor(db: Db, layout: StoreLayout, codec: Codec, dataFile: string, checkOpen: () => void) {
    this.#db = db;
    this.#layout = layout;
    this.#codec = codec;
    this.#dataFile = dataFile;
    this.#checkOpen = checkOpen;
  }

  async lookup(eventId: string): Promise<Position | null> {
    this.#checkOpen();
    const position = this.#read(() => this.#db.getBinary(this.#layout.idKey(eventId)));
    return position === undefined ? this.findGenerated(eventId) : checkPosition(position, `the position of event ${eventId}`);
  }

  /**
   * Where the event whose id the bus generated is (it has no id key: see
   * generated.ts), or null; also inside a write transaction, which it then
   * reads.
   */
  findGenerated(eventId: string): Position | null {
    const ms = generatedIdTime(eventId);
    if (ms === null) return null;
    const range = this.#layout.timeRange(ms, ms + 1);
    return this.#read(() => {
      for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end })) {
        const stamp = this.#layout.stampOfIndexKey(key);
        const index = indexOfId(this.#codec, this.#readEventsOf(stamp, decodeIndexList(value)), eventId);
        if (index >= 0) return positionOf(stamp, index);
      }
      return null;
    });
  }

  /**
   * A page ends at a block boundary: it holds pageSize events or more (the
   * rest of the block that reached pageSize), so a read holds at most
   * pageSize events plus one batch's in memory. Event bytes are views of the
   * block they were read with.
   */
  async *readEvents(query: ReadEventsQuery = {}): AsyncGenerator<StoredEvent> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    const bounds = await this.#bounds(query);
    if (!bounds) return;
    if (query.tenantId !== undefined) {
      yield* this.#readTenant(query.tenantId, bounds, pageSize);
      return;
    }
    let range: KeyRange = this.#layout.blockRange(bounds.fromStamp, bounds.untilStamp);
    while (true) {
      const page: StoredEvent[] = [];
      const { last, done } = this.#scanBlocks(
        range,
        (key) => this.#layout.decodeBlockKey(key),
        (whole) => {
          const block = decodeBlockOrReport(whole, page, bounds.after);
          if (block !== null) for (let i = 0; i < block.count; i++) pushIfWithin(page, bounds, whole.id, i, block);
        },
        () => page.length >= pageSize,
      );
      yield* page;
      if (done || !last) return;
      range = { start: this.#layout.blockRange(last, last).end, end: range.end };
    }
  }

  /** A tenant's events: its index keys, then only the chunks of the blocks they name that hold its events. */
  async *#readTenant(tenantId: string, bounds: Bounds, pageSize: number): AsyncGenerator<StoredEvent> {
    let range = this.#layout.tenantRange(tenantId, bounds.fromStamp, bounds.untilStamp);
    while (true) {
      const page: StoredEvent[] = [];
      let lastKey: Buffer | undefined;
      let keys = 0;
      this.#read(() => {
        // Each index key names at least one event, so pageSize keys fill a page.
        for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end, limit: pageSize })) {
          keys++;
          lastKey = key;
          const stamp = this.#layout.stampOfIndexKey(key);
          for (const event of this.#readEventsOf(stamp, decodeIndexList(value))) {
            if (!withinTime(bounds, event.timestampMs)) continue;
            const position = positionOf(stamp, event.index);
            if (withinPositions(bounds, position)) page.push({ position, bytes: event.bytes });
          }
        }
      });
      yield* page;
      if (keys < pageSize || !lastKey) return;
      range = { start: keyAfter(lastKey), end: range.end };
    }
  }

  /**
   * Some events of a block (inside a read). A tenant has a few events in each
   * block: copying the whole block out of lmdb for them cost more than the
   * rest of the read, so the chunks are read in place (getBinaryFast returns
   * lmdb's memory, valid until the next get) and only the events are copied.
   */
  #readEventsOf(stamp: Stamp, indices: readonly number[]): SpanEvent[] {
    const db = this.#db;
    const first = db.getBinaryFast(this.#layout.blockKey(stamp, 0));
    if (first === undefined) throw new StoreCorruptError(`an index names block ${stamp.toString('hex')}, which is not stored`);
    const found = blockSpans(first, indices);
    if (!found) {
      const block = new DecodedBlock(this.#readBlock(stamp));
      return indices.map((index) => ({ index, bytes: block.bytes(index), timestampMs: block.timestampMs(index) }));
    }
    // Chunk 0 is asked for first if at all (spans ascend), while `first` is still valid.
    return copySpans(stamp, found.spans, (c) => (c === 0 ? first : db.getBinaryFast(this.#layout.blockKey(stamp, c))));
  }

  async *readAudit(query: AuditQuery = {}): AsyncGenerator<StoredAuditEntry> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    const bounds = await this.#bounds(query);
    if (!bounds) return;
    let range = this.#layout.auditRange(bounds.fromStamp, bounds.untilStamp);
    while (true) {
      const page: StoredAuditEntry[] = [];
      const { last, done } = this.#scanBlocks(
        range,
        (key) => this.#layout.decodeAuditKey(key),
        (whole) => {
          // A block that cannot be read, or whose events cannot, is reported and its entries skipped.
          try {
            if (whole.corrupt) throw whole.corrupt;
            const stamp = whole.id;
            const frames = decodeAuditBlock(whole.value).filter((frame) => auditFrameWanted(query, bounds, stamp, frame));
            const needed = eventsNeededBy(frames);
            page.push(...auditEntries(stamp, frames, needed.length === 0 ? [] : this.#readEventsOf(stamp, needed).map((e) => e.bytes)));
          } catch (err) {
            reportCorrupt(query.onCorrupt, asCorrupt(err, `audit block ${whole.id.toString('hex')}`));
          }
        },
        () => page.length >= pageSize,
        'audit block',
      );
      yield* page;
      if (done || !last) return;
      range = { start: this.#layout.auditRange(last, last).end, end: range.end };
    }
  }

  /** A page is pageSize dead letters, every chunk of each, read in one cursor pass. */
  async *readDeadLetters(query: DeadLetterQuery = {}): AsyncGenerator<DeadLetterRecord> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    const layout = this.#layout;
    let range = layout.deadLetterRange(query.consumer);
    while (true) {
      const letters: Gathered<DeadLetterId>[] = [];
      const done = this.#read(() => {
        const gatherer = deadLetterGatherer();
        for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end })) {
          const { consumer, position, chunk } = layout.decodeDeadLetterKey(key);
          const whole = gatherer.add({ consumer, position }, chunk, value);
          if (whole === null) continue;
          letters.push(whole);
          // Returning from the loop closes the cursor.
          if (letters.length >= pageSize) return false;
        }
        const last = gatherer.finish();
        if (last !== null) letters.push(last);
        return true;
      });
      for (const record of decodeDeadLetters(this.#codec, letters, query)) yield record;
      if (done || letters.length === 0) return;
      const last = letters[letters.length - 1]!.id;
      range = { start: layout.deadLetterChunks(last.consumer, last.position).end, end: range.end };
    }
  }

  async readCursors(): Promise<CursorRecord[]> {
    const range = this.#layout.cursorRange();
    return this.#read(() =>
      [...this.#db.getRange({ start: range.start, end: range.end })].map(({ key, value }) => {
        const at = this.#layout.decodeCursorKey(key);
        return { ...at, position: Buffer.from(checkPosition(value, `the cursor of ${at.group}/${at.partition}`)) };
      }),
    );
  }

  async readLeases(): Promise<LeaseRecord[]> {
    const range = this.#layout.leaseRange();
    return this.#read(() =>
      [...this.#db.getRange({ start: range.start, end: range.end })].map(({ key, value }) => {
        const at = this.#layout.decodeLeaseKey(key);
        return { ...at, ...decodeLease(value, `${at.group}/${at.partition}`) };
      }),
    );
  }

  async stats(): Promise<StoreStats> {
    this.#checkOpen();
    return this.#read(() => {
      const count = (name: CountName) => decodeCount(this.#db.getBinary(this.#layout.countKey(name)));
      let lastPosition: Position | null = null;
      const all = this.#layout.blockRange();
      for (const { key } of this.#db.getRange({ start: all.end, end: all.start, reverse: true, limit: 1 })) {
        const { stamp } = this.#layout.decodeBlockKey(key);
        const first = this.#db.getBinary(this.#layout.blockKey(stamp, 0));
        if (first === undefined) throw new StoreCorruptError(`block ${stamp.toString('hex')} has no first chunk`);
        lastPosition = positionOf(stamp, blockCount(first) - 1);
      }
      let bytes: number | null = null;
      try {
        bytes = statSync(this.#dataFile).size;
      } catch {
        bytes = null;
      }
      return { events: count('events'), auditEntries: count('auditEntries'), deadLetters: count('deadLetters'), bytes, lastPosition };
    });
  }

  // -------------------------------------------------------------------------
  // Read helpers

  /**
   * Resolves a query's bounds to the stamps of the blocks to read, or null when
   * nothing can match. A time range is turned into stamps by one pass over the
   * `ts` index keys in [fromMs, toMs): the least and greatest stamp found bound
   * the blocks, which are then read in position order and filtered by the
   * timestamps in their headers. User timestamps need not follow positions, so
   * a time range cannot be read from the `ts` index in position order directly
   * without holding its whole result; this way memory stays one page, at the
   * cost of reading the index keys (one per millisecond per block) once.
   */
  #bounds(query: ReadEventsQuery): Promise<Bounds | null> {
    return resolveBounds(query, (fromMs, toMs) => this.#stampsInTime(fromMs, toMs));
  }

  async #stampsInTime(fromMs: number | undefined, toMs: number | undefined): Promise<{ first: Stamp; last: Stamp } | null> {
    let range = this.#layout.timeRange(fromMs, toMs);
    const seen: { first: Stamp | undefined; last: Stamp | undefined } = { first: undefined, last: undefined };
    while (true) {
      const keys = this.#read(() => [...this.#db.getKeys({ start: range.start, end: range.end, limit: TIME_SCAN_PAGE })]);
      for (const key of keys) {
        widen(seen, this.#layout.stampOfIndexKey(key));
      }
      if (keys.length < TIME_SCAN_PAGE) break;
      range = { start: keyAfter(keys[keys.length - 1]!), end: range.end };
      await nextTurn(); // a long index scan must not hold the event loop
    }
    return seen.first && seen.last ? { first: seen.first, last: seen.last } : null;
  }

  /**
   * Reads whole blocks (every chunk of a stamp) from `range` in one
   * synchronous cursor pass, handing each to `visit` (as `corrupt` when its
   * chunks do not run in order, so the scan goes on), and stops after the
   * block at which `enough()` turns true. Returns the stamp of the last block
   * read and whether the range is exhausted.
   */
  #scanBlocks(
    range: KeyRange,
    decodeKey: (key: Buffer) => { stamp: Stamp; chunk: number },
    visit: (block: Gathered<Stamp>) => void,
    enough: () => boolean,
    what = 'block',
  ): { last: Stamp | undefined; done: boolean } {
    return this.#read(() => {
      const gatherer = blockGatherer(what);
      for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end })) {
        const at = decodeKey(key);
        const whole = gatherer.add(at.stamp, at.chunk, value);
        if (whole === null) continue;
        visit(whole);
        // Returning from the loop closes the cursor.
        if (enough()) return { last: whole.id, done: false };
      }
      const whole = gatherer.finish();
      if (whole !== null) visit(whole);
      return { last: whole?.id, done: true };
    });
  }

  /** One whole block by stamp (inside a read). */
  #readBlock(stamp: Stamp): Buffer {
    const range = this.#layout.blockChunks(stamp);
    const gatherer = blockGatherer();
    for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end }))
      gatherer.add(stamp, this.#layout.decodeBlockKey(key).chunk, value);
    const whole = gatherer.finish();
    if (whole === null) throw new StoreCorruptError(`an index names block ${stamp.toString('hex')}, which is not stored`);
    if (whole.corrupt) throw whole.corrupt;
    return whole.value;
  }

  /** Runs a synchronous read, reporting lmdb failures as StoreReadError (corruption as itself). */
  #read<T>(body: () => T): T {
    this.#checkOpen();
    try {
      return body();
    } catch (err) {
      if (err instanceof StoreCorruptError || err instanceof StoreReadError) throw err;
      throw new StoreReadError(describe(err), err);
    }
  }
}
