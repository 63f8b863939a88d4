/**
 * What `createBus` accepts, written out for readers and editors: every option
 * with its meaning and default. The zod schema in options.ts is the one
 * validator and the source of the defaults; test/types/options.ts checks that
 * this interface and the schema's input type are the same type, so the two
 * cannot drift apart.
 *
 * Every option is optional, may come from a JSON config file instead, and can
 * be set from the environment: `EVENTRAIL_` plus the option path in upper
 * snake case (`EVENTRAIL_POOL_MAX_THREADS=4`), which wins over the file or
 * object.
 */
import type { AnyEventCatalog } from './event/catalog.js';
import type { EventType } from './event/event.js';

/** The embedded store (the default): an lmdb environment in a folder. */
export interface LmdbStoreOptions {
  kind: 'lmdb';
  /**
   * The folder of the lmdb environment (created if missing). Relative paths
   * resolve against the working directory, or the config file's folder.
   * @default './eventrail-data'
   */
  path?: string;
  /**
   * The first element of every key, so that several logs can share one store.
   * @default 'eventrail'
   */
  prefix?: string;
  /**
   * lmdb's map size in bytes: the most the store can grow to before writes fail with a full map.
   * @default lmdb's own default, grown by lmdb as needed
   */
  mapSize?: number;
}

/** A FoundationDB cluster, which several service instances can share. */
export interface FdbStoreOptions {
  kind: 'fdb';
  /**
   * The cluster file to connect with.
   * @default the FoundationDB client's default cluster file
   */
  clusterFile?: string;
  /**
   * The first element of every key, so that several logs can share one cluster.
   * @default 'eventrail'
   */
  prefix?: string;
  /**
   * The FoundationDB API version to select, 620 to 720.
   * @default 720
   */
  apiVersion?: number;
  /**
   * The most bytes one transaction writes (FoundationDB's limit is 10 MB; under 1 MB is its advice).
   * @default 1000000
   */
  maxTransactionBytes?: number;
}

/** No store: no durability, no replay, no audit log; dead letters live in memory. */
export interface NoStoreOptions {
  kind: 'none';
}

/** A consumer module: its path or URL, or that and the options its handler gets as `ctx.options`. */
export type ConsumerEntry = string | { readonly module: string; readonly options?: Readonly<Record<string, unknown>> };

/** The worker pool that runs the consumers (piscina's options of the same names). */
export interface PoolOptions {
  /**
   * Workers kept running when idle, at most `maxThreads`.
   * @default 1
   */
  minThreads?: number;
  /**
   * The most workers, 1 to 1024.
   * @default the number of cores less one, from 1 to 4
   */
  maxThreads?: number;
  /**
   * Batches one worker runs at once, so that asynchronous handlers overlap.
   * @default 4
   */
  concurrentTasksPerWorker?: number;
  /**
   * Milliseconds an idle worker above `minThreads` lives.
   * @default 30000
   */
  idleTimeout?: number;
  /**
   * piscina's: 'async' lets an idle worker's event loop run (a consumer's background work goes on);
   * 'sync' parks it in Atomics.wait; 'disabled' uses no Atomics.
   * @default 'async'
   */
  atomics?: 'async' | 'sync' | 'disabled';
  /**
   * Each worker's resource limits (Node's Worker resourceLimits, in MB).
   * @default Node's defaults
   */
  resourceLimits?: {
    maxOldGenerationSizeMb?: number;
    maxYoungGenerationSizeMb?: number;
    codeRangeSizeMb?: number;
    stackSizeMb?: number;
  };
}

/** How accepted events are batched and fanned out to the pool. */
export interface DispatchOptions {
  /**
   * Parallel lanes: events with one partition key stay in order within their lane.
   * @default 8
   */
  lanes?: number;
  /**
   * Events per batch: per store commit and per worker task (1 to 65535).
   * @default 1024
   */
  maxBatch?: number;
  /**
   * Milliseconds a batch gathers before it is committed.
   * @default 1
   */
  lingerMs?: number;
  /**
   * The key whose events stay in order: `metadata.user_id` ('user', else the correlation id),
   * `metadata.tenant_id`, `metadata.correlation_id`, or 'none' (no order between events).
   * @default 'user'
   */
  partitionBy?: 'user' | 'tenant' | 'correlation' | 'none';
}

