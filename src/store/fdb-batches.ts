/**
 * The pure half of the FoundationDB batch writer: how an append batch is cut
 * into transactions that stay inside FoundationDB's limits. Nothing here
 * touches a database (test/fdb-batches.test.ts checks it against the writes
 * `StoreLayout.planAppend` really makes).
 *
 * FoundationDB's limits (https://apple.github.io/foundationdb/known-limitations.html):
 * a transaction carries at most 10 000 000 bytes and lives at most 5 s, a key
 * is at most 10 000 bytes and a value at most 100 000. Batches are cut at
 * `store.maxTransactionBytes` (1 MB by default, as FoundationDB recommends),
 * which also keeps each commit to milliseconds, far from the 5 s limit.
 *
 * What FoundationDB counts against that limit, read in its client (apple/
 * foundationdb 7.3, fdbclient/NativeAPI.actor.cpp): `Transaction::getSize()`
 * is `mutations.expectedSize() + read_conflict_ranges.expectedSize() +
 * write_conflict_ranges.expectedSize()`, checked against the size limit in
 * `tryCommit` before the self-conflicting range is added; a VectorRef's
 * expectedSize() is `sizeof(T)` per element plus each element's own bytes
 * (flow/Arena.h), so a mutation costs sizeof(MutationRef) + key + value and a
 * conflict range sizeof(KeyRangeRef) + begin + end. `set`, atomic ops and
 * SET_VERSIONSTAMPED_VALUE add the write conflict range [key, key‖0x00);
 * `Transaction::atomicOp` adds none for SET_VERSIONSTAMPED_KEY (`if
 * (addConflictRange && operationType != MutationRef::SetVersionstampedKey)`),
 * and the read-your-writes layer turns it off for that op too (the key is not
 * known before commit). A non-snapshot `get` adds the read conflict range
 * [key, key‖0x00). `clear(key)` is a ClearRange mutation [key, key‖0x00) and
 * its write conflict range.
 *
 * The estimate below counts exactly those, for the keys the layout writes:
 * one `t` key per tenant and one `ts` key per millisecond present in the part
 * (not per event), no conflict range for versionstamped keys, and read
 * conflict ranges for the ids a first attempt reads (the caller-supplied
 * ones, and for an id that looks generated the time index and blocks it
 * may read instead) and for the one nonce a retry reads (fdb-retries.ts), and the head
 * key every append transaction writes (keys.ts); a retry reads
 * nothing more. It stays an upper bound: the chunk item of a key is counted at
 * its largest, and every part is charged for the nonce read and
 * MAX_NONCE_CLEARS nonce clears it may carry.
 */
import { AUDIT_ID_BYTES } from '../event/audit.js';
import { generatedIdTime } from '../event/ids.js';
import { indexedById } from './layout/append-plan.js';
import { AUDIT_FRAME_BYTES } from './layout/audit-blocks.js';
import { BLOCK_ENTRY_BYTES, BLOCK_HEADER_BYTES } from './layout/blocks.js';
import { KEY_NAMES } from './layout/keys.js';
import { STAMP_BYTES } from './layout/positions.js';
import { VERSIONSTAMP_ITEM_BYTES, tupleStringBytes } from './layout/tuple.js';
import { FDB_MAX_KEY_BYTES, FDB_MAX_TRANSACTION_BYTES, MAX_BLOCK_EVENTS, MAX_VALUE_BYTES } from './limits.js';
import { POSITION_BYTES, type AppendItem } from './store.js';

/** A versionstamped key or value carries the stamp's offset as a 4-byte suffix (API version 520 and later). */
export const STAMP_OFFSET_BYTES = 4;
/**
 * sizeof(MutationRef) on a 64-bit client of FoundationDB 7.3: a u8 type, two
 * StringRefs (16 bytes each), Optional<uint32_t> checksum, Optional<uint16_t>
 * accumulative checksum index and a bool, padded to 56 (40 before 7.3, so
 * this bounds older clients too).
 */
