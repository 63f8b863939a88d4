/**
 * The one key/value layout of the store, shared by every backend so that lmdb
 * and FoundationDB hold the same bytes. Pure functions over Buffers: nothing
 * here touches a database.
 *
 * Keys are FoundationDB tuples (npm `fdb-tuple`) under a configurable string
 * prefix:
 *
 * ```
 * (prefix,'ev',stamp,chunk)            → one block per commit: the batch's events (encodeBlock), split in chunks
 * (prefix,'id',event_id)               → position (12 bytes)               dedup index and lookup by id
 * (prefix,'t',tenant_id,stamp)         → uint16BE block indices of that tenant's events in the block
 * (prefix,'ts',timestamp_ms,stamp)     → uint16BE block indices of the events of that millisecond
 * (prefix,'au',stamp,chunk)            → the batch's audit entries (encodeAuditBlock), split in chunks
 * (prefix,'dl',consumer,position)      → dead letter (encodeDeadLetter), its first chunk
 * (prefix,'dl',consumer,position,chunk) → the next chunks (1, 2, ...) of a dead letter over MAX_VALUE_BYTES
 * (prefix,'cp',name)                   → position (12 bytes)
 * (prefix,'meta','counter')            → lmdb's commit counter, uint64BE
 * (prefix,'meta','count',name)         → running count, int64LE (FoundationDB's atomic add is little-endian)
 * ```
 *
 * Why blocks: lmdb encodes and copies every value on the main thread, so one
 * key per event costs about 3× the throughput of one value per batch (DESIGN,
 * "Measured here"). A commit therefore writes one block, one `id` key per event
 * (the dedup index must be a point read) and one `t`/`ts` key per tenant/per
 * millisecond present in the batch, not per event.
 *
 * `stamp` is the 10-byte commit stamp: a FoundationDB commit versionstamp, or
 * on lmdb `counter (uint64BE) ‖ 0x0000`. In keys it is a tuple versionstamp
 * item whose 12 bytes are `stamp ‖ 0x0000`, so FoundationDB can fill it in at
 * commit (`setVersionstampedKey`); each {@link Put} says where. The event at
 * index i of a block is at position `stamp ‖ uint16BE(i)`.
 *
 * Values are at most {@link MAX_VALUE_BYTES} (FoundationDB's value limit),
 * applied on every backend so the bytes match: blocks, audit blocks and dead
 * letters are chunked.
 */
import { pack, unpack } from 'fdb-tuple';
import { utf8Write } from '../native-buffer.js';
import type { Codec } from '../codec.js';
import { StoreCorruptError, type SerializedError } from '../errors.js';
import { AUDIT_ID_BYTES, encodeAuditRecord, writeAuditId } from '../event/audit.js';
import { POSITION_BYTES, type AppendItem, type AppendResult, type CorruptHandler, type DeadLetterRecord, type Position, type StoredAuditEntry, type StoredEvent } from './store.js';

/** The 10-byte commit stamp shared by every event of one block. */
export type Stamp = Buffer;

export const STAMP_BYTES = 10;
/** FoundationDB's value size limit, applied to every backend so both store the same bytes. */
export const MAX_VALUE_BYTES = 100_000;
/** The index within a block is 16 bits (the last two bytes of a position). */
export const MAX_BLOCK_EVENTS = 65_536;

const BLOCK_FORMAT = 1;
/** Audit blocks of the first format hold each entry's whole record (the audit id and a copy of the event); still read. */
const AUDIT_FORMAT_WITH_RECORDS = 1;
/** Each entry holds its audit id only: the record is made on read from the event in its block (same stamp, same index). */
const AUDIT_FORMAT = 2;
const BLOCK_HEADER_BYTES = 5; // format u8, count u32
const NO_TENANT = 0xffff;

// Tuple type codes (https://github.com/apple/foundationdb/blob/main/design/tuple.md).
const TUPLE_STRING = 0x02;
const TUPLE_INT_ZERO = 0x14;
const TUPLE_VERSIONSTAMP = 0x33;
/** A versionstamp item: type code + 12 bytes. */
const VERSIONSTAMP_ITEM_BYTES = 13;
/** No tuple item starts with 0xff, so `prefix ‖ 0xff` bounds every key under prefix. */
const AFTER = Buffer.from([0xff]);

/** One write: FoundationDB fills the 10-byte stamp in at `stampOffset` of the key or value at commit; lmdb writes it as built. */
export interface Put {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly stampIn: 'key' | 'value' | 'none';
  /** Byte offset of the stamp in the key or value; -1 when `stampIn` is 'none'. */
  readonly stampOffset: number;
}

/** A key range: `start` inclusive, `end` exclusive. */
export interface KeyRange {
  readonly start: Buffer;
  readonly end: Buffer;
}

export interface AppendPlan {
  /** Every write of the batch (but the id index when planned with `idsApart`). */
  readonly puts: Put[];
  /**
   * With `idsApart`: the id index writes, left for the caller to make one by
   * one (each fresh item's id key, from `scratchIdKey`, to its position)
   * instead of a key buffer and a put per event kept until the transaction.
   */
  readonly ids: { readonly items: readonly AppendItem[]; readonly positions: readonly Position[] } | null;
  /** What append() returns: one position and duplicate flag per item. */
  readonly result: AppendResult;
  /** Events and audit entries the batch adds (duplicates excluded). */
  readonly events: number;
  readonly auditEntries: number;
}

export type CountName = 'events' | 'auditEntries' | 'deadLetters';

// ---------------------------------------------------------------------------
// Stamps and positions

/** lmdb's stamp: the commit counter (uint64BE) then 0x0000, shaped like a FoundationDB commit version + batch order. */
export function stampFromCounter(counter: bigint): Stamp {
  const stamp = Buffer.alloc(STAMP_BYTES);
  stamp.writeBigUInt64BE(counter, 0);
  return stamp;
}

export function counterFromStamp(stamp: Stamp): bigint {
  return stamp.readBigUInt64BE(0);
}