/** Retries and dead letters. */
export interface DeliveryOptions {
  /**
   * Attempts per (event, consumer) before the event becomes a dead letter.
   * @default 5
   */
  maxAttempts?: number;
  /** Exponential backoff between attempts, with jitter. */
  backoff?: {
    /**
     * Milliseconds before the second attempt; not more than `maxMs`.
     * @default 100
     */
    initialMs?: number;
    /**
     * The longest wait between attempts.
     * @default 30000
     */
    maxMs?: number;
  };
  /**
   * Milliseconds a handler may run; one still running then counts as failed and its `ctx.signal` aborts.
   * @default 30000
   */
  handlerTimeoutMs?: number;
}

/** What happens when consumers fall behind. */
export interface BackpressureOptions {
  /**
   * Accepted events not yet handled by every consumer, at most; at least `dispatch.maxBatch`.
   * @default 100000
   */
  maxPending?: number;
  /**
   * At `maxPending`: 'wait' makes emit() wait for room, 'reject' rejects it with a BackpressureError.
   * @default 'wait'
   */
  onOverflow?: 'wait' | 'reject';
}

/** The built-in audit log (the seed's AuditLogger). */
export interface AuditOptions {
  /**
   * The event types that get an AuditEntry, written in the event's own store transaction.
   * @default ['UserLoggedIn', 'UserLoggedOut', 'SessionInvalidated']
   */
  eventTypes?: EventType[];
}

/** Limits on what emit() accepts. */
export interface LimitsOptions {
  /**
   * The most bytes one encoded event may take (256 to 67108864).
   * @default 1048576
   */
  maxEventBytes?: number;
  /**
   * The deepest a payload may nest.
   * @default 64
   */
  maxDepth?: number;
}

/** How progress is recorded, so that a restart delivers again only what was not handled. */
export interface CheckpointOptions {
  /**
   * Milliseconds between cursor writes (0: a write each time a cursor moves).
   * @default 200
   */
  intervalMs?: number;
  /**
   * This instance's id in the store's membership and leases (shown by `eventrail stats`). Unique per
   * process by default; correctness never depends on it.
   * @default `${hostname}-${pid}-${random}`
   */
  instance?: string;
}

/** How instances sharing one store split the work: consumer groups, partitions and leases. */
export interface CoordinationOptions {
  /**
   * Partitions of the shared log, recorded when the store is created (the store's count wins after that).
   * @default 16
   */
  partitions?: number;
  /**
   * Milliseconds a lease lasts without renewal: a lost instance's partitions are taken over after this.
   * @default 10000
   */
  leaseMs?: number;
  /**
   * Milliseconds between lease renewals.
   * @default leaseMs / 4
   */
  renewMs?: number;
  /**
   * lmdb: milliseconds between looks for other instances' appends.
   * @default 25
   */
  pollMs?: number;
}

/** The options of `createBus`. */
export interface BusOptions {
  /**
   * Where events are kept.
   * @default { kind: 'lmdb', path: './eventrail-data', prefix: 'eventrail' }
   */
  store?: LmdbStoreOptions | FdbStoreOptions | NoStoreOptions;
  /**
   * Consumer modules, as paths (relative to the working directory, or to the config file) or URLs,
   * or `{ module, options }` to hand the consumer JSON options (its handler reads them as `ctx.options`);
   * every worker loads each once, and its default export is what defineConsumer() returned.
   * @default []
   */
  consumers?: ConsumerEntry[];
  /** The worker pool that runs the consumers. */
  pool?: PoolOptions;
  /** How accepted events are batched and fanned out. */
  dispatch?: DispatchOptions;
  /** Retries, dead letters and the handler timeout. */
  delivery?: DeliveryOptions;
  /** What happens when consumers fall behind. */
  backpressure?: BackpressureOptions;
  /** The built-in audit log. */
  audit?: AuditOptions;
  /** Limits on what emit() accepts. */
  limits?: LimitsOptions;
  /** How progress is recorded. */
  checkpoint?: CheckpointOptions;
  /** Consumer groups across instances sharing one store. */
  coordination?: CoordinationOptions;
  /**
   * The event catalogue (`defineEvents()`): payload schemas checked at emit, older versions upcast on
   * replay. An object, so it cannot come from a JSON config file or the environment.
   */
  events?: AnyEventCatalog;
  /** Trace context (with `@opentelemetry/api` installed). */
  tracing?: TracingOptions;
}

/** Trace context: what emit captures and what runs in the workers. */
export interface TracingOptions {
  /**
   * Store the emit's active trace context beside each event (needs `@opentelemetry/api`).
   * @default true
   */
  enabled?: boolean;
  /**
   * A module every worker imports before the consumers, to register its tracer provider;
   * handlers run inside spans only with it.
   */
  setup?: string;
}
