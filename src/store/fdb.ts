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
import { isMainThread } from 'node:worker_threads';
import { Codec } from '../codec.js';
import { StoreCorruptError, StoreReadError, StoreUnavailableError, StoreWriteError } from '../errors.js';
import { FdbAppender, addToCount } from './fdb-append.js';
import { limitProblem } from './fdb-batches.js';
import { TRANSACTION_OPTIONS, describeFdbError, loadFoundationDb, type Db, type Tn } from './fdb-client.js';
import { FdbReader } from './fdb-reads.js';
import { StoreLayout } from './layout/keys.js';
import { checkPosition } from './layout/positions.js';
import { DEFAULT_MAX_TRANSACTION_BYTES, FDB_MAX_TRANSACTION_BYTES } from './limits.js';
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

const DEFAULT_API_VERSION = 720;
/** How long open() waits to reach the cluster before it reports it unavailable. */
const OPEN_TIMEOUT_MS = 10_000;

export class FdbStore implements EventStore {
  readonly kind = 'fdb' as const;
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #appender: FdbAppender;
  readonly #reader: FdbReader;
  /** Transactions not yet settled: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(db: Db, layout: StoreLayout, codec: Codec, apiVersion: number, maxTransactionBytes: number) {
    this.#db = db;
    this.#layout = layout;
    this.#codec = codec;
    this.#appender = new FdbAppender(db, layout, maxTransactionBytes);
    this.#reader = new FdbReader(
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

  writeProgress(write: ProgressWrite): Promise<void> {
    return this.#write(async () => {
      const layout = this.#layout;
      // Values over FoundationDB's limit are chunked, as blocks are: a dead letter holds an event of up to limits.maxEventBytes.
      const letters = (write.deadLetters ?? []).map((r) => ({
        chunks: layout.deadLetterChunks(r.consumer, r.position),
        puts: layout.deadLetterPuts(this.#codec, r),
        record: r,
      }));
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
        const touched = [
          ...new Map([...letters.map((l) => l.chunks.start), ...removed.map((r) => r.start)].map((k) => [k.toString('hex'), k])).values(),
        ];
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
  // Reads (fdb-reads.ts)

  lookup(eventId: string): Promise<Position | null> {
    return this.#reader.lookup(eventId);
  }

  readEvents(query?: ReadEventsQuery): AsyncGenerator<StoredEvent> {
    return this.#reader.readEvents(query);
  }

  readAudit(query?: AuditQuery): AsyncGenerator<StoredAuditEntry> {
    return this.#reader.readAudit(query);
  }

  readDeadLetters(query?: DeadLetterQuery): AsyncGenerator<DeadLetterRecord> {
    return this.#reader.readDeadLetters(query);
  }

  readCheckpoints(): Promise<Map<string, Position>> {
    return this.#reader.readCheckpoints();
  }

  stats(): Promise<StoreStats> {
    return this.#reader.stats();
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
