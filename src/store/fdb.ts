/**
 * The shared backend: FoundationDB through node-foundationdb (npm
 * `foundationdb`), over the same layout and bytes as lmdb (`layout/`), so
 * many service instances can append to one log. This file is the store's
 * facade: opening, progress writes, closing; appends are in fdb-append.ts,
 * reads in fdb-reads.ts, and the client is loaded by fdb-client.ts with
 * `await import()` when a store is opened, so a bus that does not select
 * 'fdb' never loads the native client library (libfdb_c). The other files
 * import the package's types only.
 *
 * Threads. Every FoundationDB call is made on the main thread: the client
 * library runs one network thread per process, which node-foundationdb starts
 * on the first `fdb.open()` and which cannot be started again; a worker that
 * loaded the native module would try to set the network up a second time, and
 * its futures would resolve on that worker's event loop. Workers get event
 * bytes, never a store.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread } from 'node:worker_threads';
import { Codec } from '../codec.js';
import { StoreCorruptError, StoreReadError, StoreUnavailableError, StoreWriteError } from '../errors.js';
import { FdbAppender, addToCount } from './fdb-append.js';
import { limitProblem } from './fdb-batches.js';
import { TRANSACTION_OPTIONS, describeFdbError, loadFoundationDb, type Db, type Tn } from './fdb-client.js';
import { FdbReader } from './fdb-reads.js';
import { checkRequest, groupsOfRound, planRound, roundWrites } from './coordination.js';
import {
  decodeGroupRecord,
  decodeLease,
  decodeMembership,
  decodePartitionCount,
  groupPartitionId,
  type GroupRecord,
  type LeaseValue,
  type Membership,
} from './layout/groups.js';
import { StoreLayout } from './layout/keys.js';
import { checkPosition } from './layout/positions.js';
import { FenceCheck, checkProgress, fencedLeases } from './progress.js';
import { DEFAULT_MAX_TRANSACTION_BYTES, FDB_MAX_TRANSACTION_BYTES } from './limits.js';
import { ReadingStore } from './reading-store.js';
import {
  comparePositions,
  type AppendItem,
  type AppendResult,
  type CoordinateRequest,
  type CoordinateResult,
  type CursorRecord,
  type EventStore,
  type LeaseRecord,
  type Position,
  type ProgressResult,
  type ProgressWrite,
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

const DEFAULT_API_VERSION = 720;
/** How long waitForAppend() waits before it sets a watch again after one failed. */
const WATCH_RETRY_MS = 100;
/** How long open() waits to reach the cluster before it reports it unavailable. */
const OPEN_TIMEOUT_MS = 10_000;