export const MUTATION_BYTES = 56;
/** sizeof(KeyRangeRef): two StringRefs. */
export const CONFLICT_RANGE_BYTES = 32;
/** Nonce clears one append transaction carries at most (fdb-append.ts clears the nonces of finished appends this way). */
export const MAX_NONCE_CLEARS = 8;
/** Characters of an append attempt's nonce (16 random bytes in hex). */
export const NONCE_CHARS = 32;
/** A tuple integer item holds at most 8 bytes after its type code. */
const INT_ITEM_BYTES = 9;
/** The chunk number item of a block key (chunks stay far below 65 536). */
const CHUNK_ITEM_BYTES = 3;
/** The name items of each key after the prefix, as tuple strings. */
const NAME = {
  id: tupleStringBytes(KEY_NAMES.id),
  block: tupleStringBytes(KEY_NAMES.block),
  tenant: tupleStringBytes(KEY_NAMES.tenant),
  time: tupleStringBytes(KEY_NAMES.time),
  audit: tupleStringBytes(KEY_NAMES.audit),
  nonce: tupleStringBytes(KEY_NAMES.nonce) + NONCE_CHARS + 2,
  /** ('meta', 'head'). */
  head: tupleStringBytes(KEY_NAMES.meta) + tupleStringBytes(KEY_NAMES.head),
  /** ('meta', 'count', name) with the longest name ('auditEntries'). */
  count: tupleStringBytes(KEY_NAMES.meta) + tupleStringBytes(KEY_NAMES.count) + tupleStringBytes('auditEntries'),
};

/** A write conflict range, or a point read's read conflict range: [key, key‖0x00). */
const conflictBytes = (key: number) => CONFLICT_RANGE_BYTES + 2 * key + 1;
/** `set`, an atomic op, or SET_VERSIONSTAMPED_VALUE (`value` with its offset suffix): the mutation and its write conflict range. */
const writeBytes = (key: number, value: number) => MUTATION_BYTES + key + value + conflictBytes(key);
/** SET_VERSIONSTAMPED_KEY (`key` with its offset suffix): the mutation alone. */
const stampedKeyBytes = (key: number, value: number) => MUTATION_BYTES + key + value;
/** `clear(key)`: a ClearRange mutation [key, key‖0x00) and its write conflict range. */
const clearBytes = (key: number) => MUTATION_BYTES + 2 * key + 1 + conflictBytes(key);
const chunksOf = (bytes: number) => Math.max(1, Math.ceil(bytes / MAX_VALUE_BYTES));

export interface SplitOptions {
  /** The bytes to aim for per transaction: `store.maxTransactionBytes`. */
  readonly maxTransactionBytes: number;
  /** Bytes of the packed prefix item (`tupleString(prefix).length`), which starts every key. */
  readonly prefixBytes: number;
  /** Events per transaction at most; a block's index is 16 bits. */
  readonly maxEvents?: number;
}

/** Items `start` (inclusive) to `end` (exclusive) of the batch, written in one transaction of about `bytes`. */
export interface BatchPart {
  readonly start: number;
  readonly end: number;
  readonly bytes: number;
}

export type SplitResult =
  | { readonly ok: true; readonly parts: BatchPart[] }
  /** Item `index` alone needs `bytes`, over FoundationDB's hard limit: nothing of the batch can be written. */
  | { readonly ok: false; readonly index: number; readonly bytes: number };

/** What one item adds to a transaction, and the index keys it may need. */
interface ItemBytes {
  /** Its id write, and the id's read conflict range when the caller supplied it. */
  readonly id: number;
  readonly block: number;
  readonly audit: number;
  readonly tenantId: string | null;
  /** The bytes of a `t` key for its tenant (mutation, no conflict range, no value), 0 without one. */
  readonly tenantKey: number;
  readonly timestampMs: number;
}

