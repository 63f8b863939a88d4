/**
 * Appends to FoundationDB. A batch is cut into transactions of at most
 * `store.maxTransactionBytes` (fdb-batches.ts); each writes one block. Every
 * key that holds the commit stamp is written with SET_VERSIONSTAMPED_KEY (or
 * _VALUE for the id index) at the offset the layout's Put gives, so
 * FoundationDB fills in the commit versionstamp: appends from many instances
 * never read a shared counter and never conflict. Counts are atomic adds;
 * the head key (`meta/head`, the commit's end) is a versionstamped value, a
 * blind write that other instances watch (waitForAppend).
 * The only reads are the id index entries of caller-supplied event_ids (the
 * dedup check, in the same transaction) and, in a retry, the nonce of the
 * attempt before it, which no one else writes, so two appends conflict only
 * when they carry the same id. The receipt's positions are patched with the real
 * versionstamp, read after commit.
 *
 * Retries. `db.doTransaction` retries FoundationDB's retryable errors; a
 * retry tells whether an earlier attempt committed by the nonce that attempt
 * wrote with its batch (fdb-retries.ts), so it never stores the batch twice
 * and never takes another writer's commit for its own. Nonces only matter
 * while their append runs: each is cleared afterwards by a later append
 * transaction (at most MAX_NONCE_CLEARS per transaction, counted in the size
 * estimate), or by close().
 */
import type { Codec } from '../codec.js';
import { StoreWriteError } from '../errors.js';
import { generatedIdTime } from '../event/ids.js';
import { MAX_NONCE_CLEARS, limitProblem, splitBatch } from './fdb-batches.js';
import { TRANSACTION_OPTIONS, type Db, type Tn } from './fdb-client.js';
import { findGenerated } from './fdb-scans.js';
import { earlierCommit, newNonce, type AppendAttempt } from './fdb-retries.js';
import { idsToCheck, patchStamp, type AppendPlan, type Put } from './layout/append-plan.js';
import { encodeCount, type CountName } from './layout/counts.js';
import { StoreLayout } from './layout/keys.js';
import { PLACEHOLDER_STAMP, STAMP_BYTES, checkPosition, type Stamp } from './layout/positions.js';
import { tupleString } from './layout/tuple.js';
import { FDB_MAX_TRANSACTION_BYTES } from './limits.js';
import type { AppendItem, AppendResult, Position } from './store.js';

/** The head key's value before the commit fills in the stamp: `stamp ‖ 0xffff`, a commitEnd. */
const HEAD_PLACEHOLDER = Buffer.from([...PLACEHOLDER_STAMP, 0xff, 0xff]);

/** What one attempt of an append transaction decided. */
interface PartOutcome {
  readonly plan: AppendPlan;
  /** The stamp of an earlier attempt found committed. */
  readonly committedAt: Stamp | null;
  /** This attempt's versionstamp, settled after its commit; null when it wrote nothing. */
  readonly versionstamp: { promise: Promise<Buffer> } | null;
}

export class FdbAppender {
  readonly #db: Db;
  readonly #layout: StoreLayout;
  readonly #codec: Codec;
  readonly #maxTransactionBytes: number;
  readonly #prefixBytes: number;
  /** Nonce keys of finished appends, which may be stored: the next append transactions clear them. */
  readonly #staleNonces: Buffer[] = [];

  constructor(db: Db, layout: StoreLayout, codec: Codec, maxTransactionBytes: number) {
    this.#db = db;
    this.#layout = layout;
    this.#codec = codec;
    this.#maxTransactionBytes = maxTransactionBytes;
    this.#prefixBytes = tupleString(layout.prefix).length;
  }

  /** Appends a batch in as few transactions as its size allows (the store reports failures). */
  async append(items: readonly AppendItem[]): Promise<AppendResult> {
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
  }

