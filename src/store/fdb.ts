/**
 * The shared backend: FoundationDB through node-foundationdb (npm
 * `foundationdb`), over the same layout and bytes as lmdb (`layout.ts`), so
 * many service instances can append to one log. This is the only file that
 * touches `foundationdb`: its types are imported type-only, and the module
 * itself with `await import()` when a store is opened, so a bus that does not
 * select 'fdb' never loads the native client library (libfdb_c).
 *
 * Writes. A batch is cut into transactions of at most
 * `store.maxTransactionBytes` (fdb-batches.ts); each writes one block. Every
 * key that holds the commit stamp is written with SET_VERSIONSTAMPED_KEY (or
 * _VALUE for the id index) at the offset the layout's Put gives, so
 * FoundationDB fills in the commit versionstamp: appends from many instances
 * never read a shared counter and never conflict. Counts are atomic adds.
 * The only reads are the id index entries of caller-supplied event_ids (the
 * dedup check, in the same transaction), so two appends conflict only when
 * they carry the same id. The receipt's positions are patched with the real
 * versionstamp, read after commit.
 *
 * Retries. `db.doTransaction` retries FoundationDB's retryable errors,
 * commit_unknown_result (1021) included, after which the earlier attempt may
 * or may not have committed, but is no longer in flight (FoundationDB's
 * guarantee for that error). A retry therefore reads the id of every event of
 * the batch and, when the events of an earlier attempt (any of them, should
 * several have failed) are all there, returns that attempt's positions
 * instead of writing the batch a second time (`earlierCommit`). The reads are
 * not snapshot reads, so a retry that races another writer of the same ids
 * conflicts and runs again.
 *
 * Reads. Replay, audit, dead-letter and index scans go page by page, one
 * short snapshot transaction per page that continues after the last key of
 * the previous one, with a byte cap per page, so no transaction comes near
 * FoundationDB's 5-second limit however long the caller holds the iterator.
 *
 * Threads. Every FoundationDB call is made on the main thread: the client
 * library runs one network thread per process, which node-foundationdb starts
 * on the first `fdb.open()` and which cannot be started again; a worker that
 * loaded the native module would try to set the network up a second time, and
 * its futures would resolve on that worker's event loop. Workers get event
 * bytes, never a store.
 */
import { isMainThread } from 'node:worker_threads';
import type { Database, Transaction, TransactionOptions } from 'foundationdb';
import { Codec } from '../codec.js';
import { StoreCorruptError, StoreReadError, StoreUnavailableError, StoreWriteError } from '../errors.js';
import { allIds, earlierCommit, limitProblem, splitBatch } from './fdb-batches.js';
import { describeFdbError, loadFoundationDb } from './fdb-client.js';
import { DEFAULT_MAX_TRANSACTION_BYTES, FDB_MAX_TRANSACTION_BYTES } from './limits.js';
import {
  PageMeter,
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
  type PageLimits, TIME_SCAN_PAGE
} from './bounds.js';
import { idsToCheck, patchStamp, type AppendPlan, type Put } from './layout/append-plan.js';
import { auditEntries, decodeAuditBlock, eventsNeededBy, type AuditFrame } from './layout/audit-blocks.js';
import { DecodedBlock, blockCount, blockSpans, chunksOfSpans, copySpans, decodeBlockOrReport, type SpanEvent } from './layout/blocks.js';
import { blockGatherer, deadLetterGatherer, type DeadLetterId, type Gathered } from './layout/chunks.js';
import { decodeCount, encodeCount, type CountName } from './layout/counts.js';
import { decodeDeadLetters } from './layout/dead-letters.js';
import { decodeIndexList } from './layout/index-lists.js';
import { StoreLayout, type KeyRange } from './layout/keys.js';
import { PLACEHOLDER_STAMP, STAMP_BYTES, checkPosition, positionOf, type Stamp } from './layout/positions.js';
import { tupleString } from './layout/tuple.js';
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