export class FdbStore extends ReadingStore implements EventStore {
  readonly kind = 'fdb' as const;
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #appender: FdbAppender;
  /** Every read of the store contract goes to it (ReadingStore). */
  protected readonly reader: FdbReader;
  /** Transactions not yet settled: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(db: Db, layout: StoreLayout, codec: Codec, apiVersion: number, maxTransactionBytes: number) {
    super();
    this.#db = db;
    this.#layout = layout;
    this.#codec = codec;
    this.#appender = new FdbAppender(db, layout, codec, maxTransactionBytes);
    this.reader = new FdbReader(
      layout,
      codec,
      apiVersion,
      (body) => this.#read(body),
      () => this.#checkOpen(),
    );
  }

  /**
   * Loads the client, selects the API version, opens the database and checks
   * that the cluster answers. Rejects with FdbClientMissingError when the
   * FoundationDB client library is not installed, StoreUnavailableError when
   * the cluster cannot be used.
   */
  static async open(options: FdbStoreOptions): Promise<FdbStore> {
    if (!isMainThread) {
      throw new StoreUnavailableError(
        'a FoundationDB store must be opened on the main thread: the client runs one network thread per process',
      );
    }
    const layout = new StoreLayout(options.prefix);
    const apiVersion = options.apiVersion ?? DEFAULT_API_VERSION;
    const maxTransactionBytes = options.maxTransactionBytes ?? DEFAULT_MAX_TRANSACTION_BYTES;
    if (!Number.isSafeInteger(maxTransactionBytes) || maxTransactionBytes < 1 || maxTransactionBytes > FDB_MAX_TRANSACTION_BYTES) {
      throw new RangeError(
        `store.maxTransactionBytes must be an integer from 1 to ${FDB_MAX_TRANSACTION_BYTES}, got ${maxTransactionBytes}`,
      );
    }
    const loaded = await loadFoundationDb();
    if (!loaded.ok) throw loaded.error;
    const fdb = loaded.fdb;
    try {
      // Once per process; the same version again is a no-op, another one throws.
      fdb.setAPIVersion(apiVersion);
    } catch (err) {
      throw new StoreUnavailableError(
        `cannot use FoundationDB API version ${apiVersion} (store.apiVersion): ${describeFdbError(err)}`,
        err,
      );
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
      await db.doTransaction(
        async (tn) => {
          await tn.getReadVersion();
        },
        { timeout: OPEN_TIMEOUT_MS },
      );
    } catch (err) {
      db.close();
      throw new StoreUnavailableError(
        `cannot reach the FoundationDB cluster of ${where} within ${OPEN_TIMEOUT_MS} ms: ${describeFdbError(err)}`,
        err,
      );
    }
    return new FdbStore(db, layout, options.codec ?? new Codec(), apiVersion, maxTransactionBytes);
  }

  // -------------------------------------------------------------------------
  // Writes

  append(items: readonly AppendItem[]): Promise<AppendResult> {
    return this.#write(() => this.#appender.append(items));
  }

