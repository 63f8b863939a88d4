/**
 * The append planner: every write of a batch committed at one stamp, built
 * before the commit (on FoundationDB the cluster fills the stamp in; lmdb
 * patches it inside its write transaction).
 *
 * A commit writes one block, one `t`/`ts` key per tenant/per millisecond
 * present in the batch (not per event), and one `id` key per event whose id
 * was supplied, or generated in another millisecond than its timestamp
 * (indexedById): a generated id is found through the time index.
 */
import { generatedIdTime } from '../../event/ids.js';
import { MAX_BLOCK_EVENTS } from '../limits.js';
import { POSITION_BYTES, type AppendItem, type AppendResult, type Position } from '../store.js';
import { encodeAuditBlockOf } from './audit-blocks.js';
import { encodeBlock } from './blocks.js';
import { chunkValue } from './chunks.js';
import { encodeIndexList } from './index-lists.js';
import type { StoreLayout } from './keys.js';
import { STAMP_BYTES, checkStamp, positionOf, type Stamp } from './positions.js';
import { VERSIONSTAMP_ITEM_BYTES } from './tuple.js';

/** One write: FoundationDB fills the 10-byte stamp in at `stampOffset` of the key or value at commit; lmdb writes it as built. */
export interface Put {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly stampIn: 'key' | 'value' | 'none';
  /** Byte offset of the stamp in the key or value; -1 when `stampIn` is 'none'. */
  readonly stampOffset: number;
}

export interface AppendPlan {
  /** Every write of the batch (but the id index when planned with `idsApart`). */
  readonly puts: Put[];
  /**
   * With `idsApart`: the id index writes, left for the caller to make one by
   * one (each fresh item's id key, from `scratchIdKey`, to its position)
   * instead of a key buffer and a put per event kept until the transaction.
   */
  readonly ids: {
    /** The fresh items, in block order. */
    readonly items: readonly AppendItem[];
    /** Their positions (patched by patchStamp), or null: item i is at `positionOf(stamp, i)`. */
    readonly positions: readonly Position[] | null;
    /** The block indices of the items that need an id key (indexedById). */
    readonly indexed: readonly number[];
  } | null;
  /** What append() returns: one position and duplicate flag per item (with `fresh`, a FreshResult). */
  readonly result: AppendResult;
  /** Events and audit entries the batch adds (duplicates excluded). */
  readonly events: number;
  readonly auditEntries: number;
}

/**
 * Every write of an append batch committed at `stamp` (on FoundationDB a
 * placeholder the commit fills in, see {@link Put}). `stored` holds the
 * positions of event_ids already in the store, looked up by the backend for
 * {@link idsToCheck}; an id repeated within the batch takes its first
 * occurrence's position. Stored events get consecutive block indices in
 * batch order.
 */
export function planAppend(
  layout: StoreLayout,
  stamp: Stamp,
  items: readonly AppendItem[],
  stored: ReadonlyMap<string, Position> = new Map(),
  options: { readonly idsApart?: boolean; readonly fresh?: boolean } = {},
): AppendPlan {
  const idsApart = options.idsApart === true;
  checkStamp(stamp);
  if (options.fresh === true) return planFresh(layout, stamp, items, idsApart);
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
    checkTimestamp(item);
    if (item.checkDuplicate) {
      const known = stored.get(item.eventId) ?? firstInBatch.get(item.eventId);
      if (known) {
        positions[i] = known;
        duplicate[i] = true;
        continue;
      }
    }
    // Byte by byte: Buffer#copy and writeUInt16BE cost more than these 12 stores, once per event.
    const at = fresh.length * POSITION_BYTES;
    for (let b = 0; b < STAMP_BYTES; b++) slab[at + b] = stamp[b]!;
    slab[at + STAMP_BYTES] = fresh.length >>> 8;
    slab[at + STAMP_BYTES + 1] = fresh.length & 0xff;
    const position = slab.subarray(at, at + POSITION_BYTES);
    positions[i] = position;
    duplicate[i] = false;
    fresh.push(item);
    freshPositions.push(position);
    if (item.checkDuplicate) firstInBatch.set(item.eventId, position);
  }
  const { puts, auditEntries } = planPuts(layout, stamp, fresh, idsApart ? null : freshPositions);
  return {
    puts,
    ids: idsApart ? { items: fresh, positions: freshPositions, indexed: indexedOf(fresh) } : null,
    result: { positions, duplicate },
    events: fresh.length,
    auditEntries,
  };
}

/**
 * A batch none of whose items is checked for a duplicate (lmdb, when every
 * event_id was generated here): no position is built. Its result is a
 * FreshResult over a stamp of the plan's own, which patchStamp() fixes.
 */
function planFresh(layout: StoreLayout, stamp: Stamp, items: readonly AppendItem[], idsApart: boolean): AppendPlan {
  if (!idsApart) throw new RangeError('a fresh plan leaves the id index to its caller (idsApart)');
  for (const item of items) {
    if (item.checkDuplicate) throw new RangeError(`event ${item.eventId} is checked for a duplicate: not a fresh batch`);
    checkTimestamp(item);
  }
  const own = Buffer.from(stamp);
  const { puts, auditEntries } = planPuts(layout, own, items, null);
  const ids = { items, positions: null, indexed: indexedOf(items) };
  return { puts, ids, result: new FreshResult(own, items.length), events: items.length, auditEntries };
}

