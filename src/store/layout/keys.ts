/**
 * The keys of the store's one key/value layout, shared by every backend so
 * that lmdb and FoundationDB hold the same bytes. The folder holds the rest of
 * the layout, one concept per file: positions and stamps, tuple pieces, the
 * append planner, chunks, event blocks, audit blocks, index lists, dead
 * letters, counts. Pure functions over Buffers: nothing here touches a
 * database.
 *
 * Keys are FoundationDB tuples (npm `fdb-tuple`) under a configurable string
 * prefix:
 *
 * ```
 * (prefix,'ev',stamp,chunk)            → one block per commit: the batch's events (encodeBlock), split in chunks
 * (prefix,'id',event_id)               → position (12 bytes)               dedup index and lookup by id, for every
 *                                                                           event but one whose id the bus generated in
 *                                                                           its timestamp's ms (found by time: indexedById)
 * (prefix,'t',tenant_id,stamp)         → uint16BE block indices of that tenant's events in the block
 * (prefix,'ts',timestamp_ms,stamp)     → uint16BE block indices of the events of that millisecond
 * (prefix,'au',stamp,chunk)            → the batch's audit entries (encodeAuditBlockOf), split in chunks
 * (prefix,'dl',consumer,position)      → dead letter (encodeDeadLetter), its first chunk
 * (prefix,'dl',consumer,position,chunk) → the next chunks (1, 2, ...) of a dead letter over MAX_VALUE_BYTES
 * (prefix,'mb',instance)              → membership (groups.ts): expiresAt, the groups the instance runs
 * (prefix,'gr',group)                  → group record (groups.ts): how its cursors started, when it was first seen
 * (prefix,'ls',group,partition)        → lease (groups.ts): owner, expiresAt, fencing epoch
 * (prefix,'cu',group,partition)        → cursor: position (12 bytes), every event of the partition up to it is handled
 * (prefix,'meta','partitions')         → the partition count, uint32BE, recorded by the first coordination
 * (prefix,'meta','head')               → FoundationDB only: `commitEnd` of the last append commit (versionstamped value)
 * (prefix,'meta','counter')            → lmdb's commit counter, uint64BE (lmdb's head is commitEnd of its stamp)
 * (prefix,'meta','count',name)         → running count, int64LE (FoundationDB's atomic add is little-endian)
 * (prefix,'nonce',nonce)               → the commit stamp of the append attempt that wrote it (FoundationDB only, see below)
 * ```
 *
 * Why blocks: see blocks.ts; what a commit writes: append-plan.ts; how
 * instances share groups: ../coordination.ts.
 *
 * `(prefix,'cp',name)` → position held the per-instance checkpoints of the
 * layout before consumer groups; the first coordination of such a store turns
 * them into cursors and clears them (coordination.ts), so only that reads them.
 *
 * `meta/head` is written by every FoundationDB append transaction with
 * SET_VERSIONSTAMPED_VALUE, a blind write that never conflicts, so readers can
 * watch it and read the head without scanning blocks; readers in a
 * transaction read it as a snapshot read, so they do not conflict with
 * appends either. lmdb needs no such key: its head follows from the counter,
 * read in the same transaction.
 *
 * `nonce` keys are the idempotency marks of FoundationDB appends: each attempt
 * of an append transaction writes a random nonce with its commit stamp, so a
 * retry after an unknown commit result can tell its own earlier commit from
 * another writer's (fdb-retries.ts). They live only until the append is over
 * (a later transaction clears them). lmdb never writes them: an lmdb append is
 * one local transaction whose outcome is always known.
 *
 * `stamp` is the 10-byte commit stamp: a FoundationDB commit versionstamp, or
 * on lmdb `counter (uint64BE) ‖ 0x0000`. In keys it is a tuple versionstamp
 * item whose 12 bytes are `stamp ‖ 0x0000`, so FoundationDB can fill it in at
 * commit (`setVersionstampedKey`); each `Put` of a plan (append-plan.ts) says where. The event at
 * index i of a block is at position `stamp ‖ uint16BE(i)`.
 *
 * Values are at most MAX_VALUE_BYTES (limits.ts: FoundationDB's value limit),
 * applied on every backend so the bytes match: blocks, audit blocks and dead
 * letters are chunked (chunks.ts).
 */
