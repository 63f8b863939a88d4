/**
 * Reads of the FoundationDB store. Replay, audit, dead-letter and index scans
 * go page by page, one short snapshot transaction per page that continues
 * after the last key of the previous one, with a byte cap per page, so no
 * transaction comes near FoundationDB's 5-second limit however long the
 * caller holds the iterator.
 */
import type { Codec } from '../codec.js';
import { StoreCorruptError } from '../errors.js';
import {
  PageMeter,
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
import type { Tn } from './fdb-client.js';
import { BLOCK_FETCH_WINDOW, PAGE_LIMITS, findGenerated, readEventsOf, readPage, scanBlocks } from './fdb-scans.js';
import { auditEntries, decodeAuditBlock, eventsNeededBy, type AuditFrame } from './layout/audit-blocks.js';
import { blockCount, decodeBlockOrReport } from './layout/blocks.js';
import { deadLetterGatherer, type DeadLetterId, type Gathered } from './layout/chunks.js';
import { decodeCount, type CountName } from './layout/counts.js';
import { decodeDeadLetters } from './layout/dead-letters.js';
import { decodeLease } from './layout/groups.js';
import { decodeIndexList } from './layout/index-lists.js';
import type { KeyRange, StoreLayout } from './layout/keys.js';
import { checkPosition, positionOf, type Stamp } from './layout/positions.js';
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

/** getEstimatedRangeSizeBytes needs API version 630. */
const ESTIMATE_API_VERSION = 630;

/** Runs one short read-only snapshot transaction (the store's, which reports failures and checks it is open). */
export type ReadTransaction = <T>(body: (tn: Tn) => Promise<T>) => Promise<T>;

export class FdbReader {
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #apiVersion: number;
  readonly #read: ReadTransaction;
  readonly #checkOpen: () => void;

  constructor(layout: StoreLayout, codec: Codec, apiVersion: number, read: ReadTransaction, checkOpen: () => void) {
    this.#layout = layout;
    this.#codec = codec;
    this.#apiVersion = apiVersion;
    this.#read = read;
    this.#checkOpen = checkOpen;
  }

  async lookup(eventId: string): Promise<Position | null> {
    return this.#read(async (tn) => {
      const position = await tn.get(this.#layout.idKey(eventId));
      if (position !== undefined) return checkPosition(position, `the position of event ${eventId}`);
      return findGenerated(tn, this.#layout, this.#codec, eventId);
    });
  }

  async *readEvents(query: ReadEventsQuery = {}): AsyncGenerator<StoredEvent> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    const bounds = await this.#bounds(query);
    if (!bounds) return;
    if (query.tenantId !== undefined) {
      yield* this.#readTenant(query.tenantId, bounds, pageSize);
      return;
    }
    const layout = this.#layout;
    let range: KeyRange = layout.blockRange(bounds.fromStamp, bounds.untilStamp);
    while (true) {
      const { page, last, done } = await this.#read(async (tn) => {
        const page: StoredEvent[] = [];
        const scan = await scanBlocks(
          tn,
          range,
          (key) => layout.decodeBlockKey(key),
          (whole) => {
            const block = decodeBlockOrReport(whole, page, bounds.after);
            if (block !== null) for (let i = 0; i < block.count; i++) pushIfWithin(page, bounds, whole.id, i, block);
          },
          () => page.length >= pageSize,
        );
        return { page, ...scan };
      });
      yield* page;
      if (done || !last) return;
      range = { start: layout.blockRange(last, last).end, end: range.end };
    }
  }

  /**
   * A tenant's events: a page of its index keys (at most PAGE_LIMITS.blocks,
   * each naming one block), then only the chunks of those blocks that hold its
   * events, fetched a window of blocks at a time in parallel. The page ends
   * early once the chunks read (first chunks included) reach PAGE_LIMITS.bytes.
   */
  async *#readTenant(tenantId: string, bounds: Bounds, pageSize: number): AsyncGenerator<StoredEvent> {
    const layout = this.#layout;
    let range = layout.tenantRange(tenantId, bounds.fromStamp, bounds.untilStamp);
    while (true) {
      const { page, lastKey, more } = await this.#read(async (tn) => {
        const page: StoredEvent[] = [];
        // Each index key names at least one event, so pageSize keys fill a page.
        const { entries, more } = await readPage(tn, range, Math.min(pageSize, PAGE_LIMITS.blocks));
        const meter = new PageMeter(PAGE_LIMITS);
        let done = 0;
        for (let n; (n = meter.nextWindow(entries.length - done, BLOCK_FETCH_WINDOW, done)) > 0; done += n) {
          const window = entries.slice(done, done + n);
          const found = await Promise.all(
            window.map(([key, value]) => readEventsOf(tn, layout, layout.stampOfIndexKey(key), decodeIndexList(value))),
          );
          window.forEach(([key], w) => {
            const stamp = layout.stampOfIndexKey(key);
            const { events, bytes } = found[w]!;
            meter.add(bytes, 1);
            for (const event of events) {
              if (!withinTime(bounds, event.timestampMs)) continue;
              const position = positionOf(stamp, event.index);
              if (withinPositions(bounds, position)) page.push({ position, bytes: event.bytes });
            }
          });
        }
        return { page, lastKey: done > 0 ? entries[done - 1]![0] : undefined, more: more || done < entries.length };
      });
      yield* page;
      if (!more || !lastKey) return;
      range = { start: keyAfter(lastKey), end: range.end };
    }
  }

  /**
   * A page scans audit blocks (stopping at pageSize entries, PAGE_LIMITS.bytes
   * of audit blocks, or PAGE_LIMITS.blocks blocks whose events must be read),
   * then reads the events the entries are made of, a window of blocks at a
   * time in parallel, counting every chunk read; once those reach
   * PAGE_LIMITS.bytes the page ends after the last block resolved and the next
   * transaction starts from the one after it.
   */
  async *readAudit(query: AuditQuery = {}): AsyncGenerator<StoredAuditEntry> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    const bounds = await this.#bounds(query);
    if (!bounds) return;
    const layout = this.#layout;
    let range = layout.auditRange(bounds.fromStamp, bounds.untilStamp);
    while (true) {
      const { page, last, done, corrupt } = await this.#read(async (tn) => {
        // Reported once the transaction is over: a retried body must not report twice.
        const corrupt: StoreCorruptError[] = [];
        const blocks: { stamp: Stamp; frames: AuditFrame[] }[] = [];
        const meter = new PageMeter(PAGE_LIMITS);
        let count = 0;
        const scan = await scanBlocks(
          tn,
          range,
          (key) => layout.decodeAuditKey(key),
          (whole, bytes) => {
            meter.add(bytes);
            let frames: AuditFrame[] = [];
            try {
              if (whole.corrupt) throw whole.corrupt;
              frames = decodeAuditBlock(whole.value).filter((frame) => auditFrameWanted(query, bounds, whole.id, frame));
            } catch (err) {
              corrupt.push(asCorrupt(err, `audit block ${whole.id.toString('hex')}`));
            }
            blocks.push({ stamp: whole.id, frames });
            count += frames.length;
            if (eventsNeededBy(frames).length > 0) meter.add(0, 1);
          },
          () => count >= pageSize || meter.spent,
          'audit block',
        );
        const page: StoredAuditEntry[] = [];
        let resolved = 0;
        for (let n; (n = meter.nextWindow(blocks.length - resolved, BLOCK_FETCH_WINDOW, resolved)) > 0; resolved += n) {
          const window = blocks.slice(resolved, resolved + n);
          const read = await Promise.all(
            window.map(async ({ stamp, frames }) => {
              const needed = eventsNeededBy(frames);
              if (needed.length === 0) return { stamp, frames, events: [] as Buffer[] };
              try {
                const found = await readEventsOf(tn, layout, stamp, needed);
                meter.add(found.bytes);
                return { stamp, frames, events: found.events.map((e) => e.bytes) };
              } catch (err) {
                if (!(err instanceof StoreCorruptError)) throw err;
                corrupt.push(asCorrupt(err, `the events of audit block ${stamp.toString('hex')}`));
                return null;
              }
            }),
          );
          for (const block of read) if (block !== null) page.push(...auditEntries(block.stamp, block.frames, block.events));
        }
        const ended = resolved < blocks.length;
        return { page, corrupt, last: ended ? blocks[resolved - 1]!.stamp : scan.last, done: ended ? false : scan.done };
      });
      for (const error of corrupt) reportCorrupt(query.onCorrupt, error);
      yield* page;
      if (done || !last) return;
      range = { start: layout.auditRange(last, last).end, end: range.end };
    }
  }

  /** A page is pageSize dead letters, every chunk of each, or PAGE_LIMITS.bytes of them, in one short transaction. */
  async *readDeadLetters(query: DeadLetterQuery = {}): AsyncGenerator<DeadLetterRecord> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    const layout = this.#layout;
    let range = layout.deadLetterRange(query.consumer);
    while (true) {
      const { letters, done } = await this.#read(async (tn) => {
        const letters: Gathered<DeadLetterId>[] = [];
        const gatherer = deadLetterGatherer();
        const meter = new PageMeter(PAGE_LIMITS);
        for await (const [key, value] of tn.getRange(range.start, range.end)) {
          const { consumer, position, chunk } = layout.decodeDeadLetterKey(key);
          const whole = gatherer.add({ consumer, position }, chunk, value);
          meter.add(value.length);
          if (whole === null) continue;
          letters.push(whole);
          // Leaving the loop ends the range read.
          if (letters.length >= pageSize || meter.spent) return { letters, done: false };
        }
        const last = gatherer.finish();
        if (last !== null) letters.push(last);
        return { letters, done: true };
      });
      for (const record of decodeDeadLetters(this.#codec, letters, query)) yield record;
      if (done || letters.length === 0) return;
      const last = letters[letters.length - 1]!.id;
      range = { start: layout.deadLetterChunks(last.consumer, last.position).end, end: range.end };
    }
  }

  async readCursors(): Promise<CursorRecord[]> {
    const range = this.#layout.cursorRange();
    const entries = await this.#read((tn) => tn.getRangeAll(range.start, range.end));
    return entries.map(([key, value]) => {
      const at = this.#layout.decodeCursorKey(key);
      return { ...at, position: checkPosition(value, `the cursor of ${at.group}/${at.partition}`) };
    });
  }

  async readLeases(): Promise<LeaseRecord[]> {
    const range = this.#layout.leaseRange();
    const entries = await this.#read((tn) => tn.getRangeAll(range.start, range.end));
    return entries.map(([key, value]) => {
      const at = this.#layout.decodeLeaseKey(key);
      return { ...at, ...decodeLease(value, `${at.group}/${at.partition}`) };
    });
  }

  /** The head key every append writes (fdb-append.ts). */
  async head(): Promise<Position | null> {
    const value = await this.#read((tn) => tn.get(this.#layout.headKey));
    return value === undefined ? null : checkPosition(value, 'the head');
  }

  async stats(): Promise<StoreStats> {
    const layout = this.#layout;
    return this.#read(async (tn) => {
      const count = async (name: CountName) => decodeCount(await tn.get(layout.countKey(name)));
      const blocks = layout.blockRange();
      const all = layout.all();
      const [events, auditEntries, deadLetters, lastChunk, estimate] = await Promise.all([
        count('events'),
        count('auditEntries'),
        count('deadLetters'),
        tn.getRangeAll(blocks.start, blocks.end, { reverse: true, limit: 1 }),
        // Only an estimate, and optional: its failure must not fail stats().
        this.#apiVersion >= ESTIMATE_API_VERSION ? tn.getEstimatedRangeSizeBytes(all.start, all.end).catch(() => 0) : Promise.resolve(0),
      ]);
      let lastPosition: Position | null = null;
      const last = lastChunk[0];
      if (last !== undefined) {
        const { stamp } = layout.decodeBlockKey(last[0]);
        const first = await tn.get(layout.blockKey(stamp, 0));
        if (first === undefined) throw new StoreCorruptError(`block ${stamp.toString('hex')} has no first chunk`);
        lastPosition = positionOf(stamp, blockCount(first) - 1);
      }
      // FoundationDB samples sizes: a small range may be estimated at 0 bytes, which says nothing.
      return { events, auditEntries, deadLetters, bytes: estimate > 0 ? estimate : null, lastPosition };
    });
  }

  // Read helpers

  /**
   * Resolves a query's bounds to the stamps of the blocks to read, or null when
   * nothing can match: as on lmdb, a time range becomes the least and greatest
   * stamp its `ts` index keys name, and the blocks between are filtered by the
   * timestamps in their headers, so memory stays one page.
   */
  #bounds(query: ReadEventsQuery): Promise<Bounds | null> {
    return resolveBounds(query, (fromMs, toMs) => this.#stampsInTime(fromMs, toMs));
  }

  async #stampsInTime(fromMs: number | undefined, toMs: number | undefined): Promise<{ first: Stamp; last: Stamp } | null> {
    let range = this.#layout.timeRange(fromMs, toMs);
    const seen: { first: Stamp | undefined; last: Stamp | undefined } = { first: undefined, last: undefined };
    while (true) {
      const { entries, more } = await this.#read((tn) => readPage(tn, range, TIME_SCAN_PAGE));
      for (const [key] of entries) {
        widen(seen, this.#layout.stampOfIndexKey(key));
      }
      if (!more || entries.length === 0) break;
      range = { start: keyAfter(entries[entries.length - 1]![0]), end: range.end };
    }
    return seen.first && seen.last ? { first: seen.first, last: seen.last } : null;
  }
}