export interface FdbStoreOptions {
  /** The cluster file; FoundationDB's default when absent (FDB_CLUSTER_FILE, ./fdb.cluster, then the system one). */
  readonly clusterFile?: string | undefined;
  readonly prefix: string;
  /** FoundationDB API version; node-foundationdb 2.x supports up to 720. */
  readonly apiVersion?: number;
  /** Bytes to aim for per append transaction (FoundationDB's hard limit is 10 MB). */
  readonly maxTransactionBytes?: number;
  /** The shared codec, for dead letter records; a new one if not given. */
  readonly codec?: Codec;
}

type Db = Database;
type Tn = Transaction;

const DEFAULT_API_VERSION = 720;
/**
 * What a page transaction may read: about 4 MB of values (a few milliseconds
 * of reading) and 256 block fetches (8 windows of round trips in parallel), far
 * under FoundationDB's 5 s whatever the data, e.g. sparse audited events.
 */
const PAGE_LIMITS: PageLimits = { bytes: 4_000_000, blocks: 256 };
/** Blocks fetched at once while a tenant page resolves its index keys. */
const BLOCK_FETCH_WINDOW = 32;
/** How long open() waits to reach the cluster before it reports it unavailable. */
const OPEN_TIMEOUT_MS = 10_000;
/**
 * A transaction, retries included, is cancelled after this long: a cluster
 * that cannot be reached fails the call instead of leaving it pending forever.
 * From API version 610 the timeout survives the retries of onError.
 */
const TRANSACTION_OPTIONS: TransactionOptions = { timeout: 30_000 };
/** getEstimatedRangeSizeBytes needs API version 630. */
const ESTIMATE_API_VERSION = 630;



/** What one attempt of an append transaction decided. */
interface PartOutcome {
  readonly plan: AppendPlan;
  /** The stamp of an earlier attempt found committed. */
  readonly committedAt: Stamp | null;
  /** This attempt's versionstamp, settled after its commit; null when it wrote nothing. */
  readonly versionstamp: { promise: Promise<Buffer> } | null;
}

export class FdbStore implements EventStore {
  readonly kind = 'fdb' as const;
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #apiVersion: number;
  readonly #maxTransactionBytes: number;
  readonly #prefixBytes: number;
  /** Transactions not yet settled: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(db: Db, layout: StoreLayout, codec: Codec, apiVersion: number, maxTransactionBytes: number) {
    this.#db = db;
    this.#layout = layout;
    this.#codec = codec;
    this.#apiVersion = apiVersion;
    this.#maxTransactionBytes = maxTransactionBytes;
    this.#prefixBytes = tupleString(layout.prefix).length;
  }

  /**
   * Loads the client, selects the API version, opens the database and checks
   * that the cluster answers. Rejects with FdbClientMissingError when the
   * FoundationDB client library is not installed, StoreUnavailableError when
   * the cluster cannot be used.
   */
  static async open(options: FdbStoreOptions): Promise<FdbStore> {
    if (!isMainThread) {
      throw new StoreUnavailableError('a FoundationDB store must be opened on the main thread: the client runs one network thread per process');
    }
    const layout = new StoreLayout(options.prefix);
    const apiVersion = options.apiVersion ?? DEFAULT_API_VERSION;
    const maxTransactionBytes = options.maxTransactionBytes ?? DEFAULT_MAX_TRANSACTION_BYTES;
    if (!Number.isSafeInteger(maxTransactionBytes) || maxTransactionBytes < 1 || maxTransactionBytes > FDB_MAX_TRANSACTION_BYTES) {
      throw new RangeError(`store.maxTransactionBytes must be an integer from 1 to ${FDB_MAX_TRANSACTION_BYTES}, got ${maxTransactionBytes}`);
    }
    const loaded = await loadFoundationDb();
    if (!loaded.ok) throw loaded.error;
    const fdb = loaded.fdb;
    try {
      // Once per process; the same version again is a no-op, another one throws.
      fdb.setAPIVersion(apiVersion);
    } catch (err) {
      throw new StoreUnavailableError(`cannot use FoundationDB API version ${apiVersion} (store.apiVersion): ${describeFdbError(err)}`, err);
    }
    const where = options.clusterFile === undefined ? "FoundationDB's default cluster file" : `cluster file ${options.clusterFile}`;
    let db: Db;
    try {
      db = fdb.open(options.clusterFile);
    } catch (err) {
      throw new StoreUnavailableError(`cannot open the FoundationDB database of ${where}: ${describeFdbError(err)}`, err);
    }
    try {
      // fdb.open() does not connect; without this a missing cluster would only show as a hanging first append.
      await db.doTransaction(async (tn) => {
        await tn.getReadVersion();
      }, { timeout: OPEN_TIMEOUT_MS });
    } catch (err) {
      db.close();
      throw new StoreUnavailableError(`cannot reach the FoundationDB cluster of ${where} within ${OPEN_TIMEOUT_MS} ms: ${describeFdbError(err)}`, err);
    }
    return new FdbStore(db, layout, options.codec ?? new Codec(), apiVersion, maxTransactionBytes);
  }