import { pack, unpack } from 'fdb-tuple';
import type { Codec } from '../../codec.js';
import { StoreCorruptError } from '../../errors.js';
import type { AppendItem, DeadLetterRecord, Position } from '../store.js';
import { planAppend, type AppendPlan } from './append-plan.js';
import { chunkValue } from './chunks.js';
import type { CountName } from './counts.js';
import { encodeDeadLetter } from './dead-letters.js';
import { STAMP_BYTES, checkPosition, checkStamp, type Stamp } from './positions.js';
import {
  AFTER,
  NO_PREFIX,
  TUPLE_STRING,
  TUPLE_VERSIONSTAMP,
  VERSIONSTAMP_ITEM_BYTES,
  concat,
  stringItemEnd,
  tupleUint,
  withStamp,
  withString,
  withStringBytes,
  fillWithString,
} from './tuple.js';

/** The name item after the prefix of each kind of key. */
export const KEY_NAMES = {
  block: 'ev',
  id: 'id',
  tenant: 't',
  time: 'ts',
  audit: 'au',
  deadLetter: 'dl',
  checkpoint: 'cp',
  member: 'mb',
  group: 'gr',
  lease: 'ls',
  cursor: 'cu',
  meta: 'meta',
  partitions: 'partitions',
  head: 'head',
  count: 'count',
  counter: 'counter',
  nonce: 'nonce',
} as const;

function checkPartition(partition: number): number {
  if (!Number.isInteger(partition) || partition < 0 || partition > 0xffffffff)
    throw new RangeError(`a partition is an integer from 0 to 4294967295, got ${partition}`);
  return partition;
}

function decodeGroupPartition(key: Buffer, prefix: Buffer, what: string): { group: string; partition: number } {
  let decoded: unknown[] = [];
  try {
    decoded = unpack(key.subarray(prefix.length)) as unknown[];
  } catch {
    decoded = [];
  }
  const [group, partition] = decoded;
  if (decoded.length !== 2 || typeof group !== 'string' || typeof partition !== 'number')
    throw new StoreCorruptError(`not a ${what} key: ${key.toString('hex')}`);
  return { group, partition };
}