/**
 * Block chunk reads charged to a caller-supplied id that looks generated: if
 * it has no id key, its millisecond of the time index is read, and the blocks
 * it names (generated.ts). More than this many is past any real burst of one
 * millisecond, and the estimate's other margins (chunk items at their
 * largest, nonce clears) cover a few more.
 */
const GENERATED_LOOKUP_READS = 16;

function measureItem(item: AppendItem, prefixBytes: number): ItemBytes {
  const idKey = prefixBytes + NAME.id + tupleStringBytes(item.eventId);
  // The id's value is the 12-byte position, versionstamped; an id the bus generated in the
  // millisecond of its timestamp has no id key (indexedById).
  let id = indexedById(item) ? writeBytes(idKey, POSITION_BYTES + STAMP_OFFSET_BYTES) : 0;
  if (item.checkDuplicate) id += conflictBytes(idKey);
  if (item.checkDuplicate && generatedIdTime(item.eventId) !== null) {
    const timeKey = prefixBytes + NAME.time + INT_ITEM_BYTES + 1;
    const blockKey = prefixBytes + NAME.block + VERSIONSTAMP_ITEM_BYTES + CHUNK_ITEM_BYTES;
    id += CONFLICT_RANGE_BYTES + 2 * timeKey + GENERATED_LOOKUP_READS * conflictBytes(blockKey);
  }
  let tenantBytes = 0;
  let tenantKey = 0;
  if (item.tenantId !== null) {
    tenantBytes = Buffer.byteLength(item.tenantId, 'utf8');
    tenantKey = stampedKeyBytes(
      prefixBytes + NAME.tenant + tupleStringBytes(item.tenantId) + VERSIONSTAMP_ITEM_BYTES + STAMP_OFFSET_BYTES,
      0,
    );
  }
  const audit = item.auditId === null ? 0 : AUDIT_FRAME_BYTES + tenantBytes + AUDIT_ID_BYTES;
  return { id, block: BLOCK_ENTRY_BYTES + item.bytes.length, audit, tenantId: item.tenantId, tenantKey, timestampMs: item.timestampMs };
}

/** The running size of one transaction as items are added. */
class TransactionMeter {
  readonly #chunkWrite: number;
  readonly #timeKey: number;
  readonly #fixed: number;
  readonly #tenants = new Set<string>();
  readonly #times = new Set<number>();
  /** Ids, index keys and index values (2 bytes per event in each of its `t` and `ts` lists). */
  #keys = 0;
  #block = 0;
  #audit = 0;
  count = 0;