export function encodeCounter(counter: bigint): Buffer {
  const value = Buffer.alloc(8);
  value.writeBigUInt64BE(counter, 0);
  return value;
}

export function decodeCounter(value: Buffer | undefined): bigint {
  if (value === undefined) return 0n;
  if (value.length !== 8) throw new StoreCorruptError(`the commit counter is ${value.length} bytes, expected 8`);
  return value.readBigUInt64BE(0);
}

export function positionOf(stamp: Stamp, index: number): Position {
  const position = Buffer.allocUnsafe(POSITION_BYTES);
  stamp.copy(position, 0, 0, STAMP_BYTES);
  position.writeUInt16BE(index, STAMP_BYTES);
  return position;
}

/** The stamp of a position (a view, not a copy). */
export function stampOf(position: Position): Stamp {
  return position.subarray(0, STAMP_BYTES);
}

export function indexOf(position: Position): number {
  return position.readUInt16BE(STAMP_BYTES);
}

export function checkPosition(position: Buffer, what: string): Position {
  if (position.length !== POSITION_BYTES) throw new StoreCorruptError(`${what} is ${position.length} bytes, expected ${POSITION_BYTES}`);
  return position;
}

export function encodeCount(count: number): Buffer {
  const value = Buffer.alloc(8);
  value.writeBigInt64LE(BigInt(count), 0);
  return value;
}

export function decodeCount(value: Buffer | undefined): number {
  if (value === undefined) return 0;
  if (value.length !== 8) throw new StoreCorruptError(`a count is ${value.length} bytes, expected 8`);
  return Number(value.readBigInt64LE(0));
}

// ---------------------------------------------------------------------------
// Tuple pieces. fdb-tuple's pack() costs ~1.8 µs per key, the whole per-event
// budget, so the keys written per event are assembled from pre-packed prefixes
// and these encoders; test/store-layout.test.ts checks them against pack().

const NO_PREFIX = Buffer.alloc(0);

/** The tuple encoding of one string item: 0x02, UTF-8 with 0x00 escaped as 0x00 0xff, 0x00. */
export function tupleString(text: string): Buffer {
  return withString(NO_PREFIX, text);
}

/** `prefix ‖ tupleString(text)`, built in one buffer: keys written for every event are made this way. */
function withString(prefix: Buffer, text: string): Buffer {
  if (text.includes('\0')) return concat([prefix, pack(text)]);
  return fillWithString(Buffer.allocUnsafe(withStringBytes(prefix, text)), prefix, text);
}

/** The length of `withString(prefix, text)` for a text without NUL (nothing to escape). */
const withStringBytes = (prefix: Buffer, text: string): number => prefix.length + Buffer.byteLength(text, 'utf8') + 2;

/** Writes `withString(prefix, text)` into `out`, which is exactly that long, for a text without NUL. */
function fillWithString(out: Buffer, prefix: Buffer, text: string): Buffer {
  for (let i = 0; i < prefix.length; i++) out[i] = prefix[i]!;
  out[prefix.length] = TUPLE_STRING;
  utf8Write(out, text, prefix.length + 1);
  out[out.length - 1] = 0x00;
  return out;
}

/** The tuple encoding of a non-negative integer item. */
function tupleUint(n: number): Buffer {
  if (n === 0) return Buffer.from([TUPLE_INT_ZERO]);
  if (n < 0x100) return Buffer.from([TUPLE_INT_ZERO + 1, n]);
  if (n < 0x10000) return Buffer.from([TUPLE_INT_ZERO + 2, n >> 8, n & 0xff]);
  return pack(n);
}

/**
 * Where the tuple string item whose bytes start at `at` (after its 0x02) ends:
 * the index just past its 0x00 terminator (an escaped NUL is 0x00 0xff), or -1.
 */
function stringItemEnd(key: Buffer, at: number): number {
  for (let i = at; i < key.length; i++) {
    if (key[i] !== 0x00) continue;
    if (key[i + 1] === 0xff) i++;
    else return i + 1;
  }
  return -1;
}