  // -------------------------------------------------------------------------
  // Writes

  append(items: readonly AppendItem[]): Promise<AppendResult> {
    return this.#write(async () => {
      if (items.length === 0) return { positions: [], duplicate: [] };
      const split = splitBatch(items, { maxTransactionBytes: this.#maxTransactionBytes, prefixBytes: this.#prefixBytes });
      if (!split.ok) {
        throw new StoreWriteError(
          `event ${items[split.index]!.eventId} needs about ${split.bytes} bytes in one transaction, over FoundationDB's ` +
            `${FDB_MAX_TRANSACTION_BYTES}-byte limit; nothing of the batch was written (lower limits.maxEventBytes)`,
        );
      }
      if (split.parts.length === 1) return this.#appendPart(items);
      // Parts commit one after another, so their versionstamps, and with them
      // the positions, increase in batch order. Each part is atomic; should a
      // later one fail, the earlier ones stay stored and the append rejects.
      const positions: Position[] = [];
      const duplicate: boolean[] = [];
      for (const part of split.parts) {
        const result = await this.#appendPart(items.slice(part.start, part.end));
        for (let i = 0; i < result.positions.length; i++) {
          positions.push(result.positions[i]!);
          duplicate.push(result.duplicate[i]!);
        }
      }
      return { positions, duplicate };
    });
  }