  /** One transaction: the batch's block, its indexes and audit block, idempotent across retries. */
  async #appendPart(items: readonly AppendItem[]): Promise<AppendResult> {
    const layout = this.#layout;
    const toCheck = idsToCheck(items);
    // Attempts that wrote and that no retry has yet seen absent: at most the previous one.
    const unsettled: AppendAttempt[] = [];
    const clears = this.#staleNonces.splice(0, MAX_NONCE_CLEARS);
    let cleared = false;
    let outcome: PartOutcome;
    try {
      outcome = await this.#db.doTransaction(async (tn): Promise<PartOutcome> => {
        const [found, nonces] = await Promise.all([
          this.#readIds(tn, toCheck),
          Promise.all(unsettled.map((a) => tn.get(layout.nonceKey(a.nonce)))),
        ]);
        const earlier = earlierCommit(unsettled, nonces);
        if (earlier !== null) return { plan: earlier.attempt.plan, committedAt: earlier.stamp, versionstamp: null };
        // Seen absent after they ended: those attempts never committed, and never will.
        unsettled.length = 0;
        const plan = layout.planAppend(PLACEHOLDER_STAMP, items, found);
        if (plan.events === 0) return { plan, committedAt: null, versionstamp: null };
        const nonce = newNonce();
        unsettled.push({ nonce, plan });
        for (const put of plan.puts) writePut(tn, put);
        tn.setVersionstampedValueRaw(layout.nonceKey(nonce), withStampOffset(PLACEHOLDER_STAMP, 0));
        // The head (commitEnd of this commit): a blind write, so appends never conflict on it; readers watch it.
        tn.setVersionstampedValueRaw(layout.headKey, withStampOffset(HEAD_PLACEHOLDER, 0));
        addToCount(tn, layout, 'events', plan.events);
        if (plan.auditEntries > 0) addToCount(tn, layout, 'auditEntries', plan.auditEntries);
        for (const key of clears) tn.clear(key);
        cleared = true;
        // Returned inside an object: the promise settles only after the commit,
        // which doTransaction runs once the body's result has settled.
        return { plan, committedAt: null, versionstamp: tn.getVersionstamp() };
      }, TRANSACTION_OPTIONS);
    } catch (err) {
      // Whether the last attempt committed is unknown: its nonce, and the clears it carried, are left for later.
      this.#staleNonces.push(...clears, ...unsettled.map((a) => layout.nonceKey(a.nonce)));
      throw err;
    }
    // Every attempt that wrote carried the clears; one of them committed unless nothing was written.
    if (!cleared || (outcome.committedAt === null && outcome.versionstamp === null)) this.#staleNonces.push(...clears);
    // The attempt that committed left its nonce, which no one needs any more.
    for (const attempt of unsettled) if (attempt.plan === outcome.plan) this.#staleNonces.push(layout.nonceKey(attempt.nonce));

    let stamp = outcome.committedAt;
    if (outcome.versionstamp !== null) {
      stamp = await outcome.versionstamp.promise;
      if (stamp.length !== STAMP_BYTES)
        throw new StoreWriteError(`FoundationDB returned a ${stamp.length}-byte versionstamp, expected ${STAMP_BYTES}`);
    }
    // The result's new positions are the id values, built with the placeholder: patching fixes both.
    if (stamp !== null) patchStamp(outcome.plan, stamp);
    return outcome.plan.result;
  }

  /** Clears the nonces of finished appends that no later append has cleared yet (when the store closes). */
  async clearStaleNonces(): Promise<void> {
    while (this.#staleNonces.length > 0) {
      const keys = this.#staleNonces.splice(0, 1024);
      await this.#db.doTransaction(async (tn) => {
        for (const key of keys) tn.clear(key);
      }, TRANSACTION_OPTIONS);
    }
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
    // An id the bus generated has no id key: its millisecond of the time index is read instead (generated.ts).
    const generated = ids.filter((id) => !found.has(id) && generatedIdTime(id) !== null);
    const positions = await Promise.all(generated.map((id) => findGenerated(tn, this.#layout, this.#codec, id)));
    for (let i = 0; i < generated.length; i++) if (positions[i] !== null) found.set(generated[i]!, positions[i]!);
    return found;
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
export function addToCount(tn: Tn, layout: StoreLayout, name: CountName, delta: number): void {
  tn.add(layout.countKey(name), encodeCount(delta));
}
