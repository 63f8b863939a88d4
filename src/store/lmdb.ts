/**
 * The embedded backend: lmdb-js over the shared layout (`layout/`). This file
 * opens the store and writes to it; reads are in lmdb-reads.ts. These two are
 * the only files that import `lmdb`.
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
 * There is no retry that could mistake another writer's commit for its own,
 * so no append nonce (layout/keys.ts): an append is one local transaction
 * whose outcome is always known, and it writes the same data keys as on
 * FoundationDB.
 */
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { open, type RootDatabase } from 'lmdb';
import { Codec } from '../codec.js';
import { StoreCorruptError, StoreReadError, StoreUnavailableError, StoreWriteError } from '../errors.js';
import { checkRequest, groupsOfRound, planRound, roundWrites, type RoundPlan } from './coordination.js';
import { LmdbReader } from './lmdb-reads.js';
import { FreshResult, idsToCheck, patchStamp, type AppendPlan } from './layout/append-plan.js';
import { decodeCount, encodeCount, type CountName } from './layout/counts.js';
import {
  decodeGroupRecord,
  decodeLease,
  decodeMembership,
  decodePartitionCount,
  type GroupRecord,
  type Membership,
} from './layout/groups.js';
import { StoreLayout, type KeyRange } from './layout/keys.js';
import {
  PLACEHOLDER_STAMP,
  STAMP_BYTES,
  checkPosition,
  decodeCounter,
  encodeCounter,
  positionOf,
  stampFromCounter,
  type Stamp,
} from './layout/positions.js';
import { FenceCheck, checkProgress } from './progress.js';
import { ReadingStore } from './reading-store.js';
import {
  POSITION_BYTES,
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

export interface LmdbStoreOptions {
  /** A folder: lmdb keeps `data.mdb` and `lock.mdb` in it. */
  readonly path: string;
  readonly prefix: string;
  /** lmdb's initial map size in bytes (lmdb-js grows the map as the data grows). */
  readonly mapSize?: number;
  /** The shared codec, for dead letter records; a new one if not given. */
  readonly codec?: Codec;
  /** How often waitForAppend() looks at the commit counter, in ms (another process may append). Default 25. */
  readonly pollMs?: number;
}

const DEFAULT_POLL_MS = 25;

/** lmdb copies each key as it is written: the id index is written from one reused key buffer, not a buffer per event. */
const IDS_APART = { idsApart: true } as const;
/** The same, for a batch with no event_id to check: no position built per event. */
const FRESH = { idsApart: true, fresh: true } as const;

type Db = RootDatabase<Buffer, Buffer>;

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class LmdbStore extends ReadingStore implements EventStore {
  readonly kind = 'lmdb' as const;
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  /** Every read of the store contract goes to it (ReadingStore). */
  protected readonly reader: LmdbReader;
  readonly #pollMs: number;
  /** waitForAppend() waiters: this store's own appends wake them at once, other processes' at the next poll. */
  readonly #waiters = new Set<() => void>();
  /** Writes not yet settled: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** The value of every id key of a fresh batch, rewritten per event (#putIds). */
  readonly #idValue = Buffer.allocUnsafeSlow(POSITION_BYTES);
  #closed = false;

  private constructor(db: Db, layout: StoreLayout, codec: Codec, dataFile: string, pollMs: number) {
    super();
    this.#db = db;
    this.#pollMs = pollMs;
    this.#layout = layout;
    this.#codec = codec;
    this.reader = new LmdbReader(db, layout, codec, dataFile, () => this.#checkOpen());
  }

  static async open(options: LmdbStoreOptions): Promise<LmdbStore> {
    const layout = new StoreLayout(options.prefix);
    const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    if (!(pollMs > 0) || !Number.isFinite(pollMs)) throw new RangeError(`pollMs must be a positive number of milliseconds, got ${pollMs}`);
    let db: Db;
    try {
      db = open<Buffer, Buffer>({
        path: options.path,
        // A folder even when its name has a dot (lmdb-js guesses "file" from an extension).
        noSubdir: false,
        // Keys and values are bytes built by layout/: no encoding on the main thread.
        encoding: 'binary',
        keyEncoding: 'binary',
        cache: false,
        ...(options.mapSize === undefined ? {} : { mapSize: options.mapSize }),
      });
    } catch (err) {
      throw new StoreUnavailableError(`cannot open the lmdb store at ${options.path}: ${describe(err)}`, err);
    }
    return new LmdbStore(db, layout, options.codec ?? new Codec(), join(options.path, 'data.mdb'), pollMs);
  }

  // -------------------------------------------------------------------------
  // Writes

  append(items: readonly AppendItem[]): Promise<AppendResult> {
    return this.#write(async () => {
      if (items.length === 0) return { positions: [], duplicate: [] };
      const toCheck = idsToCheck(items);
      // Built before the transaction with a placeholder stamp: the main thread
      // does this while lmdb's write thread may still be committing the
      // previous batch, and the write lock is held only for the puts. With no
      // event_id to check, no position is built (a FreshResult).
      const draft = this.#layout.planAppend(PLACEHOLDER_STAMP, items, undefined, toCheck.length === 0 ? FRESH : IDS_APART);
      let headBefore: Position | null = null;
      const plan = await this.#db.childTransaction((): AppendPlan => {
        const db = this.#db;
        const layout = this.#layout;
        this.#observeCommit();
        const stored = new Map<string, Position>();
        for (const id of toCheck) {
          const position = db.getBinary(layout.idKey(id));
          const found = position === undefined ? this.reader.findGenerated(id) : checkPosition(position, `the position of event ${id}`);
          if (found !== null) stored.set(id, found);
        }
        const before = decodeCounter(db.getBinary(layout.counterKey));
        headBefore = headOf(before);
        const counter = before + 1n;
        const stamp = stampFromCounter(counter);
        let plan = draft;
        if (stored.size > 0) plan = layout.planAppend(stamp, items, stored, IDS_APART);
        else patchStamp(plan, stamp);
        if (plan.events === 0) return plan; // all duplicates: nothing to write, the counter stays
        db.putSync(layout.counterKey, encodeCounter(counter));
        for (const put of plan.puts) db.putSync(put.key, put.value);
        this.#putIds(plan.ids!, stamp);
        this.#addToCount('events', plan.events);
        if (plan.auditEntries > 0) this.#addToCount('auditEntries', plan.auditEntries);
        return plan;
      });
      if (plan.events > 0) for (const wake of [...this.#waiters]) wake();
      if (plan.result instanceof FreshResult) {
        plan.result.headBefore = headBefore;
        return plan.result;
      }
      return { positions: plan.result.positions, duplicate: plan.result.duplicate, headBefore };
    });
  }

  /**
   * The id index of a batch, inside its transaction: lmdb copies each key and
   * value as it is written, so one key buffer (scratchIdKey) and, for a fresh
   * batch, one value buffer serve every event.
   */
  #putIds(ids: NonNullable<AppendPlan['ids']>, stamp: Stamp): void {
    const db = this.#db;
    const layout = this.#layout;
    const { items, positions, indexed } = ids;
    const value = this.#idValue;
    if (positions === null) stamp.copy(value, 0, 0, STAMP_BYTES);
    for (let k = 0; k < indexed.length; k++) {
      const i = indexed[k]!;
      if (positions === null) {
        value[STAMP_BYTES] = i >>> 8;
        value[STAMP_BYTES + 1] = i & 0xff;
      }
      db.putSync(layout.scratchIdKey(items[i]!.eventId), positions === null ? value : positions[i]!);
    }
  }

  writeProgress(write: ProgressWrite): Promise<ProgressResult> {
    try {
      checkProgress(write);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#write(async () => {
      const layout = this.#layout;
      const encoded = (write.deadLetters ?? []).map((r) => ({
        record: r,
        chunks: layout.deadLetterChunks(r.consumer, r.position),
        puts: layout.deadLetterPuts(this.#codec, r),
      }));
      const removed = (write.removeDeadLetters ?? []).map((k) => layout.deadLetterChunks(k.consumer, k.position));
      const cursors = (write.cursors ?? []).map((c) => ({
        cursor: c,
        key: layout.cursorKey(c.group, c.partition),
        value: checkPosition(c.position, `the cursor of ${c.group}/${c.partition}`),
      }));
      if (encoded.length + removed.length + cursors.length === 0) return { lost: [] };
      let fence: FenceCheck | undefined;
      await this.#db.childTransaction(() => {
        const db = this.#db;
        this.#observeCommit();
        const lost = (fence = new FenceCheck(write.instance ?? '', (group, partition) => {
          const value = db.getBinary(layout.leaseKey(group, partition));
          return value === undefined ? null : decodeLease(value, `${group}/${partition}`);
        }));
        // The count stays exact: overwriting a dead letter adds nothing, removing a missing one takes nothing.
        // A dead letter is there when its first chunk is; replacing or removing it clears every chunk.
        let delta = 0;
        const clear = (chunks: KeyRange): boolean => {
          let present = false;
          for (const key of [...db.getKeys({ start: chunks.start, end: chunks.end })]) {
            if (key.equals(chunks.start)) present = true;
            db.removeSync(key);
          }
          return present;
        };
        for (const { record, chunks, puts } of encoded) {
          if (record.fence !== undefined && !lost.holds(record.consumer, record.fence.partition, record.fence.epoch)) continue;
          if (!clear(chunks)) delta++;
          for (const { key, value } of puts) db.putSync(key, value);
        }
        for (const chunks of removed) if (clear(chunks)) delta--;
        for (const { cursor, key, value } of cursors) {
          if (!lost.holds(cursor.group, cursor.partition, cursor.epoch)) continue;
          // Never backwards: a lower position leaves the stored one.
          const stored = db.getBinary(key);
          if (stored === undefined || comparePositions(stored, value) < 0) db.putSync(key, value);
        }
        if (delta !== 0) this.#addToCount('deadLetters', delta);
      });
      return { lost: fence?.lost() ?? [] };
    });
  }

  coordinate(request: CoordinateRequest): Promise<CoordinateResult> {
    try {
      checkRequest(request);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#write(async () => {
      let plan: RoundPlan | undefined;
      await this.#db.childTransaction(() => {
        const db = this.#db;
        const layout = this.#layout;
        this.#observeCommit();
        const partitions = decodePartitionCount(db.getBinary(layout.partitionsKey));
        const counter = decodeCounter(db.getBinary(layout.counterKey));
        const checkpoints = new Map<string, Position>();
        if (partitions === null) {
          const range = layout.checkpointRange();
          for (const { key, value } of db.getRange({ start: range.start, end: range.end })) {
            const name = layout.decodeCheckpointKey(key);
            checkpoints.set(name, Buffer.from(checkPosition(value, `checkpoint ${name}`)));
          }
        }
        const members = new Map<string, Membership>();
        const memberRange = layout.memberRange();
        for (const { key, value } of db.getRange({ start: memberRange.start, end: memberRange.end })) {
          const id = layout.decodeMemberKey(key);
          members.set(id, decodeMembership(value, id));
        }
        const groups = new Map<string, GroupRecord>();
        const leases: LeaseRecord[] = [];
        const cursors: CursorRecord[] = [];
        for (const group of groupsOfRound(request, checkpoints.keys())) {
          const record = db.getBinary(layout.groupKey(group));
          if (record !== undefined) groups.set(group, decodeGroupRecord(record, group));
          const leaseRange = layout.leaseRange(group);
          for (const { key, value } of db.getRange({ start: leaseRange.start, end: leaseRange.end })) {
            const at = layout.decodeLeaseKey(key);
            leases.push({ ...at, ...decodeLease(value, `${at.group}/${at.partition}`) });
          }
          const cursorRange = layout.cursorRange(group);
          for (const { key, value } of db.getRange({ start: cursorRange.start, end: cursorRange.end })) {
            const at = layout.decodeCursorKey(key);
            cursors.push({ ...at, position: Buffer.from(checkPosition(value, `the cursor of ${at.group}/${at.partition}`)) });
          }
        }
        plan = planRound(
          { partitions, members, groups, leases, cursors, head: headOf(counter), checkpoints, holdsEvents: counter > 0n },
          request,
        );
        const writes = roundWrites(layout, plan.changes);
        // The plan's cursors are already the greater of stored and new.
        for (const { key, value } of [...writes.sets, ...writes.maxes]) db.putSync(key, value);
        for (const key of writes.clears) db.removeSync(key);
      });
      return plan!.result;
    });
  }

  async head(): Promise<Position | null> {
    this.#checkOpen();
    return headOf(this.#counter());
  }

  /**
   * Polls the counter: lmdb has no change notification across processes. A
   * read outside a transaction sees the latest commit once lmdb-js renews its
   * read transaction, which it does at the next event turn.
   */
  waitForAppend(after: Position | null, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err?: unknown) => {
        if (timer !== undefined) clearTimeout(timer);
        this.#waiters.delete(wake);
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = () => finish();
      const wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        look();
      };
      const look = () => {
        timer = undefined;
        if (signal.aborted) return finish();
        let head: Position | null;
        try {
          this.#checkOpen();
          head = headOf(this.#counter());
        } catch (err) {
          return finish(err);
        }
        if (head !== null && (after === null || comparePositions(head, after) > 0)) return finish();
        timer = setTimeout(look, this.#pollMs);
        timer.unref();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(wake);
      look();
    });
  }

  #counter(): bigint {
    try {
      return decodeCounter(this.#db.getBinary(this.#layout.counterKey));
    } catch (err) {
      if (err instanceof StoreReadError || err instanceof StoreCorruptError) throw err;
      throw new StoreReadError(describe(err), err);
    }
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    await this.#db.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreReadError('the store is closed');
  }
}

/** The head after `counter` commits: the end of the last one, null before the first. */
function headOf(counter: bigint): Position | null {
  return counter === 0n ? null : positionOf(stampFromCounter(counter), 0xffff);
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
  const cause: unknown = await Promise.race([
    commitError.then(
      () => undefined,
      (e: unknown) => e,
    ),
    nextTurn(undefined),
  ]);
  return cause ?? err;
}
