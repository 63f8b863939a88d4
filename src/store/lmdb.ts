/**
 * The embedded backend: lmdb-js over the shared layout (`layout.ts`). This is
 * the only file that imports `lmdb`.
 *
 * Writes: one lmdb transaction per append, run as an lmdb-js *child*
 * transaction. lmdb-js batches the async transaction callbacks of an event
 * turn into one lmdb transaction; a plain callback that throws halfway would
 * leave its first writes in that shared transaction, a child transaction is
 * rolled back alone. The callback runs on the main thread inside the write
 * transaction, so the counter and the id index it reads are the committed
 * state plus earlier appends, and concurrent appends run in call order.
 * lmdb-js resolves a transaction at commit and syncs afterwards
 * (overlappingSync), so append() also awaits `db.flushed` before it resolves.
 *
 * Reads: every page is one short, synchronous range read whose cursor is closed
 * before the page is yielded, so no read transaction stays open while a
 * consumer holds the iterator (a long-lived lmdb reader stops page reuse and
 * grows the file).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { open, type RootDatabase } from 'lmdb';
import { Codec } from '../codec.js';
import { StoreCorruptError, StoreReadError, StoreUnavailableError, StoreWriteError } from '../errors.js';
import { auditFrameWanted, keyAfter, pageSizeOf, pushIfWithin, resolveBounds, widen, withinPositions, withinTime, type Bounds } from './bounds.js';
import {
  DecodedBlock,
  decodeBlockOrReport,
  StoreLayout,
  MAX_VALUE_BYTES,
  blockCount,
  blockSpans,
  checkPosition,
  auditEntries,
  decodeAuditBlock,
  eventsNeededBy,
  decodeCount,
  decodeCounter,
  decodeDeadLetter,
  decodeIndexList,
  encodeCount,
  encodeCounter,
  encodeDeadLetter,
  idsToCheck,
  joinChunks,
  patchStamp,
  positionOf,
  stampFromCounter,
  type AppendPlan,
  type CountName,
  type KeyRange,
  type Stamp,
} from './layout.js';
import type {
  AppendItem,
  AppendResult,
  AuditQuery,
  DeadLetterQuery,
  DeadLetterRecord,
  EventStore,
  Position,
  ProgressWrite,
  ReadEventsQuery,
  StoreStats,
  StoredAuditEntry,
  StoredEvent,
} from './store.js';

export interface LmdbStoreOptions {
  /** A folder: lmdb keeps `data.mdb` and `lock.mdb` in it. */
  readonly path: string;
  readonly prefix: string;
  /** lmdb's initial map size in bytes (lmdb-js grows the map as the data grows). */
  readonly mapSize?: number;
  /** The shared codec, for dead letter records; a new one if not given. */
  readonly codec?: Codec;
}

const PLACEHOLDER_STAMP: Stamp = Buffer.alloc(10);
/** lmdb copies each key as it is written: the id index is written from one reused key buffer, not a buffer per event. */
const IDS_APART = { idsApart: true } as const;
/** Keys per read while scanning the time index for the stamps a time range covers. */
const TIME_SCAN_PAGE = 4096;

type Db = RootDatabase<Buffer, Buffer>;



const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));