function concat(parts: readonly Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

/** `prefix ‖ versionstamp(stamp ‖ 0x0000)` and where the stamp starts. */
function withStamp(prefix: Buffer, stamp: Stamp, tail?: Buffer): Buffer {
  const out = Buffer.alloc(prefix.length + VERSIONSTAMP_ITEM_BYTES + (tail?.length ?? 0));
  prefix.copy(out, 0);
  out[prefix.length] = TUPLE_VERSIONSTAMP;
  stamp.copy(out, prefix.length + 1, 0, STAMP_BYTES);
  // bytes 11-12 of the item stay 0x0000: the user version of a block-level stamp
  if (tail) tail.copy(out, prefix.length + VERSIONSTAMP_ITEM_BYTES);
  return out;
}

function checkStamp(stamp: Stamp): void {
  if (stamp.length !== STAMP_BYTES) throw new RangeError(`a stamp is ${STAMP_BYTES} bytes, got ${stamp.length}`);
}

// ---------------------------------------------------------------------------
// Keys and ranges

export class StoreLayout {
  readonly prefix: string;
  readonly #ev: Buffer;
  readonly #id: Buffer;
  readonly #scratchIdKeys = new Map<number, Buffer>();
  readonly #t: Buffer;
  readonly #ts: Buffer;
  readonly #au: Buffer;
  readonly #dl: Buffer;
  readonly #cp: Buffer;
  readonly #count: Buffer;
  /** `(prefix,'meta','counter')`: lmdb's commit counter. */
  readonly counterKey: Buffer;

  constructor(prefix: string) {
    if (typeof prefix !== 'string' || prefix.length === 0) throw new TypeError(`the store prefix must be a non-empty string, got ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
    this.#ev = pack([prefix, 'ev']);
    this.#id = pack([prefix, 'id']);
    this.#t = pack([prefix, 't']);
    this.#ts = pack([prefix, 'ts']);
    this.#au = pack([prefix, 'au']);
    this.#dl = pack([prefix, 'dl']);
    this.#cp = pack([prefix, 'cp']);
    this.#count = pack([prefix, 'meta', 'count']);
    this.counterKey = pack([prefix, 'meta', 'counter']);
  }

  /** Every key of this layout. */
  all(): KeyRange {
    const start = pack(this.prefix);
    return { start, end: concat([start, AFTER]) };
  }

  blockKey(stamp: Stamp, chunk: number): Buffer {
    checkStamp(stamp);
    return withStamp(this.#ev, stamp, tupleUint(chunk));
  }

  /** Offset of the stamp in a block key (FoundationDB's setVersionstampedKey). */
  get blockKeyStampOffset(): number {
    return this.#ev.length + 1;
  }

  decodeBlockKey(key: Buffer): { stamp: Stamp; chunk: number } {
    const at = this.#ev.length;
    if (key[at] !== TUPLE_VERSIONSTAMP || key.length <= at + VERSIONSTAMP_ITEM_BYTES) throw new StoreCorruptError(`not a block key: ${key.toString('hex')}`);
    const chunk = unpack(key.subarray(at + VERSIONSTAMP_ITEM_BYTES))[0];
    if (typeof chunk !== 'number') throw new StoreCorruptError(`not a block key: ${key.toString('hex')}`);
    return { stamp: key.subarray(at + 1, at + 1 + STAMP_BYTES), chunk };
  }

  /** Blocks with stamps from `from` to `until`, both inclusive (either open). */
  blockRange(from?: Stamp, until?: Stamp): KeyRange {
    return this.#stampRange(this.#ev, from, until);
  }

  /** The chunks of one block. */
  blockChunks(stamp: Stamp): KeyRange {
    return this.#stampRange(this.#ev, stamp, stamp);
  }

  idKey(eventId: string): Buffer {
    return withString(this.#id, eventId);
  }

  /**
   * `idKey(eventId)` in a buffer the layout reuses (one per key length), so
   * valid only until the next call: for writers that copy each key as they
   * write it (lmdb), no buffer per event.
   */
  scratchIdKey(eventId: string): Buffer {
    if (eventId.includes('\0')) return this.idKey(eventId);
    const length = withStringBytes(this.#id, eventId);
    let out = this.#scratchIdKeys.get(length);
    if (out === undefined) {
      if (this.#scratchIdKeys.size >= 64) this.#scratchIdKeys.clear();
      out = Buffer.allocUnsafeSlow(length);
      this.#scratchIdKeys.set(length, out);
    }
    return fillWithString(out, this.#id, eventId);
  }

  tenantKey(tenantId: string, stamp: Stamp): Buffer {
    checkStamp(stamp);
    return withStamp(withString(this.#t, tenantId), stamp);
  }

  /** A tenant's index keys with stamps from `from` to `until`, both inclusive. */
  tenantRange(tenantId: string, from?: Stamp, until?: Stamp): KeyRange {
    return this.#stampRange(withString(this.#t, tenantId), from, until);
  }

  timeKey(timestampMs: number, stamp: Stamp): Buffer {
    checkStamp(stamp);
    return withStamp(concat([this.#ts, pack(timestampMs)]), stamp);
  }

  /** `ts` keys with timestamp_ms in [fromMs, toMs) (either open; ±Infinity allowed). */
  timeRange(fromMs?: number, toMs?: number): KeyRange {
    const below = this.#ts;
    const above = concat([this.#ts, AFTER]);
    const bound = (ms: number | undefined, open: Buffer, what: string): Buffer => {
      if (ms === undefined) return open;
      if (Number.isNaN(ms)) throw new RangeError(`${what} must be a number of milliseconds, got NaN`);
      if (ms === -Infinity) return below;
      if (ms === Infinity) return above;
      // Stored timestamps are integers: t >= ms ⟺ t >= ceil(ms), t < ms ⟺ t < ceil(ms).
      // Clamped so the bound stays a tuple integer (doubles sort after every integer).
      const whole = Math.min(Math.max(Math.ceil(ms), Number.MIN_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
      return concat([this.#ts, pack(whole)]);
    };
    return { start: bound(fromMs, below, 'fromMs'), end: bound(toMs, above, 'toMs') };
  }

  decodeTimeKey(key: Buffer): { timestampMs: number; stamp: Stamp } {
    const ms = unpack(key.subarray(this.#ts.length, key.length - VERSIONSTAMP_ITEM_BYTES))[0];
    if (typeof ms !== 'number') throw new StoreCorruptError(`not a time index key: ${key.toString('hex')}`);
    return { timestampMs: ms, stamp: this.stampOfIndexKey(key) };
  }

  /** The stamp of a `t` or `ts` key: the versionstamp is their last item. */
  stampOfIndexKey(key: Buffer): Stamp {
    const at = key.length - VERSIONSTAMP_ITEM_BYTES;
    if (key[at] !== TUPLE_VERSIONSTAMP) throw new StoreCorruptError(`not an index key: ${key.toString('hex')}`);
    return key.subarray(at + 1, at + 1 + STAMP_BYTES);
  }

  auditKey(stamp: Stamp, chunk: number): Buffer {
    checkStamp(stamp);
    return withStamp(this.#au, stamp, tupleUint(chunk));
  }

  decodeAuditKey(key: Buffer): { stamp: Stamp; chunk: number } {
    const at = this.#au.length;
    if (key[at] !== TUPLE_VERSIONSTAMP || key.length <= at + VERSIONSTAMP_ITEM_BYTES) throw new StoreCorruptError(`not an audit key: ${key.toString('hex')}`);
    const chunk = unpack(key.subarray(at + VERSIONSTAMP_ITEM_BYTES))[0];
    if (typeof chunk !== 'number') throw new StoreCorruptError(`not an audit key: ${key.toString('hex')}`);
    return { stamp: key.subarray(at + 1, at + 1 + STAMP_BYTES), chunk };
  }

  auditRange(from?: Stamp, until?: Stamp): KeyRange {
    return this.#stampRange(this.#au, from, until);
  }

  /**
   * A dead letter's key: `(prefix,'dl',consumer,position)` for its first chunk,
   * the key every dead letter had before they were chunked (so one stored then
   * reads as a dead letter of one chunk), and the chunk number as one more
   * item for the next ones, which sort right after it.
   */
  deadLetterKey(consumer: string, position: Position, chunk = 0): Buffer {
    checkPosition(position, 'a dead letter position');
    const prefix = withString(this.#dl, consumer);
    const tail = chunk === 0 ? NO_PREFIX : tupleUint(chunk);
    const out = Buffer.allocUnsafe(prefix.length + VERSIONSTAMP_ITEM_BYTES + tail.length);
    prefix.copy(out, 0);
    out[prefix.length] = TUPLE_VERSIONSTAMP;
    position.copy(out, prefix.length + 1);
    tail.copy(out, prefix.length + VERSIONSTAMP_ITEM_BYTES);
    return out;
  }

  decodeDeadLetterKey(key: Buffer): { consumer: string; position: Position; chunk: number } {
    const bad = () => new StoreCorruptError(`not a dead letter key: ${key.toString('hex')}`);
    const start = this.#dl.length;
    const end = key[start] === TUPLE_STRING ? stringItemEnd(key, start + 1) : -1;
    if (end < 0 || key[end] !== TUPLE_VERSIONSTAMP || key.length < end + VERSIONSTAMP_ITEM_BYTES) throw bad();
    const consumer = unpack(key.subarray(start, end))[0];
    const tail = key.subarray(end + VERSIONSTAMP_ITEM_BYTES);
    const chunk = tail.length === 0 ? 0 : unpack(tail)[0];
    if (typeof consumer !== 'string' || typeof chunk !== 'number' || (tail.length > 0 && chunk < 1)) throw bad();
    return { consumer, position: Buffer.from(key.subarray(end + 1, end + VERSIONSTAMP_ITEM_BYTES)), chunk };
  }

  /** One consumer's dead letters, or everyone's. */
  deadLetterRange(consumer?: string): KeyRange {
    const start = consumer === undefined ? this.#dl : withString(this.#dl, consumer);
    return { start, end: concat([start, AFTER]) };
  }

  /** Every chunk of one dead letter: what removing or replacing it clears. */
  deadLetterChunks(consumer: string, position: Position): KeyRange {
    const start = this.deadLetterKey(consumer, position);
    return { start, end: concat([start, AFTER]) };
  }

  /** The writes of one dead letter, its value (encodeDeadLetter) in chunks of at most MAX_VALUE_BYTES. */
  deadLetterPuts(codec: Codec, record: DeadLetterRecord): { key: Buffer; value: Buffer }[] {
    return chunkValue(encodeDeadLetter(codec, record)).map((value, chunk) => ({ key: this.deadLetterKey(record.consumer, record.position, chunk), value }));
  }

  checkpointKey(name: string): Buffer {
    return withString(this.#cp, name);
  }

  decodeCheckpointKey(key: Buffer): string {
    const name = unpack(key.subarray(this.#cp.length))[0];
    if (typeof name !== 'string') throw new StoreCorruptError(`not a checkpoint key: ${key.toString('hex')}`);
    return name;
  }

  checkpointRange(): KeyRange {
    return { start: this.#cp, end: concat([this.#cp, AFTER]) };
  }

  countKey(name: CountName): Buffer {
    return withString(this.#count, name);
  }

  #stampRange(prefix: Buffer, from?: Stamp, until?: Stamp): KeyRange {
    if (from) checkStamp(from);
    if (until) checkStamp(until);
    // Every key of a stamp starts with prefix ‖ versionstamp(stamp ‖ 0000), so
    // that is the least of them, and the same ‖ 0xff bounds them all.
    const start = from ? withStamp(prefix, from) : prefix;
    const end = until ? concat([withStamp(prefix, until), AFTER]) : concat([prefix, AFTER]);
    return { start, end };
  }

  /**
   * Every write of an append batch committed at `stamp` (on FoundationDB a
   * placeholder the commit fills in, see {@link Put}). `stored` holds the
   * positions of event_ids already in the store, looked up by the backend for
   * {@link idsToCheck}; an id repeated within the batch takes its first
   * occurrence's position. Stored events get consecutive block indices in
   * batch order.
   */
  planAppend(stamp: Stamp, items: readonly AppendItem[], stored: ReadonlyMap<string, Position> = new Map(), options: { readonly idsApart?: boolean } = {}): AppendPlan {
    const idsApart = options.idsApart === true;
    checkStamp(stamp);
    const positions: Position[] = new Array<Position>(items.length);
    // One buffer of the batch's own for its positions (not Node's shared pool,
    // so a caller may keep or transfer them), each position a view of it.
    const slab = Buffer.allocUnsafeSlow(POSITION_BYTES * items.length);
    const duplicate: boolean[] = new Array<boolean>(items.length);
    const fresh: AppendItem[] = [];
    const freshPositions: Position[] = [];
    // Only ids the caller supplied can repeat (generated ids are fresh uuid v7s).
    const firstInBatch = new Map<string, Position>();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (!Number.isSafeInteger(item.timestampMs)) throw new RangeError(`timestampMs must be an integer number of milliseconds, got ${item.timestampMs}`);
      if (item.checkDuplicate) {
        const known = stored.get(item.eventId) ?? firstInBatch.get(item.eventId);
        if (known) {
          positions[i] = known;
          duplicate[i] = true;
          continue;
        }
      }
      const position = slab.subarray(fresh.length * POSITION_BYTES, (fresh.length + 1) * POSITION_BYTES);
      stamp.copy(position, 0, 0, STAMP_BYTES);
      position.writeUInt16BE(fresh.length, STAMP_BYTES);
      positions[i] = position;
      duplicate[i] = false;
      fresh.push(item);
      freshPositions.push(position);
      if (item.checkDuplicate) firstInBatch.set(item.eventId, position);
    }
    if (fresh.length > MAX_BLOCK_EVENTS) throw new RangeError(`a batch holds at most ${MAX_BLOCK_EVENTS} events, got ${fresh.length}`);
    const puts: Put[] = [];
    let auditEntries = 0;
    if (fresh.length > 0) {
      const blockStampAt = this.#ev.length + 1;
      const chunks = chunkValue(encodeBlock(fresh));
      for (let c = 0; c < chunks.length; c++) puts.push({ key: this.blockKey(stamp, c), value: chunks[c]!, stampIn: 'key', stampOffset: blockStampAt });

      const byTenant = new Map<string, number[]>();
      const byMs = new Map<number, number[]>();
      const audits: AuditEntryToWrite[] = [];
      for (let i = 0; i < fresh.length; i++) {
        const item = fresh[i]!;
        // The value is the position returned for the item, so patchStamp() fixes both; its stamp is at offset 0.
        if (!idsApart) puts.push({ key: this.idKey(item.eventId), value: freshPositions[i]!, stampIn: 'value', stampOffset: 0 });
        if (item.tenantId !== null) pushTo(byTenant, item.tenantId, i);
        pushTo(byMs, item.timestampMs, i);
        if (item.auditId !== null) audits.push({ index: i, timestampMs: item.timestampMs, tenantId: item.tenantId, auditId: item.auditId });
      }
      for (const [tenantId, indices] of byTenant) {
        const key = this.tenantKey(tenantId, stamp);
        puts.push({ key, value: encodeIndexList(indices), stampIn: 'key', stampOffset: key.length - VERSIONSTAMP_ITEM_BYTES + 1 });
      }
      for (const [ms, indices] of byMs) {
        const key = this.timeKey(ms, stamp);
        puts.push({ key, value: encodeIndexList(indices), stampIn: 'key', stampOffset: key.length - VERSIONSTAMP_ITEM_BYTES + 1 });
      }
      if (audits.length > 0) {
        const auditChunks = chunkValue(encodeAuditBlock(audits));
        for (let c = 0; c < auditChunks.length; c++) puts.push({ key: this.auditKey(stamp, c), value: auditChunks[c]!, stampIn: 'key', stampOffset: this.#au.length + 1 });
        auditEntries = audits.length;
      }
    }
    return { puts, ids: idsApart ? { items: fresh, positions: freshPositions } : null, result: { positions, duplicate }, events: fresh.length, auditEntries };
  }
}

/**
 * Writes `stamp` into every key and value of a plan built with a placeholder
 * stamp, and so into the positions of its result (they are the `id` values).
 * lmdb builds a batch's plan before its write transaction starts and patches
 * it inside, so the write lock is held for the puts alone.
 */
export function patchStamp(plan: AppendPlan, stamp: Stamp): void {
  checkStamp(stamp);
  for (const put of plan.puts) {
    if (put.stampIn === 'key') stamp.copy(put.key, put.stampOffset, 0, STAMP_BYTES);
    else if (put.stampIn === 'value') stamp.copy(put.value, put.stampOffset, 0, STAMP_BYTES);
  }
  // Without id puts, the positions (the id values) are patched here.
  if (plan.ids !== null) for (const position of plan.ids.positions) stamp.copy(position, 0, 0, STAMP_BYTES);
}

function pushTo<K>(map: Map<K, number[]>, key: K, index: number): void {
  const list = map.get(key);
  if (list) list.push(index);
  else map.set(key, [index]);
}

/** The event_ids of a batch that must be looked up before planAppend: supplied by the caller, once each. */
export function idsToCheck(items: readonly AppendItem[]): string[] {
  const ids = new Set<string>();
  for (const item of items) if (item.checkDuplicate) ids.add(item.eventId);
  return [...ids];
}

// ---------------------------------------------------------------------------
// Chunks

/** Splits a value into chunks of at most MAX_VALUE_BYTES (views, not copies); an empty value is one empty chunk. */
export function chunkValue(value: Buffer, maxBytes = MAX_VALUE_BYTES): Buffer[] {
  if (value.length <= maxBytes) return [value];
  const chunks: Buffer[] = [];
  for (let at = 0; at < value.length; at += maxBytes) chunks.push(value.subarray(at, Math.min(at + maxBytes, value.length)));
  return chunks;
}

/** Reassembles chunks read in key order. */
export function joinChunks(chunks: readonly Buffer[]): Buffer {
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}

/** One value gathered from its chunks: whole, or the reason it cannot be (a chunk missing or out of order). */
export type Gathered<K> = { readonly id: K; readonly value: Buffer; readonly corrupt?: undefined } | { readonly id: K; readonly value?: undefined; readonly corrupt: StoreCorruptError };

/**
 * Gathers chunked values (blocks, audit blocks, dead letters) from keys read
 * in key order, where the chunks of one value are consecutive and numbered
 * from 0. `add` hands back the previous value once a key of the next one
 * arrives, `finish` the last. A value whose chunk numbers do not run 0, 1, 2,
 * ... comes back as `corrupt` (coded StoreCorruptError) instead of aborting
 * the scan, so a reader reports it and goes on with the next value.
 */
export class ChunkGatherer<K> {
  readonly #same: (a: K, b: K) => boolean;
  readonly #describe: (id: K) => string;
  #id: K | undefined;
  #chunks: Buffer[] = [];
  #problem: string | null = null;

  constructor(same: (a: K, b: K) => boolean, describe: (id: K) => string) {
    this.#same = same;
    this.#describe = describe;
  }

  add(id: K, chunk: number, value: Buffer): Gathered<K> | null {
    let done: Gathered<K> | null = null;
    if (this.#id !== undefined && !this.#same(this.#id, id)) done = this.finish();
    if (this.#id === undefined) this.#id = id;
    if (this.#problem === null && chunk !== this.#chunks.length) this.#problem = `chunk ${chunk} where ${this.#chunks.length} was expected`;
    this.#chunks.push(value);
    return done;
  }

  /** The value being gathered, if any, as it stands; the gatherer is then empty. */
  finish(): Gathered<K> | null {
    const id = this.#id;
    if (id === undefined) return null;
    const chunks = this.#chunks;
    const problem = this.#problem;
    this.#id = undefined;
    this.#chunks = [];
    this.#problem = null;
    if (problem !== null) return { id, corrupt: new StoreCorruptError(`${this.#describe(id)}: ${problem}`) };
    return { id, value: joinChunks(chunks) };
  }
}

/** Gathers blocks (or audit blocks) by stamp. */
export function blockGatherer(what = 'block'): ChunkGatherer<Stamp> {
  return new ChunkGatherer<Stamp>((a, b) => a.equals(b), (stamp) => `${what} ${stamp.toString('hex')}`);
}

/** Which dead letter a key belongs to. */
export interface DeadLetterId {
  readonly consumer: string;
  readonly position: Position;
}

/** Gathers dead letters by consumer and position. */
export function deadLetterGatherer(): ChunkGatherer<DeadLetterId> {
  return new ChunkGatherer<DeadLetterId>(
    (a, b) => a.consumer === b.consumer && a.position.equals(b.position),
    (id) => `dead letter ${id.consumer}/${id.position.toString('hex')}`,
  );
}

/** The chunks of a block, other than the first, that hold the events of `spans`. */
export function chunksOfSpans(spans: readonly EventSpan[]): number[] {
  const wanted = new Set<number>();
  for (const span of spans) {
    if (span.length === 0) continue;
    const last = Math.floor((span.start + span.length - 1) / MAX_VALUE_BYTES);
    for (let c = Math.max(1, Math.floor(span.start / MAX_VALUE_BYTES)); c <= last; c++) wanted.add(c);
  }
  return [...wanted].sort((a, b) => a - b);
}

/** One event copied out of its block's chunks. */
export interface SpanEvent {
  readonly index: number;
  readonly bytes: Buffer;
  readonly timestampMs: number;
}

/**
 * Copies the events of `spans` (ascending, from `blockSpans`) out of a block's
 * chunks into one buffer of their own, each event a view of it. `chunkAt(c)`
 * gives chunk c, or undefined when it is not stored; it is called once each
 * time the chunk needed changes, and its result is used before the next call
 * (lmdb hands out memory valid only until its next read). A chunk missing, or
 * ending before the event does, is a StoreCorruptError.
 */
export function copySpans(stamp: Stamp, spans: readonly EventSpan[], chunkAt: (chunk: number) => Buffer | undefined): SpanEvent[] {
  let total = 0;
  for (const span of spans) total += span.length;
  const slab = Buffer.allocUnsafeSlow(total);
  let slabAt = 0;
  let chunkNo = -1;
  let chunk: Buffer | undefined;
  const events: SpanEvent[] = [];
  for (const span of spans) {
    const bytes = slab.subarray(slabAt, slabAt + span.length);
    slabAt += span.length;
    let copied = 0;
    while (copied < span.length) {
      const at = span.start + copied;
      const wanted = Math.floor(at / MAX_VALUE_BYTES);
      if (wanted !== chunkNo) {
        chunk = chunkAt(wanted);
        chunkNo = wanted;
      }
      if (chunk === undefined) throw new StoreCorruptError(`block ${stamp.toString('hex')} has no chunk ${wanted}`);
      const from = at - wanted * MAX_VALUE_BYTES;
      // A view with explicit bounds: the buffer lmdb's getBinaryFast returns is
      // larger than its `length` says, which Buffer#copy misreads at the end.
      const piece = chunk.subarray(from, Math.min(chunk.length, from + span.length - copied));
      if (piece.length === 0) throw new StoreCorruptError(`block ${stamp.toString('hex')}: chunk ${wanted} ends before event ${span.index}`);
      bytes.set(piece, copied);
      copied += piece.length;
    }
    events.push({ index: span.index, bytes, timestampMs: span.timestampMs });
  }
  return events;
}

// ---------------------------------------------------------------------------
// Blocks
//
//   u8 format (1) | u32 count | count × u32 byte length | count × f64 timestamp_ms | events back to back
//
// The lengths let a reader slice out one event's bytes without decoding the
// block, and the timestamps let a time-bounded replay filter without decoding
// either. What follows the header is valid `codec.decodeMany` input.

export interface BlockEvent {
  readonly bytes: Buffer;
  readonly timestampMs: number;
}

export function encodeBlock(events: readonly BlockEvent[]): Buffer {
  const count = events.length;
  // `bytes` is read once per event: an accepted event makes a new view on each read.
  const bodies = new Array<Buffer>(count);
  let length = BLOCK_HEADER_BYTES + count * 12;
  for (let i = 0; i < count; i++) length += (bodies[i] = events[i]!.bytes).length;
  const out = Buffer.allocUnsafe(length);
  out[0] = BLOCK_FORMAT;
  out.writeUInt32BE(count, 1);
  let lengthAt = BLOCK_HEADER_BYTES;
  let timeAt = BLOCK_HEADER_BYTES + count * 4;
  let bodyAt = BLOCK_HEADER_BYTES + count * 12;
  for (let i = 0; i < count; i++) {
    const body = bodies[i]!;
    out.writeUInt32BE(body.length, lengthAt);
    lengthAt += 4;
    out.writeDoubleBE(events[i]!.timestampMs, timeAt);
    timeAt += 8;
    bodyAt += body.copy(out, bodyAt);
  }
  return out;
}

/** A block parsed once: events are views into the block's buffer. */
export class DecodedBlock {
  readonly count: number;
  readonly #block: Buffer;
  readonly #offsets: Uint32Array;

  constructor(block: Buffer) {
    if (block.length < BLOCK_HEADER_BYTES || block[0] !== BLOCK_FORMAT) throw new StoreCorruptError(`unknown block format ${block[0]} (${block.length} bytes)`);
    const count = block.readUInt32BE(1);
    const bodyAt = BLOCK_HEADER_BYTES + count * 12;
    if (bodyAt > block.length) throw new StoreCorruptError(`a block of ${count} events is ${block.length} bytes, shorter than its header`);
    const offsets = new Uint32Array(count + 1);
    let at = bodyAt;
    for (let i = 0; i < count; i++) {
      offsets[i] = at;
      at += block.readUInt32BE(BLOCK_HEADER_BYTES + i * 4);
    }
    offsets[count] = at;
    if (at !== block.length) throw new StoreCorruptError(`a block's events add up to ${at} bytes, the block is ${block.length}`);
    this.count = count;
    this.#block = block;
    this.#offsets = offsets;
  }

  bytes(index: number): Buffer {
    return this.#block.subarray(this.#offsets[index], this.#offsets[index + 1]);
  }

  timestampMs(index: number): number {
    return this.#block.readDoubleBE(BLOCK_HEADER_BYTES + this.count * 4 + index * 8);
  }

  /** The events back to back: `codec.decodeMany(block.body)`. */
  get body(): Buffer {
    return this.#block.subarray(this.#offsets[0], this.#offsets[this.count]);
  }
}

/**
 * Decodes a block for a scan. A block that cannot be decoded becomes one
 * `corrupt` entry at its first position, so the scan reports it and goes on.
 */
export function decodeBlockOrReport(block: Gathered<Stamp>, page: StoredEvent[]): DecodedBlock | null {
  const stamp = block.id;
  try {
    if (block.corrupt) throw block.corrupt;
    return new DecodedBlock(block.value);
  } catch (err) {
    const corrupt = err instanceof StoreCorruptError ? err : new StoreCorruptError((err as Error)?.message ?? String(err), err);
    page.push({ position: positionOf(stamp, 0), bytes: Buffer.alloc(0), corrupt });
    return null;
  }
}

/** Where one event sits in its (joined) block. */
export interface EventSpan {
  readonly index: number;
  /** Byte offset in the block: the event is in chunks floor(start / MAX_VALUE_BYTES) onwards. */
  readonly start: number;
  readonly length: number;
  readonly timestampMs: number;
}

/**
 * The spans of the events at `indices` (ascending) of a block, from its first
 * chunk alone, so a reader can fetch only the chunks that hold them. Null when
 * the header does not fit in the first chunk (blocks of more than ~8 300 events).
 */
export function blockSpans(firstChunk: Buffer, indices: readonly number[]): { count: number; spans: EventSpan[] } | null {
  const count = blockCount(firstChunk);
  const bodyAt = BLOCK_HEADER_BYTES + count * 12;
  if (bodyAt > firstChunk.length) return null;
  const spans: EventSpan[] = [];
  let at = bodyAt;
  let next = 0;
  for (let i = 0; i < count && next < indices.length; i++) {
    const length = firstChunk.readUInt32BE(BLOCK_HEADER_BYTES + i * 4);
    if (indices[next] === i) {
      spans.push({ index: i, start: at, length, timestampMs: firstChunk.readDoubleBE(BLOCK_HEADER_BYTES + count * 4 + i * 8) });
      next++;
    }
    at += length;
  }
  if (next < indices.length) throw new StoreCorruptError(`an index names event ${indices[next]} of a block of ${count}`);
  return { count, spans };
}

/** The number of events in a block, read from its first chunk alone. */
export function blockCount(firstChunk: Buffer): number {
  if (firstChunk.length < BLOCK_HEADER_BYTES || firstChunk[0] !== BLOCK_FORMAT) throw new StoreCorruptError(`unknown block format ${firstChunk[0]}`);
  return firstChunk.readUInt32BE(1);
}

// ---------------------------------------------------------------------------
// Audit blocks
//
//   u8 format (2) | u32 count | per entry: u16 index | f64 timestamp_ms |
//   u16 tenant byte length (0xffff: none) | tenant UTF-8 | audit id (36 bytes)
//
// The entry's record (event/audit.ts: the audit id, then the event's bytes) is
// made when the log is read, from the event at the same stamp and index: the
// event is stored once, not once more per audit entry. Format 1, still read,
// had a u32 length and the whole record in place of the audit id. The
// timestamp and tenant are repeated here so audit queries filter without
// decoding entries or reading the event blocks.

export interface AuditFrame {
  /** The audited event's index in its block. */
  readonly index: number;
  readonly timestampMs: number;
  readonly tenantId: string | null;
  readonly auditId: string;
  /** The whole record, in blocks of the first format; null in the current one (read the event to make it). */
  readonly record: Buffer | null;
}

/** An entry to write. */
export interface AuditEntryToWrite {
  readonly index: number;
  readonly timestampMs: number;
  readonly tenantId: string | null;
  readonly auditId: string;
}

export function encodeAuditBlock(entries: readonly AuditEntryToWrite[]): Buffer {
  // Tenant ids are measured, then written straight into the block: no buffer per entry.
  const tenantBytes = new Uint16Array(entries.length);
  let length = BLOCK_HEADER_BYTES;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const bytes = e.tenantId === null ? 0 : Buffer.byteLength(e.tenantId, 'utf8');
    if (bytes >= NO_TENANT) throw new RangeError(`a tenant id is at most ${NO_TENANT - 1} bytes`);
    tenantBytes[i] = bytes;
    length += 2 + 8 + 2 + bytes + AUDIT_ID_BYTES;
  }
  const out = Buffer.allocUnsafe(length);
  out[0] = AUDIT_FORMAT;
  out.writeUInt32BE(entries.length, 1);
  let at = BLOCK_HEADER_BYTES;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    at = out.writeUInt16BE(e.index, at);
    at = out.writeDoubleBE(e.timestampMs, at);
    if (e.tenantId === null) {
      at = out.writeUInt16BE(NO_TENANT, at);
    } else {
      at = out.writeUInt16BE(tenantBytes[i]!, at);
      at += out.write(e.tenantId, at, tenantBytes[i]!, 'utf8');
    }
    at = writeAuditId(out, at, e.auditId);
  }
  return out;
}

export function decodeAuditBlock(block: Buffer): AuditFrame[] {
  const corrupt = () => new StoreCorruptError(`malformed audit block (${block.length} bytes)`);
  const format = block[0];
  if (block.length < BLOCK_HEADER_BYTES || (format !== AUDIT_FORMAT && format !== AUDIT_FORMAT_WITH_RECORDS)) throw corrupt();
  const count = block.readUInt32BE(1);
  const frames: AuditFrame[] = [];
  let at = BLOCK_HEADER_BYTES;
  try {
    for (let i = 0; i < count; i++) {
      const index = block.readUInt16BE(at);
      const timestampMs = block.readDoubleBE(at + 2);
      const tenantLength = block.readUInt16BE(at + 10);
      at += 12;
      let tenantId: string | null = null;
      if (tenantLength !== NO_TENANT) {
        if (at + tenantLength > block.length) throw corrupt();
        tenantId = block.toString('utf8', at, at + tenantLength);
        at += tenantLength;
      }
      let record: Buffer | null = null;
      let idEnd = at + AUDIT_ID_BYTES;
      if (format === AUDIT_FORMAT_WITH_RECORDS) {
        const length = block.readUInt32BE(at);
        at += 4;
        if (length <= AUDIT_ID_BYTES) throw corrupt();
        record = block.subarray(at, at + length);
        idEnd = at + AUDIT_ID_BYTES;
        at += length;
      } else {
        at = idEnd;
      }
      if (at > block.length) throw corrupt();
      frames.push({ index, timestampMs, tenantId, auditId: block.toString('latin1', idEnd - AUDIT_ID_BYTES, idEnd), record });
    }
  } catch (err) {
    if (err instanceof StoreCorruptError) throw err;
    throw corrupt();
  }
  if (at !== block.length) throw corrupt();
  return frames;
}

/**
 * The stored entries of audit frames of one block: each record in place (first
 * format), or made of the audit id and the event's bytes, which `events` gives
 * for the indices `eventsNeededBy(frames)` named, in that order.
 */
export function auditEntries(stamp: Stamp, frames: readonly AuditFrame[], events: readonly Buffer[]): StoredAuditEntry[] {
  let next = 0;
  return frames.map((frame) => ({ position: positionOf(stamp, frame.index), bytes: frame.record ?? encodeAuditRecord(frame.auditId, events[next++]!) }));
}

/** The event indices `auditEntries` needs read for these frames. */
export function eventsNeededBy(frames: readonly AuditFrame[]): number[] {
  const indices: number[] = [];
  for (const frame of frames) if (frame.record === null) indices.push(frame.index);
  return indices;
}

// ---------------------------------------------------------------------------
// Index values

export function encodeIndexList(indices: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(indices.length * 2);
  for (let i = 0; i < indices.length; i++) out.writeUInt16BE(indices[i]!, i * 2);
  return out;
}

export function decodeIndexList(value: Buffer): number[] {
  if (value.length % 2 !== 0) throw new StoreCorruptError(`an index list is ${value.length} bytes, not a multiple of 2`);
  const indices = new Array<number>(value.length / 2);
  for (let i = 0; i < indices.length; i++) indices[i] = value.readUInt16BE(i * 2);
  return indices;
}

// ---------------------------------------------------------------------------
// Dead letters
//
// The record in the codec's shared dead-letter structure (event, consumer,
// error, attempts, failed_at), then the tenant id as a second msgpack value:
// the shared structure stays as it is and the tenant costs a few bytes rather
// than an in-band structure definition. The key holds consumer and position.

interface StoredDeadLetter {
  event: Uint8Array;
  consumer: string;
  error: SerializedError;
  attempts: number;
  failed_at: string;
}

export function encodeDeadLetter(codec: Codec, record: DeadLetterRecord): Buffer {
  const { code, name, message, stack } = record.error;
  // Exactly the shared structures' keys, in order, so no structure is written in-band.
  const stored: StoredDeadLetter = {
    event: record.event,
    consumer: record.consumer,
    error: { code, name, message, stack },
    attempts: record.attempts,
    failed_at: record.failedAt,
  };
  return Buffer.concat([codec.encode(stored), codec.encode(record.tenantId)]);
}

/**
 * Decodes gathered dead letters, keeping those of `query.tenantId` (all when
 * absent). One that cannot be decoded goes to `query.onCorrupt` and is
 * skipped; without a handler it is thrown.
 */
export function* decodeDeadLetters(
  codec: Codec,
  letters: readonly Gathered<DeadLetterId>[],
  query: { readonly tenantId?: string | undefined; readonly onCorrupt?: CorruptHandler | undefined },
): Generator<DeadLetterRecord> {
  for (const letter of letters) {
    let record: DeadLetterRecord;
    try {
      if (letter.corrupt) throw letter.corrupt;
      record = decodeDeadLetter(codec, letter.id, letter.value);
    } catch (err) {
      const error = err instanceof StoreCorruptError ? err : new StoreCorruptError(`dead letter ${letter.id.consumer}/${letter.id.position.toString('hex')}: ${String(err)}`, err);
      if (query.onCorrupt === undefined) throw error;
      query.onCorrupt(error);
      continue;
    }
    if (query.tenantId === undefined || record.tenantId === query.tenantId) yield record;
  }
}

export function decodeDeadLetter(codec: Codec, key: { consumer: string; position: Position }, value: Buffer): DeadLetterRecord {
  let stored: StoredDeadLetter | undefined;
  let tenantId: unknown;
  try {
    [stored, tenantId] = codec.decodeMany<unknown>(value) as [StoredDeadLetter, unknown];
  } catch (err) {
    throw new StoreCorruptError(`dead letter ${key.consumer}/${key.position.toString('hex')} does not decode`, err);
  }
  if (
    !stored ||
    typeof stored !== 'object' ||
    !(stored.event instanceof Uint8Array) ||
    typeof stored.error !== 'object' ||
    stored.error === null ||
    (tenantId !== null && typeof tenantId !== 'string')
  ) {
    throw new StoreCorruptError(`dead letter ${key.consumer}/${key.position.toString('hex')} is malformed`);
  }
  const error: SerializedError = { code: stored.error.code, name: stored.error.name, message: stored.error.message };
  if (stored.error.stack !== undefined) error.stack = stored.error.stack;
  return {
    consumer: key.consumer,
    position: key.position,
    event: Buffer.from(stored.event.buffer, stored.event.byteOffset, stored.event.byteLength),
    error,
    attempts: stored.attempts,
    failedAt: stored.failed_at,
    tenantId,
  };
}