/** A key range: `start` inclusive, `end` exclusive. */
export interface KeyRange {
  readonly start: Buffer;
  readonly end: Buffer;
}

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
  readonly #mb: Buffer;
  readonly #gr: Buffer;
  readonly #ls: Buffer;
  readonly #cu: Buffer;
  /** `(prefix,'meta','partitions')`: the partition count of the consumer groups. */
  readonly partitionsKey: Buffer;
  /** `(prefix,'meta','head')`: the last append commit's end, on FoundationDB. */
  readonly headKey: Buffer;
  readonly #count: Buffer;
  readonly #nonce: Buffer;
  /** `(prefix,'meta','counter')`: lmdb's commit counter. */
  readonly counterKey: Buffer;

  constructor(prefix: string) {
    if (typeof prefix !== 'string' || prefix.length === 0)
      throw new TypeError(`the store prefix must be a non-empty string, got ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
    const n = KEY_NAMES;
    this.#ev = pack([prefix, n.block]);
    this.#id = pack([prefix, n.id]);
    this.#t = pack([prefix, n.tenant]);
    this.#ts = pack([prefix, n.time]);
    this.#au = pack([prefix, n.audit]);
    this.#dl = pack([prefix, n.deadLetter]);
    this.#cp = pack([prefix, n.checkpoint]);
    this.#mb = pack([prefix, n.member]);
    this.#gr = pack([prefix, n.group]);
    this.#ls = pack([prefix, n.lease]);
    this.#cu = pack([prefix, n.cursor]);
    this.partitionsKey = pack([prefix, n.meta, n.partitions]);
    this.headKey = pack([prefix, n.meta, n.head]);
    this.#count = pack([prefix, n.meta, n.count]);
    this.#nonce = pack([prefix, n.nonce]);
    this.counterKey = pack([prefix, n.meta, n.counter]);
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

  /** Offset of the stamp in an audit key. */
  get auditKeyStampOffset(): number {
    return this.#au.length + 1;
  }

  decodeBlockKey(key: Buffer): { stamp: Stamp; chunk: number } {
    const at = this.#ev.length;
    if (key[at] !== TUPLE_VERSIONSTAMP || key.length <= at + VERSIONSTAMP_ITEM_BYTES)
      throw new StoreCorruptError(`not a block key: ${key.toString('hex')}`);
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
    if (key[at] !== TUPLE_VERSIONSTAMP || key.length <= at + VERSIONSTAMP_ITEM_BYTES)
      throw new StoreCorruptError(`not an audit key: ${key.toString('hex')}`);
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
    return chunkValue(encodeDeadLetter(codec, record)).map((value, chunk) => ({
      key: this.deadLetterKey(record.consumer, record.position, chunk),
      value,
    }));
  }

  memberKey(instance: string): Buffer {
    return withString(this.#mb, instance);
  }

  decodeMemberKey(key: Buffer): string {
    return this.#decodeName(key, this.#mb, 'membership');
  }

  memberRange(): KeyRange {
    return { start: this.#mb, end: concat([this.#mb, AFTER]) };
  }

  groupKey(group: string): Buffer {
    return withString(this.#gr, group);
  }

  decodeGroupKey(key: Buffer): string {
    return this.#decodeName(key, this.#gr, 'group');
  }

  groupRange(): KeyRange {
    return { start: this.#gr, end: concat([this.#gr, AFTER]) };
  }

  leaseKey(group: string, partition: number): Buffer {
    return concat([withString(this.#ls, group), tupleUint(checkPartition(partition))]);
  }

  decodeLeaseKey(key: Buffer): { group: string; partition: number } {
    return decodeGroupPartition(key, this.#ls, 'lease');
  }

  /** One group's leases, or every group's. */
  leaseRange(group?: string): KeyRange {
    const start = group === undefined ? this.#ls : withString(this.#ls, group);
    return { start, end: concat([start, AFTER]) };
  }

  cursorKey(group: string, partition: number): Buffer {
    return concat([withString(this.#cu, group), tupleUint(checkPartition(partition))]);
  }

  decodeCursorKey(key: Buffer): { group: string; partition: number } {
    return decodeGroupPartition(key, this.#cu, 'cursor');
  }

  /** One group's cursors, or every group's. */
  cursorRange(group?: string): KeyRange {
    const start = group === undefined ? this.#cu : withString(this.#cu, group);
    return { start, end: concat([start, AFTER]) };
  }

  #decodeName(key: Buffer, prefix: Buffer, what: string): string {
    let name: unknown;
    try {
      name = unpack(key.subarray(prefix.length))[0];
    } catch {
      name = undefined;
    }
    if (typeof name !== 'string') throw new StoreCorruptError(`not a ${what} key: ${key.toString('hex')}`);
    return name;
  }

  /** The old layout's checkpoint keys: read only to migrate them (see the top of this file). */
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

  /** Where an append attempt's nonce is (FoundationDB appends only, see the top of this file). */
  nonceKey(nonce: string): Buffer {
    return withString(this.#nonce, nonce);
  }

  nonceRange(): KeyRange {
    return { start: this.#nonce, end: concat([this.#nonce, AFTER]) };
  }

  /** Every write of an append batch committed at `stamp`: see append-plan.ts. */
  planAppend(
    stamp: Stamp,
    items: readonly AppendItem[],
    stored: ReadonlyMap<string, Position> = new Map(),
    options: { readonly idsApart?: boolean; readonly fresh?: boolean } = {},
  ): AppendPlan {
    return planAppend(this, stamp, items, stored, options);
  }
}
