/**
 * The pure half of the FoundationDB batch writer: how an append batch is cut
 * into transactions that stay inside FoundationDB's limits, and how a retried
 * transaction recognises that an earlier attempt of it did commit. Nothing
 * here touches a database (test/fdb-batches.test.ts checks it against the
 * writes `StoreLayout.planAppend` really makes).
 *
 * FoundationDB's limits (https://apple.github.io/foundationdb/known-limitations.html):
 * a transaction carries at most 10 000 000 bytes and lives at most 5 s, a key
 * is at most 10 000 bytes and a value at most 100 000. The size FoundationDB
 * counts is every mutation's key and value plus the begin and end keys of
 * every read and write conflict range. Batches are cut at
 * `store.maxTransactionBytes` (1 MB by default, as FoundationDB recommends),
 * which also keeps each commit to milliseconds, far from the 5 s limit.
 *
 * The estimate is an upper bound: every index key is counted once per event
 * although the layout writes one per tenant and per millisecond per block, a
 * versionstamped key is counted with a conflict range although the client
 * cannot add one for it, and every id is counted as read because a retry
 * reads them all.
 */
import { AUDIT_ID_BYTES } from '../event/audit.js';
import { AUDIT_FRAME_BYTES } from './layout/audit-blocks.js';
import { BLOCK_ENTRY_BYTES, BLOCK_HEADER_BYTES } from './layout/blocks.js';
import { KEY_NAMES } from './layout/keys.js';
import { indexOf, stampOf, type Stamp } from './layout/positions.js';
import { VERSIONSTAMP_ITEM_BYTES, tupleStringBytes } from './layout/tuple.js';
import { FDB_MAX_KEY_BYTES, FDB_MAX_TRANSACTION_BYTES, MAX_BLOCK_EVENTS, MAX_VALUE_BYTES } from './limits.js';
import type { AppendItem, AppendResult, Position } from './store.js';

/** A versionstamped key or value carries the stamp's offset as a 4-byte suffix (API version 520 and later). */
export const STAMP_OFFSET_BYTES = 4;
/** Per mutation or conflict range, for what the client adds around key and value. */
const ENTRY_OVERHEAD_BYTES = 16;
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
  /** ('meta', 'count', name) with the longest name ('auditEntries'). */
  count: tupleStringBytes(KEY_NAMES.meta) + tupleStringBytes(KEY_NAMES.count) + tupleStringBytes('auditEntries'),
};

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

/** The bytes FoundationDB counts for one write: key, value, the write conflict range [key, key‖0x00). */
const writeBytes = (key: number, value: number) => key + value + 2 * key + 1 + 2 * ENTRY_OVERHEAD_BYTES;
/** The bytes of a point read's conflict range. */
const readBytes = (key: number) => 2 * key + 1 + ENTRY_OVERHEAD_BYTES;
const chunksOf = (bytes: number) => Math.max(1, Math.ceil(bytes / MAX_VALUE_BYTES));

/** What one item adds to a transaction outside its block and audit block, and to those. */
interface ItemBytes {
  /** id, tenant and time index writes, and the id's read conflict range. */
  readonly keys: number;
  readonly block: number;
  readonly audit: number;
}

function measureItem(item: AppendItem, prefixBytes: number): ItemBytes {
  const idKey = prefixBytes + NAME.id + tupleStringBytes(item.eventId);
  // The id's value is the 12-byte position, versionstamped.
  let keys = writeBytes(idKey, 12 + STAMP_OFFSET_BYTES) + readBytes(idKey);
  let tenantBytes = 0;
  if (item.tenantId !== null) {
    tenantBytes = Buffer.byteLength(item.tenantId, 'utf8');
    keys += writeBytes(prefixBytes + NAME.tenant + tupleStringBytes(item.tenantId) + VERSIONSTAMP_ITEM_BYTES + STAMP_OFFSET_BYTES, 2);
  }
  keys += writeBytes(prefixBytes + NAME.time + INT_ITEM_BYTES + VERSIONSTAMP_ITEM_BYTES + STAMP_OFFSET_BYTES, 2);
  const audit = item.auditId === null ? 0 : AUDIT_FRAME_BYTES + 4 + tenantBytes + AUDIT_ID_BYTES;
  return { keys, block: BLOCK_ENTRY_BYTES + item.bytes.length, audit };
}

/** The running size of one transaction as items are added. */
class TransactionMeter {
  readonly #chunkWrite: number;
  readonly #fixed: number;
  #keys = 0;
  #block = 0;
  #audit = 0;
  count = 0;

  constructor(prefixBytes: number) {
    this.#chunkWrite = writeBytes(prefixBytes + Math.max(NAME.block, NAME.audit) + VERSIONSTAMP_ITEM_BYTES + CHUNK_ITEM_BYTES + STAMP_OFFSET_BYTES, 0);
    // The atomic adds to the event and audit counts.
    this.#fixed = 2 * writeBytes(prefixBytes + NAME.count, 8);
  }

  /** The transaction's bytes with `item` added (nothing changes). */
  with(item: ItemBytes): number {
    return this.#total(this.#keys + item.keys, this.#block + item.block, this.#audit + item.audit);
  }

  add(item: ItemBytes): void {
    this.#keys += item.keys;
    this.#block += item.block;
    this.#audit += item.audit;
    this.count++;
  }

  get bytes(): number {
    return this.#total(this.#keys, this.#block, this.#audit);
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

/** Every distinct event_id of a batch, generated or supplied: what a retried append reads. */
export function allIds(items: readonly AppendItem[]): string[] {
  const ids = new Set<string>();
  for (const item of items) ids.add(item.eventId);
  return [...ids];
}

/**
 * The commit stamp of an earlier attempt of this append, if that attempt did
 * commit, or null. `planned` is the result that attempt planned (positions
 * with a placeholder stamp), `found` the id index as the retry reads it.
 *
 * A transaction commits whole, so the attempt committed exactly when every
 * event it planned to store is in the id index at one stamp with the block
 * index it planned. A retry must tell its own earlier commit from another
 * writer's: reporting its own events as duplicates would acknowledge them
 * without ever dispatching them. Only caller-supplied ids can be stored by
 * someone else, and then only as the very same ids at the very same indices
 * of one block (the same batch appended elsewhere); that is taken as this
 * append's commit, so delivery stays at least once.
 */
export function earlierCommit(planned: AppendResult, items: readonly AppendItem[], found: ReadonlyMap<string, Position>): Stamp | null {
  let stamp: Stamp | null = null;
  for (let i = 0; i < items.length; i++) {
    if (planned.duplicate[i]) continue;
    const at = found.get(items[i]!.eventId);
    if (at === undefined || indexOf(at) !== indexOf(planned.positions[i]!)) return null;
    const atStamp = stampOf(at);
    if (stamp === null) stamp = atStamp;
    else if (!atStamp.equals(stamp)) return null;
  }
  return stamp;
}