  /** One transaction: the batch's block, its indexes and audit block, idempotent across retries. */
  async #appendPart(items: readonly AppendItem[]): Promise<AppendResult> {
    const layout = this.#layout;
    const attempts: AppendPlan[] = [];
    const outcome = await this.#db.doTransaction(async (tn): Promise<PartOutcome> => {
      const retry = attempts.length > 0;
      // A first attempt reads only the ids the caller supplied (generated ones
      // are fresh); a retry reads them all, to find an earlier commit.
      const found = await this.#readIds(tn, retry ? allIds(items) : idsToCheck(items));
      if (retry) {
        for (const earlier of attempts) {
          const stamp = earlierCommit(earlier.result, items, found);
          if (stamp !== null) return { plan: earlier, committedAt: Buffer.from(stamp), versionstamp: null };
        }
      }
      const plan = layout.planAppend(PLACEHOLDER_STAMP, items, found);
      attempts.push(plan);
      if (plan.events === 0) return { plan, committedAt: null, versionstamp: null };
      for (const put of plan.puts) writePut(tn, put);
      addToCount(tn, layout, 'events', plan.events);
      if (plan.auditEntries > 0) addToCount(tn, layout, 'auditEntries', plan.auditEntries);
      // Returned inside an object: the promise settles only after the commit,
      // which doTransaction runs once the body's result has settled.
      return { plan, committedAt: null, versionstamp: tn.getVersionstamp() };
    }, TRANSACTION_OPTIONS);

    let stamp = outcome.committedAt;
    if (outcome.versionstamp !== null) {
      stamp = await outcome.versionstamp.promise;
      if (stamp.length !== STAMP_BYTES) throw new StoreWriteError(`FoundationDB returned a ${stamp.length}-byte versionstamp, expected ${STAMP_BYTES}`);
    }
    // The result's new positions are the id values, built with the placeholder: patching fixes both.
    if (stamp !== null) patchStamp(outcome.plan, stamp);
    return outcome.plan.result;
  }

  /** The stored positions of `ids`, read in the transaction (so they conflict with a concurrent writer of the same id). */
  async #readIds(tn: Tn, ids: readonly string[]): Promise<Map<string, Position>> {
    const found = new Map<string, Position>();
    if (ids.length === 0) return found;
    const values = await Promise.all(ids.map((id) => tn.get(this.#layout.idKey(id))));
    for (let i = 0; i < ids.length; i++) {
      const value = values[i];
      if (value !== undefined) found.set(ids[i]!, checkPosition(value, `the position of event ${ids[i]!}`));
    }
    return found;
  }

  writeProgress(write: ProgressWrite): Promise<void> {
    return this.#write(async () => {
      const layout = this.#layout;
      // Values over FoundationDB's limit are chunked, as blocks are: a dead letter holds an event of up to limits.maxEventBytes.
      const letters = (write.deadLetters ?? []).map((r) => ({ chunks: layout.deadLetterChunks(r.consumer, r.position), puts: layout.deadLetterPuts(this.#codec, r), record: r }));
      const removed = (write.removeDeadLetters ?? []).map((k) => layout.deadLetterChunks(k.consumer, k.position));
      const checkpoints = [...(write.checkpoints ?? new Map<string, Position>())].map(([name, position]) => ({
        key: layout.checkpointKey(name),
        value: checkPosition(position, `checkpoint ${name}`),
        name,
      }));
      if (letters.length + removed.length + checkpoints.length === 0) return;
      for (const { puts, record } of letters) {
        for (const { key, value } of puts) {
          const problem = limitProblem(key, value);
          if (problem) throw new StoreWriteError(`dead letter ${record.consumer}/${record.position.toString('hex')}: ${problem}`);
        }
      }
      for (const { key, value, name } of checkpoints) {
        const problem = limitProblem(key, value);
        if (problem) throw new StoreWriteError(`checkpoint ${name}: ${problem}`);
      }
      await this.#db.doTransaction(async (tn) => {
          // Which letters exist (their first chunk) decides the count, as on
          // lmdb: overwriting one adds nothing, removing a missing one takes
          // nothing. These reads conflict only with another writer of the same letters.
          const touched = [...new Map([...letters.map((l) => l.chunks.start), ...removed.map((r) => r.start)].map((k) => [k.toString('hex'), k])).values()];
          const values = await Promise.all(touched.map((key) => tn.get(key)));
          const present = new Set<string>();
          touched.forEach((key, i) => {
            if (values[i] !== undefined) present.add(key.toString('hex'));
          });
          let delta = 0;
          for (const { chunks, puts } of letters) {
            const hex = chunks.start.toString('hex');
            if (!present.has(hex)) {
              delta++;
              present.add(hex);
            }
            // A letter replaced by a shorter one must not keep the old one's last chunks.
            tn.clearRange(chunks.start, chunks.end);
            for (const { key, value } of puts) tn.set(key, value);
          }
          for (const chunks of removed) {
            if (present.delete(chunks.start.toString('hex'))) delta--;
            tn.clearRange(chunks.start, chunks.end);
          }
          for (const { key, value } of checkpoints) tn.set(key, value);
          if (delta !== 0) addToCount(tn, layout, 'deadLetters', delta);
        }, TRANSACTION_OPTIONS);
    });
  }

  /**
   * Removes every key under this store's prefix: the log, its indexes, dead
   * letters, checkpoints and counts. For tests and tooling; the bus never
   * calls it. One range clear, which FoundationDB applies whatever its size.
   */
  async clearAll(): Promise<void> {
    await this.#write(async () => {
      const all = this.#layout.all();
      await this.#db.doTransaction(async (tn) => tn.clearRange(all.start, all.end), TRANSACTION_OPTIONS);
    });
  }

  /** Runs a write, and reports any failure as StoreWriteError (its FoundationDB error as the cause). */
  #write<T>(body: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreWriteError('the store is closed'));
    return this.#track(
      (async () => {
        try {
          return await body();
        } catch (err) {
          if (err instanceof StoreWriteError) throw err;
          throw new StoreWriteError(describeFdbError(err), err);
        }
      })(),
    );
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    const forget = () => this.#inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  // -------------------------------------------------------------------------
  // Reads

  async lookup(eventId: string): Promise<Position | null> {
    const position = await this.#read((tn) => tn.get(this.#layout.idKey(eventId)));
    return position === undefined ? null : checkPosition(position, `the position of event ${eventId}`);
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
            const block = decodeBlockOrReport(whole, page);
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
          const found = await Promise.all(window.map(([key, value]) => readEventsOf(tn, layout, layout.stampOfIndexKey(key), decodeIndexList(value))));
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

  async readCheckpoints(): Promise<Map<string, Position>> {
    const range = this.#layout.checkpointRange();
    const entries = await this.#read((tn) => tn.getRangeAll(range.start, range.end));
    const checkpoints = new Map<string, Position>();
    for (const [key, value] of entries) {
      const name = this.#layout.decodeCheckpointKey(key);
      checkpoints.set(name, checkPosition(value, `checkpoint ${name}`));
    }
    return checkpoints;
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    // The network thread stays: it is the process's, and cannot be restarted.
    this.#db.close();
  }

  // -------------------------------------------------------------------------
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

  /**
   * Runs one short read-only transaction with snapshot reads (a read-only
   * transaction cannot conflict; snapshot reads skip conflict tracking too),
   * reporting failures as StoreReadError and corruption as itself. The body
   * may run more than once: doTransaction retries retryable errors.
   */
  async #read<T>(body: (tn: Tn) => Promise<T>): Promise<T> {
    this.#checkOpen();
    try {
      return await this.#track(this.#db.doTransaction((tn) => body(tn.snapshot()), TRANSACTION_OPTIONS));
    } catch (err) {
      if (err instanceof StoreCorruptError || err instanceof StoreReadError) throw err;
      throw new StoreReadError(describeFdbError(err), err);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreReadError('the store is closed');
  }
}