/**
 * What an append of fresh events returns: their commit's stamp, with the
 * positions and duplicate flags of the contract built only when read.
 */
export class FreshResult implements AppendResult {
  readonly fresh: Stamp;
  headBefore?: Position | null;
  readonly #count: number;
  #positions: Position[] | null = null;
  #duplicate: boolean[] | null = null;

  constructor(stamp: Stamp, count: number) {
    this.fresh = stamp;
    this.#count = count;
  }

  get positions(): Position[] {
    return (this.#positions ??= Array.from({ length: this.#count }, (_, i) => positionOf(this.fresh, i)));
  }

  get duplicate(): boolean[] {
    return (this.#duplicate ??= new Array<boolean>(this.#count).fill(false));
  }
}

/** Every write of the fresh events at `stamp`; the id index too unless `idPositions` is null (idsApart). */
function planPuts(
  layout: StoreLayout,
  stamp: Stamp,
  fresh: readonly AppendItem[],
  idPositions: readonly Position[] | null,
): { puts: Put[]; auditEntries: number } {
  if (fresh.length > MAX_BLOCK_EVENTS) throw new RangeError(`a batch holds at most ${MAX_BLOCK_EVENTS} events, got ${fresh.length}`);
  const puts: Put[] = [];
  let auditEntries = 0;
  if (fresh.length > 0) {
    const blockStampAt = layout.blockKeyStampOffset;
    const chunks = chunkValue(encodeBlock(fresh));
    for (let c = 0; c < chunks.length; c++)
      puts.push({ key: layout.blockKey(stamp, c), value: chunks[c]!, stampIn: 'key', stampOffset: blockStampAt });

    const byTenant = new Map<string, number[]>();
    const byMs = new Map<number, number[]>();
    const audited: number[] = [];
    for (let i = 0; i < fresh.length; i++) {
      const item = fresh[i]!;
      // The value is the position returned for the item, so patchStamp() fixes both; its stamp is at offset 0.
      if (idPositions !== null && indexedById(item))
        puts.push({ key: layout.idKey(item.eventId), value: idPositions[i]!, stampIn: 'value', stampOffset: 0 });
      if (item.tenantId !== null) pushTo(byTenant, item.tenantId, i);
      pushTo(byMs, item.timestampMs, i);
      if (item.auditId !== null) audited.push(i);
    }
    for (const [tenantId, indices] of byTenant) {
      const key = layout.tenantKey(tenantId, stamp);
      puts.push({ key, value: encodeIndexList(indices), stampIn: 'key', stampOffset: key.length - VERSIONSTAMP_ITEM_BYTES + 1 });
    }
    for (const [ms, indices] of byMs) {
      const key = layout.timeKey(ms, stamp);
      puts.push({ key, value: encodeIndexList(indices), stampIn: 'key', stampOffset: key.length - VERSIONSTAMP_ITEM_BYTES + 1 });
    }
    if (audited.length > 0) {
      const auditChunks = chunkValue(encodeAuditBlockOf(fresh, audited));
      for (let c = 0; c < auditChunks.length; c++)
        puts.push({ key: layout.auditKey(stamp, c), value: auditChunks[c]!, stampIn: 'key', stampOffset: layout.auditKeyStampOffset });
      auditEntries = audited.length;
    }
  }
  return { puts, auditEntries };
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
  // Without id puts, the positions (the id values) are patched here; a fresh plan's own stamp too.
  if (plan.ids?.positions) for (const position of plan.ids.positions) for (let b = 0; b < STAMP_BYTES; b++) position[b] = stamp[b]!;
  if (plan.result instanceof FreshResult) stamp.copy(plan.result.fresh, 0, 0, STAMP_BYTES);
}

function checkTimestamp(item: AppendItem): void {
  if (!Number.isSafeInteger(item.timestampMs))
    throw new RangeError(`timestampMs must be an integer number of milliseconds, got ${item.timestampMs}`);
}

function pushTo<K>(map: Map<K, number[]>, key: K, index: number): void {
  const list = map.get(key);
  if (list) list.push(index);
  else map.set(key, [index]);
}

/**
 * Whether an event needs an id index key: every event but one whose event_id
 * the bus generated in the millisecond of its timestamp. That one is found
 * through the time index at the id's own millisecond (generatedIdTime), which
 * a commit writes anyway: no key per event for the common case, and dedup and
 * lookup stay exact (findGenerated in each backend's reads).
 */
export function indexedById(item: AppendItem): boolean {
  return item.checkDuplicate || generatedIdTime(item.eventId) !== item.timestampMs;
}

function indexedOf(items: readonly AppendItem[]): number[] {
  const indexed: number[] = [];
  for (let i = 0; i < items.length; i++) if (indexedById(items[i]!)) indexed.push(i);
  return indexed;
}

/** The event_ids of a batch that must be looked up before planAppend: supplied by the caller, once each. */
export function idsToCheck(items: readonly AppendItem[]): string[] {
  const ids = new Set<string>();
  for (const item of items) if (item.checkDuplicate) ids.add(item.eventId);
  return [...ids];
}