  constructor(prefixBytes: number) {
    this.#chunkWrite = stampedKeyBytes(
      prefixBytes + Math.max(NAME.block, NAME.audit) + VERSIONSTAMP_ITEM_BYTES + CHUNK_ITEM_BYTES + STAMP_OFFSET_BYTES,
      0,
    );
    this.#timeKey = stampedKeyBytes(prefixBytes + NAME.time + INT_ITEM_BYTES + VERSIONSTAMP_ITEM_BYTES + STAMP_OFFSET_BYTES, 0);
    const nonceKey = prefixBytes + NAME.nonce;
    this.#fixed =
      // The atomic adds to the event and audit counts.
      2 * writeBytes(prefixBytes + NAME.count, 8) +
      // This attempt's nonce (a versionstamped value), a retry's read of the previous attempt's, and old nonces cleared.
      writeBytes(nonceKey, STAMP_BYTES + STAMP_OFFSET_BYTES) +
      conflictBytes(nonceKey) +
      MAX_NONCE_CLEARS * clearBytes(nonceKey) +
      // The head key: commitEnd of the commit, a versionstamped value.
      writeBytes(prefixBytes + NAME.head, POSITION_BYTES + STAMP_OFFSET_BYTES);
  }

  /** The transaction's bytes with `item` added (nothing changes). */
  with(item: ItemBytes): number {
    return this.#total(this.#keys + this.#keysOf(item), this.#block + item.block, this.#audit + item.audit);
  }

  add(item: ItemBytes): void {
    this.#keys += this.#keysOf(item);
    this.#block += item.block;
    this.#audit += item.audit;
    if (item.tenantId !== null) this.#tenants.add(item.tenantId);
    this.#times.add(item.timestampMs);
    this.count++;
  }

  get bytes(): number {
    return this.#total(this.#keys, this.#block, this.#audit);
  }

  /** The id write, 2 bytes in the `ts` list (and the `t` list), and a new `ts` (or `t`) key when this part has none yet. */
  #keysOf(item: ItemBytes): number {
    let bytes = item.id + 2;
    if (!this.#times.has(item.timestampMs)) bytes += this.#timeKey;
    if (item.tenantId !== null) {
      bytes += 2;
      if (!this.#tenants.has(item.tenantId)) bytes += item.tenantKey;
    }
    return bytes;
  }

  #total(keys: number, block: number, audit: number): number {
    let total = this.#fixed + keys + BLOCK_HEADER_BYTES + block + chunksOf(BLOCK_HEADER_BYTES + block) * this.#chunkWrite;
    if (audit > 0) total += BLOCK_HEADER_BYTES + audit + chunksOf(BLOCK_HEADER_BYTES + audit) * this.#chunkWrite;
    return total;
  }
}

/** An upper bound on the bytes FoundationDB counts for appending `items` in one transaction. */
export function transactionBytes(items: readonly AppendItem[], prefixBytes: number): number {
  const meter = new TransactionMeter(prefixBytes);
  for (const item of items) meter.add(measureItem(item, prefixBytes));
  return meter.bytes;
}

/**
 * Cuts a batch, in order, into consecutive parts of at most
 * `maxTransactionBytes` each (by the estimate above) and `maxEvents` events.
 * An item too big to share a transaction gets one of its own, allowed up to
 * FoundationDB's hard limit; an item over that fails the whole split, so a
 * batch that cannot be written is refused before any of it is.
 */
export function splitBatch(items: readonly AppendItem[], options: SplitOptions): SplitResult {
  const { maxTransactionBytes, prefixBytes } = options;
  const maxEvents = options.maxEvents ?? MAX_BLOCK_EVENTS;
  if (!(maxTransactionBytes > 0)) throw new RangeError(`maxTransactionBytes must be positive, got ${maxTransactionBytes}`);
  if (!(maxEvents > 0)) throw new RangeError(`maxEvents must be positive, got ${maxEvents}`);
  const parts: BatchPart[] = [];
  let start = 0;
  let meter = new TransactionMeter(prefixBytes);
  for (let i = 0; i < items.length; i++) {
    const item = measureItem(items[i]!, prefixBytes);
    if (meter.count > 0 && (meter.count >= maxEvents || meter.with(item) > maxTransactionBytes)) {
      parts.push({ start, end: i, bytes: meter.bytes });
      start = i;
      meter = new TransactionMeter(prefixBytes);
    }
    if (meter.count === 0) {
      const alone = meter.with(item);
      if (alone > FDB_MAX_TRANSACTION_BYTES) return { ok: false, index: i, bytes: alone };
    }
    meter.add(item);
  }
  if (meter.count > 0) parts.push({ start, end: items.length, bytes: meter.bytes });
  return { ok: true, parts };
}

/** Why a key or value cannot be written to FoundationDB, or null when it can. */
export function limitProblem(key: Buffer, value: Buffer): string | null {
  if (key.length > FDB_MAX_KEY_BYTES) return `a key of ${key.length} bytes is over FoundationDB's ${FDB_MAX_KEY_BYTES}-byte key limit`;
  if (value.length > MAX_VALUE_BYTES) return `a value of ${value.length} bytes is over FoundationDB's ${MAX_VALUE_BYTES}-byte value limit`;
  return null;
}