export class LmdbStore implements EventStore {
  readonly kind = 'lmdb' as const;
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #dataFile: string;
  /** Writes not yet settled: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(db: Db, layout: StoreLayout, codec: Codec, dataFile: string) {
    this.#db = db;
    this.#layout = layout;
    this.#codec = codec;
    this.#dataFile = dataFile;
  }

  static async open(options: LmdbStoreOptions): Promise<LmdbStore> {
    const layout = new StoreLayout(options.prefix);
    let db: Db;
    try {
      db = open<Buffer, Buffer>({
        path: options.path,
        // A folder even when its name has a dot (lmdb-js guesses "file" from an extension).
        noSubdir: false,
        // Keys and values are bytes built by layout.ts: no encoding on the main thread.
        encoding: 'binary',
        keyEncoding: 'binary',
        cache: false,
        ...(options.mapSize === undefined ? {} : { mapSize: options.mapSize }),
      });
    } catch (err) {
      throw new StoreUnavailableError(`cannot open the lmdb store at ${options.path}: ${describe(err)}`, err);
    }
    return new LmdbStore(db, layout, options.codec ?? new Codec(), join(options.path, 'data.mdb'));
  }

  // -------------------------------------------------------------------------
  // Writes

  append(items: readonly AppendItem[]): Promise<AppendResult> {
    return this.#write(async () => {
      if (items.length === 0) return { positions: [], duplicate: [] };
      const toCheck = idsToCheck(items);
      // Built before the transaction with a placeholder stamp: the main thread
      // does this while lmdb's write thread may still be committing the
      // previous batch, and the write lock is held only for the puts.
      const draft = this.#layout.planAppend(PLACEHOLDER_STAMP, items, undefined, IDS_APART);
      const plan = await this.#db.childTransaction((): AppendPlan => {
        const db = this.#db;
        const layout = this.#layout;
        this.#observeCommit();
        const stored = new Map<string, Position>();
        for (const id of toCheck) {
          const position = db.getBinary(layout.idKey(id));
          if (position !== undefined) stored.set(id, checkPosition(position, `the position of event ${id}`));
        }
        const counter = decodeCounter(db.getBinary(layout.counterKey)) + 1n;
        const stamp = stampFromCounter(counter);
        let plan = draft;
        if (stored.size > 0) plan = layout.planAppend(stamp, items, stored, IDS_APART);
        else patchStamp(plan, stamp);
        if (plan.events === 0) return plan; // all duplicates: nothing to write, the counter stays
        db.putSync(layout.counterKey, encodeCounter(counter));
        for (const put of plan.puts) db.putSync(put.key, put.value);
        const ids = plan.ids!;
        for (let i = 0; i < ids.items.length; i++) db.putSync(layout.scratchIdKey(ids.items[i]!.eventId), ids.positions[i]!);
        this.#addToCount('events', plan.events);
        if (plan.auditEntries > 0) this.#addToCount('auditEntries', plan.auditEntries);
        return plan;
      });
      return plan.result;
    });
  }

  writeProgress(write: ProgressWrite): Promise<void> {
    return this.#write(async () => {
      const encoded = (write.deadLetters ?? []).map((r) => ({ key: this.#layout.deadLetterKey(r.consumer, r.position), value: encodeDeadLetter(this.#codec, r) }));
      const removed = (write.removeDeadLetters ?? []).map((k) => this.#layout.deadLetterKey(k.consumer, k.position));
      const checkpoints = [...(write.checkpoints ?? new Map<string, Position>())].map(([name, position]) => ({
        key: this.#layout.checkpointKey(name),
        value: checkPosition(position, `checkpoint ${name}`),
      }));
      if (encoded.length + removed.length + checkpoints.length === 0) return;
      await this.#db.childTransaction(() => {
        const db = this.#db;
        this.#observeCommit();
        // The count stays exact: overwriting a dead letter adds nothing, removing a missing one takes nothing.
        let delta = 0;
        for (const { key, value } of encoded) {
          if (db.getBinary(key) === undefined) delta++;
          db.putSync(key, value);
        }
        for (const key of removed) if (db.removeSync(key)) delta--;
        for (const { key, value } of checkpoints) db.putSync(key, value);
        if (delta !== 0) this.#addToCount('deadLetters', delta);
      });
    });
  }

  /** Inside a write transaction. */
  #addToCount(name: CountName, delta: number): void {
    const key = this.#layout.countKey(name);
    this.#db.putSync(key, encodeCount(decodeCount(this.#db.getBinary(key)) + delta));
  }

  /**
   * When a commit fails, lmdb-js rejects the promise of each transaction in it
   * (ours) but also an internal commit promise of the batch that nobody awaits,
   * which would surface as an unhandled rejection and end the process. Inside a
   * transaction callback `db.committed` is that promise: observing it leaves
   * the failure to be reported once, by the append that owns it.
   */
  #observeCommit(): void {
    this.#db.committed.then(undefined, () => {});
  }

  /** Runs a write, resolves once it is on disk, and reports any failure as StoreWriteError. */
  #write<T>(body: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreWriteError('the store is closed'));
    const done = (async () => {
      try {
        const result = await body();
        await this.#db.flushed;
        return result;
      } catch (err) {
        if (err instanceof StoreWriteError) throw err;
        const cause = await commitErrorOf(err);
        throw new StoreWriteError(describe(cause), cause);
      }
    })();
    this.#inFlight.add(done);
    const forget = () => this.#inFlight.delete(done);
    done.then(forget, forget);
    return done;
  }

  // -------------------------------------------------------------------------
  // Reads

  async lookup(eventId: string): Promise<Position | null> {
    this.#checkOpen();
    const position = this.#read(() => this.#db.getBinary(this.#layout.idKey(eventId)));
    return position === undefined ? null : checkPosition(position, `the position of event ${eventId}`);
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
        (stamp, value) => {
          const block = decodeBlockOrReport(stamp, value, page);
          if (block !== null) for (let i = 0; i < block.count; i++) pushIfWithin(page, bounds, stamp, i, block);
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
  #readEventsOf(stamp: Stamp, indices: readonly number[]): { index: number; bytes: Buffer; timestampMs: number }[] {
    const db = this.#db;
    const first = db.getBinaryFast(this.#layout.blockKey(stamp, 0));
    if (first === undefined) throw new StoreCorruptError(`an index names block ${stamp.toString('hex')}, which is not stored`);
    const found = blockSpans(first, indices);
    if (!found) {
      const block = new DecodedBlock(this.#readBlock(stamp));
      return indices.map((index) => ({ index, bytes: block.bytes(index), timestampMs: block.timestampMs(index) }));
    }
    const events = [];
    let chunkNo = 0;
    let chunk: Buffer | undefined = first;
    // One buffer for the events taken from this block, each event a view of it.
    let total = 0;
    for (const span of found.spans) total += span.length;
    const slab = Buffer.allocUnsafeSlow(total);
    let slabAt = 0;
    for (const span of found.spans) {
      const bytes = slab.subarray(slabAt, slabAt + span.length);
      slabAt += span.length;
      let copied = 0;
      while (copied < span.length) {
        const at = span.start + copied;
        const wanted = Math.floor(at / MAX_VALUE_BYTES);
        if (wanted !== chunkNo) {
          chunk = db.getBinaryFast(this.#layout.blockKey(stamp, wanted));
          chunkNo = wanted;
        }
        if (chunk === undefined) throw new StoreCorruptError(`block ${stamp.toString('hex')} has no chunk ${wanted}`);
        const from = at - wanted * MAX_VALUE_BYTES;
        // A view with explicit bounds: the buffer getBinaryFast returns is larger
        // than its `length` says, which Buffer#copy misreads at the chunk's end.
        const piece = chunk.subarray(from, Math.min(chunk.length, from + span.length - copied));
        if (piece.length === 0) throw new StoreCorruptError(`block ${stamp.toString('hex')}: chunk ${wanted} ends before event ${span.index}`);
        bytes.set(piece, copied);
        copied += piece.length;
      }
      events.push({ index: span.index, bytes, timestampMs: span.timestampMs });
    }
    return events;
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
        (stamp, value) => {
          const frames = decodeAuditBlock(value).filter((frame) => auditFrameWanted(query, bounds, stamp, frame));
          const needed = eventsNeededBy(frames);
          page.push(...auditEntries(stamp, frames, needed.length === 0 ? [] : this.#readEventsOf(stamp, needed).map((e) => e.bytes)));
        },
        () => page.length >= pageSize,
      );
      yield* page;
      if (done || !last) return;
      range = { start: this.#layout.auditRange(last, last).end, end: range.end };
    }
  }

  async *readDeadLetters(query: DeadLetterQuery = {}): AsyncGenerator<DeadLetterRecord> {
    this.#checkOpen();
    const pageSize = pageSizeOf(query.pageSize);
    let range = this.#layout.deadLetterRange(query.consumer);
    while (true) {
      const entries = this.#read(() => [...this.#db.getRange({ start: range.start, end: range.end, limit: pageSize })]);
      for (const { key, value } of entries) {
        const record = decodeDeadLetter(this.#codec, this.#layout.decodeDeadLetterKey(key), value);
        if (query.tenantId === undefined || record.tenantId === query.tenantId) yield record;
      }
      if (entries.length < pageSize) return;
      range = { start: keyAfter(entries[entries.length - 1]!.key), end: range.end };
    }
  }

  async readCheckpoints(): Promise<Map<string, Position>> {
    this.#checkOpen();
    const range = this.#layout.checkpointRange();
    const checkpoints = new Map<string, Position>();
    this.#read(() => {
      for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end })) {
        const name = this.#layout.decodeCheckpointKey(key);
        checkpoints.set(name, checkPosition(value, `checkpoint ${name}`));
      }
    });
    return checkpoints;
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    await this.#db.close();
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
   * synchronous cursor pass, handing each to `visit`, and stops after the
   * block at which `enough()` turns true. Returns the stamp of the last block
   * read and whether the range is exhausted.
   */
  #scanBlocks(
    range: KeyRange,
    decodeKey: (key: Buffer) => { stamp: Stamp; chunk: number },
    visit: (stamp: Stamp, block: Buffer) => void,
    enough: () => boolean,
  ): { last: Stamp | undefined; done: boolean } {
    return this.#read(() => {
      let stamp: Stamp | undefined;
      let chunks: Buffer[] = [];
      for (const { key, value } of this.#db.getRange({ start: range.start, end: range.end })) {
        const at = decodeKey(key);
        if (stamp && !at.stamp.equals(stamp)) {
          visit(stamp, joinChunks(chunks));
          // Returning from the loop closes the cursor.
          if (enough()) return { last: stamp, done: false };
          chunks = [];
          stamp = undefined;
        }
        if (at.chunk !== chunks.length) throw new StoreCorruptError(`block ${at.stamp.toString('hex')}: chunk ${at.chunk} where ${chunks.length} was expected`);
        stamp ??= at.stamp;
        chunks.push(value);
      }
      if (stamp) visit(stamp, joinChunks(chunks));
      return { last: stamp, done: true };
    });
  }

  /** One whole block by stamp (inside a read). */
  #readBlock(stamp: Stamp): Buffer {
    const range = this.#layout.blockChunks(stamp);
    const chunks: Buffer[] = [];
    for (const { value } of this.#db.getRange({ start: range.start, end: range.end })) chunks.push(value);
    if (chunks.length === 0) throw new StoreCorruptError(`an index names block ${stamp.toString('hex')}, which is not stored`);
    return joinChunks(chunks);
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

  #checkOpen(): void {
    if (this.#closed) throw new StoreReadError('the store is closed');
  }
}

/**
 * lmdb-js rejects a failed commit with a generic "Commit failed" error whose
 * `commitError` promise rejects with the cause (a full disk, say), already
 * rejected by the time the caller sees the first. Taking the cause also
 * handles that promise, which would otherwise be an unhandled rejection.
 */
async function commitErrorOf(err: unknown): Promise<unknown> {
  const commitError = (err as { commitError?: unknown } | null)?.commitError;
  if (!(commitError instanceof Promise)) return err;
  const cause: unknown = await Promise.race([commitError.then(() => undefined, (e: unknown) => e), nextTurn(undefined)]);
  return cause ?? err;
}