  writeProgress(write: ProgressWrite): Promise<ProgressResult> {
    try {
      checkProgress(write);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#write(async () => {
      const layout = this.#layout;
      // Values over FoundationDB's limit are chunked, as blocks are: a dead letter holds an event of up to limits.maxEventBytes.
      const letters = (write.deadLetters ?? []).map((r) => ({
        chunks: layout.deadLetterChunks(r.consumer, r.position),
        puts: layout.deadLetterPuts(this.#codec, r),
        record: r,
      }));
      const removed = (write.removeDeadLetters ?? []).map((k) => layout.deadLetterChunks(k.consumer, k.position));
      const cursors = (write.cursors ?? []).map((c) => ({
        cursor: c,
        key: layout.cursorKey(c.group, c.partition),
        value: checkPosition(c.position, `the cursor of ${c.group}/${c.partition}`),
      }));
      if (letters.length + removed.length + cursors.length === 0) return { lost: [] };
      for (const { puts, record } of letters) {
        for (const { key, value } of puts) {
          const problem = limitProblem(key, value);
          if (problem) throw new StoreWriteError(`dead letter ${record.consumer}/${record.position.toString('hex')}: ${problem}`);
        }
      }
      for (const { key, value, cursor } of cursors) {
        const problem = limitProblem(key, value);
        if (problem) throw new StoreWriteError(`the cursor of ${cursor.group}/${cursor.partition}: ${problem}`);
      }
      const fenced = fencedLeases(write);
      return this.#db.doTransaction(async (tn): Promise<ProgressResult> => {
        // The fence: the leases are read in the transaction (not as a snapshot),
        // so a takeover that commits first makes this write conflict and run
        // again, and then find the lease lost.
        const leaseValues = await Promise.all(fenced.map((l) => tn.get(layout.leaseKey(l.group, l.partition))));
        const leases = new Map<string, LeaseValue | null>();
        fenced.forEach((l, i) => {
          const value = leaseValues[i];
          leases.set(groupPartitionId(l.group, l.partition), value === undefined ? null : decodeLease(value, `${l.group}/${l.partition}`));
        });
        const fence = new FenceCheck(write.instance ?? '', (group, partition) => leases.get(groupPartitionId(group, partition)) ?? null);
        const kept = letters.filter(
          ({ record }) => record.fence === undefined || fence.holds(record.consumer, record.fence.partition, record.fence.epoch),
        );
        // Which letters exist (their first chunk) decides the count, as on
        // lmdb: overwriting one adds nothing, removing a missing one takes
        // nothing. These reads conflict only with another writer of the same letters.
        const touched = [
          ...new Map([...kept.map((l) => l.chunks.start), ...removed.map((r) => r.start)].map((k) => [k.toString('hex'), k])).values(),
        ];
        const values = await Promise.all(touched.map((key) => tn.get(key)));
        const present = new Set<string>();
        touched.forEach((key, i) => {
          if (values[i] !== undefined) present.add(key.toString('hex'));
        });
        let delta = 0;
        for (const { chunks, puts } of kept) {
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
        // BYTE_MAX keeps the greater position (positions compare bytewise): never backwards, and no read of the cursor.
        for (const { cursor, key, value } of cursors) if (fence.holds(cursor.group, cursor.partition, cursor.epoch)) tn.byteMax(key, value);
        if (delta !== 0) addToCount(tn, layout, 'deadLetters', delta);
        return { lost: fence.lost() };
      }, TRANSACTION_OPTIONS);
    });
  }

  /**
   * One round in one transaction. The partition count, the group records and
   * the leases are read normally, so two instances deciding on the same
   * leases conflict and one runs again on what the other wrote; memberships,
   * cursors and the head are snapshot reads, so a round does not conflict
   * with appends, progress writes or another instance's membership renewal
   * (a membership a moment old only delays a rebalance by one round; cursors
   * are written with BYTE_MAX, so a stale read never moves one backwards).
   */
  coordinate(request: CoordinateRequest): Promise<CoordinateResult> {
    try {
      checkRequest(request);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#write(async () => {
      const layout = this.#layout;
      return this.#db.doTransaction(async (tn): Promise<CoordinateResult> => {
        const snap = tn.snapshot();
        const memberRange = layout.memberRange();
        const [partitionValue, memberEntries, headValue] = await Promise.all([
          tn.get(layout.partitionsKey),
          snap.getRangeAll(memberRange.start, memberRange.end),
          snap.get(layout.headKey),
        ]);
        const partitions = decodePartitionCount(partitionValue);
        const checkpoints = new Map<string, Position>();
        let holdsEvents = false;
        if (partitions === null) {
          const cps = layout.checkpointRange();
          const blocks = layout.blockRange();
          const [cpEntries, firstBlock] = await Promise.all([
            tn.getRangeAll(cps.start, cps.end),
            snap.getRangeAll(blocks.start, blocks.end, { limit: 1 }),
          ]);
          for (const [key, value] of cpEntries) {
            const name = layout.decodeCheckpointKey(key);
            checkpoints.set(name, Buffer.from(checkPosition(value, `checkpoint ${name}`)));
          }
          holdsEvents = firstBlock.length > 0;
        }
        const members = new Map<string, Membership>();
        for (const [key, value] of memberEntries) {
          const id = layout.decodeMemberKey(key);
          members.set(id, decodeMembership(value, id));
        }
        const names = groupsOfRound(request, checkpoints.keys());
        const read = await Promise.all(
          names.map(async (group) => {
            const leaseRange = layout.leaseRange(group);
            const cursorRange = layout.cursorRange(group);
            const [record, leaseEntries, cursorEntries] = await Promise.all([
              tn.get(layout.groupKey(group)),
              tn.getRangeAll(leaseRange.start, leaseRange.end),
              snap.getRangeAll(cursorRange.start, cursorRange.end),
            ]);
            return { group, record, leaseEntries, cursorEntries };
          }),
        );
        const groups = new Map<string, GroupRecord>();
        const leases: LeaseRecord[] = [];
        const cursors: CursorRecord[] = [];
        for (const { group, record, leaseEntries, cursorEntries } of read) {
          if (record !== undefined) groups.set(group, decodeGroupRecord(record, group));
          for (const [key, value] of leaseEntries) {
            const at = layout.decodeLeaseKey(key);
            leases.push({ ...at, ...decodeLease(value, `${at.group}/${at.partition}`) });
          }
          for (const [key, value] of cursorEntries) {
            const at = layout.decodeCursorKey(key);
            cursors.push({ ...at, position: Buffer.from(checkPosition(value, `the cursor of ${at.group}/${at.partition}`)) });
          }
        }
        const head = headValue === undefined ? null : checkPosition(Buffer.from(headValue), 'the head');
        const plan = planRound({ partitions, members, groups, leases, cursors, head, checkpoints, holdsEvents }, request);
        const writes = roundWrites(layout, plan.changes);
        for (const { key, value } of writes.sets) {
          const problem = limitProblem(key, value);
          if (problem) throw new StoreWriteError(`coordinate: ${problem}`);
          tn.set(key, value);
        }
        for (const { key, value } of writes.maxes) tn.byteMax(key, value);
        // A member read lapsed (a snapshot read) may have renewed since: reading its key for real makes that a conflict.
        for (const id of plan.changes.deleteMembers) tn.addReadConflictKey(layout.memberKey(id));
        for (const key of writes.clears) tn.clear(key);
        return plan.result;
      }, TRANSACTION_OPTIONS);
    });
  }

  head(): Promise<Position | null> {
    return this.reader.head();
  }

  /**
   * A watch on the head key, which every append transaction writes. The head
   * is read and the watch set in one transaction (so no append can fall
   * between them unseen); a watch may fire spuriously or miss an intermediate
   * value, so the head is read again each time it fires.
   */
  async waitForAppend(after: Position | null, signal: AbortSignal): Promise<void> {
    const layout = this.#layout;
    const past = (value: Buffer | undefined) => value !== undefined && (after === null || comparePositions(value, after) > 0);
    while (!signal.aborted) {
      this.#checkOpen();
      let watch: { promise: Promise<boolean>; cancel(): void; value?: Buffer | undefined };
      try {
        watch = await this.#track(
          this.#db.doTransaction(async (tn) => {
            const value = await tn.snapshot().get(layout.headKey);
            if (past(value)) return { promise: Promise.resolve(true), cancel: () => {}, value };
            const armed = tn.watch(layout.headKey);
            return { promise: armed.promise, cancel: () => armed.cancel(), value };
          }, TRANSACTION_OPTIONS),
        );
      } catch (err) {
        throw new StoreReadError(describeFdbError(err), err);
      }
      if (past(watch.value)) return;
      // Armed now: an append that committed between the read and the arming is seen by reading once more.
      let again: Buffer | undefined;
      try {
        again = (await this.head()) ?? undefined;
      } catch (err) {
        watch.cancel();
        throw err;
      }
      if (past(again)) {
        watch.cancel();
        return;
      }
      const onAbort = () => watch.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      // Aborted while the watch was being set: its event is gone.
      if (signal.aborted) watch.cancel();
      let failed = false;
      try {
        await watch.promise;
      } catch (err) {
        // A watch fails when too many are outstanding or the store closes: look again, unless closed.
        if (this.#closed) throw new StoreReadError('the store is closed', err);
        failed = true;
      } finally {
        signal.removeEventListener('abort', onAbort);
        watch.cancel();
      }
      // Not at once after a failed watch: the next one would likely fail the same way.
      if (failed && !signal.aborted) await sleep(WATCH_RETRY_MS);
    }
  }

  /**
   * Removes every key under this store's prefix: the log, its indexes, dead
   * letters, cursors, leases, memberships and counts. For tests and tooling; the bus never
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    // Best effort: a nonce left behind is a few bytes that nothing reads again.
    await this.#appender.clearStaleNonces().catch(() => {});
    // The network thread stays: it is the process's, and cannot be restarted.
    this.#db.close();
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