// ---------------------------------------------------------------------------
// Transaction helpers

/** A versionstamped key or value ends with the stamp's offset, uint32 little-endian (API version 520 and later). */
function withStampOffset(bytes: Buffer, offset: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length + 4);
  bytes.copy(out, 0);
  out.writeUInt32LE(offset, bytes.length);
  return out;
}

/**
 * One write of a plan. The layout's keys are built bytes, not tuples, so the
 * raw versionstamp mutations take them with the offset the Put names
 * (`setVersionstampedKey` would need the tuple key encoder and re-pack every
 * key). The plan's own buffers stay untouched: the result is patched with the
 * real stamp after commit.
 */
function writePut(tn: Tn, put: Put): void {
  const problem = limitProblem(put.key, put.value);
  if (problem) throw new StoreWriteError(problem);
  switch (put.stampIn) {
    case 'key':
      tn.setVersionstampedKeyRaw(withStampOffset(put.key, put.stampOffset), put.value);
      return;
    case 'value':
      tn.setVersionstampedValueRaw(put.key, withStampOffset(put.value, put.stampOffset));
      return;
    case 'none':
      tn.set(put.key, put.value);
  }
}

/** Counts are int64 little-endian, FoundationDB's atomic add: no read, so no conflict between writers. */
function addToCount(tn: Tn, layout: StoreLayout, name: CountName, delta: number): void {
  tn.add(layout.countKey(name), encodeCount(delta));
}

/**
 * Up to `limit` entries of `range` and at most about PAGE_LIMITS.bytes of values,
 * streamed so that a page stops early; `more` is true unless the range was
 * read to its end.
 */
async function readPage(tn: Tn, range: KeyRange, limit: number): Promise<{ entries: [Buffer, Buffer][]; more: boolean }> {
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
async function scanBlocks(
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
async function readBlock(tn: Tn, layout: StoreLayout, stamp: Stamp): Promise<Buffer> {
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
async function readEventsOf(tn: Tn, layout: StoreLayout, stamp: Stamp, indices: readonly number[]): Promise<{ events: SpanEvent[]; bytes: number }> {
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
