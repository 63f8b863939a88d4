/**
 * The pure half of the FoundationDB writer (src/store/fdb-batches.ts,
 * src/store/fdb-retries.ts): splitting a batch by measured bytes,
 * FoundationDB's key and value limits on what the layout writes, and how a
 * retry decides, by its attempts' nonces, whether an earlier attempt
 * committed. These run everywhere; they need no FoundationDB.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  CONFLICT_RANGE_BYTES,
  MAX_NONCE_CLEARS,
  MUTATION_BYTES,
  limitProblem,
  splitBatch,
  transactionBytes,
  type BatchPart,
} from '../src/store/fdb-batches.js';
import { earlierCommit, newNonce, type AppendAttempt } from '../src/store/fdb-retries.js';
import { idsToCheck, patchStamp } from '../src/store/layout/append-plan.js';
import { decodeAuditBlock } from '../src/store/layout/audit-blocks.js';
import { DecodedBlock } from '../src/store/layout/blocks.js';
import { chunkValue, joinChunks } from '../src/store/layout/chunks.js';
import { StoreLayout, type KeyRange } from '../src/store/layout/keys.js';
import { STAMP_BYTES, positionOf, stampFromCounter } from '../src/store/layout/positions.js';
import { tupleString, tupleStringBytes } from '../src/store/layout/tuple.js';
import {
  FDB_MAX_KEY_BYTES,
  FDB_MAX_TRANSACTION_BYTES,
  MAX_VALUE_BYTES,
  MAX_VALUE_BYTES as FDB_MAX_VALUE_BYTES,
} from '../src/store/limits.js';
import type { AppendItem, Position } from '../src/store/store.js';
import { PageMeter } from '../src/store/bounds.js';

const layout = new StoreLayout('eventrail');
const prefixBytes = tupleString('eventrail').length;
const PLACEHOLDER = Buffer.alloc(STAMP_BYTES);
const BASE_MS = Date.UTC(2024, 0, 1);
const inRange = (key: Buffer, range: KeyRange) => Buffer.compare(key, range.start) >= 0 && Buffer.compare(key, range.end) < 0;

/** A small deterministic generator, so a failure replays. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

function item(options: Partial<AppendItem> & { size?: number } = {}): AppendItem {
  const { size, ...rest } = options;
  return {
    eventId: randomUUID(),
    checkDuplicate: false,
    bytes: Buffer.alloc(size ?? 200, 7),
    tenantId: null,
    timestampMs: BASE_MS,
    auditId: null,
    ...rest,
  };
}

/** A batch with a mix of sizes, tenants, timestamps, audit entries and supplied ids. */
function mixedBatch(next: () => number, count: number, maxEventBytes = 20_000): AppendItem[] {
  const tenants = [null, randomUUID(), randomUUID(), 'tenant-\0-escaped', 'ténant'];
  return Array.from({ length: count }, () =>
    item({
      size: 1 + Math.floor(next() ** 3 * maxEventBytes),
      tenantId: tenants[Math.floor(next() * tenants.length)]!,
      timestampMs: BASE_MS + Math.floor(next() * 5_000) - 2_500,
      checkDuplicate: next() < 0.3,
      auditId: next() < 0.2 ? randomUUID() : null,
    }),
  );
}

/**
 * What FoundationDB counts against its size limit for the append transaction
 * the layout plans for `items` (`Transaction::getSize()`: every mutation as
 * sizeof(MutationRef) + key + value, every conflict range as
 * sizeof(KeyRangeRef) + begin + end): each put, a versionstamped key or value
 * with its 4-byte offset, and the write conflict range [key, key‖0x00) of
 * every put but a versionstamped key (FoundationDB adds none for those); the
 * read conflict range of each caller-supplied id; the two count adds; the
 * attempt's nonce; the head key. A retry also reads one nonce and a part may clear old ones:
 * `extra` adds those.
 */
function countedBytes(items: readonly AppendItem[], extra: { nonceReads?: number; nonceClears?: number } = {}): number {
  const plan = layout.planAppend(PLACEHOLDER, items);
  const conflict = (key: number) => CONFLICT_RANGE_BYTES + 2 * key + 1;
  let bytes = 0;
  for (const put of plan.puts) {
    const key = put.key.length + (put.stampIn === 'key' ? 4 : 0);
    const value = put.value.length + (put.stampIn === 'value' ? 4 : 0);
    bytes += MUTATION_BYTES + key + value;
    if (put.stampIn !== 'key') bytes += conflict(put.key.length);
  }
  for (const id of idsToCheck(items)) bytes += conflict(layout.idKey(id).length);
  for (const name of ['events', 'auditEntries'] as const) {
    const key = layout.countKey(name).length;
    bytes += MUTATION_BYTES + key + 8 + conflict(key);
  }
  const nonceKey = layout.nonceKey(newNonce()).length;
  bytes += MUTATION_BYTES + nonceKey + STAMP_BYTES + 4 + conflict(nonceKey);
  // The head key: commitEnd of the commit (12 bytes), a versionstamped value.
  const headKey = layout.headKey.length;
  bytes += MUTATION_BYTES + headKey + 12 + 4 + conflict(headKey);
  bytes += (extra.nonceReads ?? 0) * conflict(nonceKey);
  bytes += (extra.nonceClears ?? 0) * (MUTATION_BYTES + 2 * nonceKey + 1 + conflict(nonceKey));
  return bytes;
}

/** `count` events of `size` bytes as the bus appends them: fresh uuid ids, a few tenants, a few milliseconds, some audited. */
function typicalBatch(count: number, size: number, options: { supplied?: boolean; spread?: boolean } = {}): AppendItem[] {
  const next = random(7);
  const tenants = Array.from({ length: 8 }, () => randomUUID());
  return Array.from({ length: count }, (_, i) =>
    item({
      size,
      checkDuplicate: options.supplied === true,
      tenantId: options.spread ? randomUUID() : tenants[Math.floor(next() * tenants.length)]!,
      timestampMs: BASE_MS + (options.spread ? i : Math.floor(i / 200)),
      auditId: next() < 0.2 ? randomUUID() : null,
    }),
  );
}

function assertCovers(parts: readonly BatchPart[], count: number): void {
  assert.ok(parts.length > 0);
  assert.equal(parts[0]!.start, 0);
  assert.equal(parts[parts.length - 1]!.end, count);
  for (let i = 0; i < parts.length; i++) {
    assert.ok(parts[i]!.end > parts[i]!.start, `part ${i} is not empty`);
    if (i > 0) assert.equal(parts[i]!.start, parts[i - 1]!.end, `part ${i} follows part ${i - 1}`);
  }
}

describe('fdb batches: measuring', () => {
  it('bounds from above what FoundationDB counts for the layout’s writes', () => {
    const next = random(1);
    for (let round = 0; round < 40; round++) {
      const items = mixedBatch(next, 1 + Math.floor(next() * 300));
      const estimate = transactionBytes(items, prefixBytes);
      const counted = countedBytes(items, { nonceReads: 1, nonceClears: MAX_NONCE_CLEARS });
      assert.ok(estimate >= counted, `round ${round}: estimate ${estimate} < counted ${counted}`);
      // An upper bound, but a close one: only chunk numbers and timestamps are counted at their largest item size.
      assert.ok(
        estimate <= counted * 1.005 + 100,
        `round ${round}: estimate ${estimate} is over counted ${counted} by ${estimate - counted}`,
      );
    }
  });

  it('bounds large events split into chunks, and audit blocks', () => {
    const items = [item({ size: 350_000, auditId: randomUUID(), tenantId: 'big' }), item({ size: 99_990 }), item({ size: 1 })];
    assert.ok(transactionBytes(items, prefixBytes) >= countedBytes(items, { nonceReads: 1, nonceClears: MAX_NONCE_CLEARS }));
  });

  it('counts no write conflict range for a versionstamped key, one index key per tenant and per millisecond', () => {
    // The same events, all in one millisecond and one tenant, or each in its own: only the index keys differ.
    const shared = Array.from({ length: 100 }, () => item({ tenantId: 'acme' }));
    const spread = shared.map((it, i) => ({ ...it, tenantId: `tenant-${String(i).padStart(3, '0')}`, timestampMs: BASE_MS + i }));
    const perKey = (items: AppendItem[]) => transactionBytes(items, prefixBytes) - transactionBytes(items.slice(0, 1), prefixBytes);
    const tenantKey = layout.tenantKey('tenant-000', PLACEHOLDER).length + 4;
    const timeKey = layout.timeKey(BASE_MS, PLACEHOLDER).length + 4;
    // 99 more `t` keys and 99 more `ts` keys, each a mutation with no conflict range.
    const delta = perKey(spread) - perKey(shared);
    assert.ok(
      delta >= 99 * (2 * MUTATION_BYTES + tenantKey + timeKey) && delta <= 99 * (2 * MUTATION_BYTES + tenantKey + timeKey + 9),
      `delta ${delta}`,
    );
    assert.ok(transactionBytes(spread, prefixBytes) >= countedBytes(spread, { nonceReads: 1, nonceClears: MAX_NONCE_CLEARS }));
  });

  it('counts the prefix in every key', () => {
    const items = mixedBatch(random(2), 50);
    const longPrefix = 'p'.repeat(500);
    const long = new StoreLayout(longPrefix);
    const delta = transactionBytes(items, tupleString(longPrefix).length) - transactionBytes(items, prefixBytes);
    // At least the id, time and block keys, and their conflict ranges.
    assert.ok(delta >= 50 * 3 * (tupleString(longPrefix).length - prefixBytes), `delta ${delta}`);
    assert.ok(long.idKey('x').length - layout.idKey('x').length === tupleString(longPrefix).length - prefixBytes);
  });

  it('measures tuple strings as fdb-tuple packs them', () => {
    for (const text of ['', 'a', 'ténant', '\0', 'a\0b\0', '\0\0\0', '😀 emoji', randomUUID()]) {
      assert.equal(tupleStringBytes(text), tupleString(text).length, JSON.stringify(text));
    }
  });
});

describe('fdb batches: splitting', () => {
  it('cuts a batch, in order, into parts under maxTransactionBytes', () => {
    const next = random(3);
    for (const maxTransactionBytes of [20_000, 100_000, 1_000_000]) {
      const items = mixedBatch(next, 2_000);
      const split = splitBatch(items, { maxTransactionBytes, prefixBytes });
      assert.ok(split.ok);
      assertCovers(split.parts, items.length);
      for (const part of split.parts) {
        const slice = items.slice(part.start, part.end);
        assert.equal(part.bytes, transactionBytes(slice, prefixBytes));
        if (slice.length > 1) assert.ok(part.bytes <= maxTransactionBytes, `part of ${slice.length} is ${part.bytes} bytes`);
        assert.ok(countedBytes(slice, { nonceReads: 1, nonceClears: MAX_NONCE_CLEARS }) <= Math.max(maxTransactionBytes, part.bytes));
      }
      // Greedy: a part closes only when the next item would not fit.
      for (let i = 0; i + 1 < split.parts.length; i++) {
        const part = split.parts[i]!;
        assert.ok(
          transactionBytes(items.slice(part.start, part.end + 1), prefixBytes) > maxTransactionBytes,
          `part ${i} could have taken one more`,
        );
      }
      if (maxTransactionBytes === 20_000) assert.ok(split.parts.length > 10);
    }
  });

  it('keeps a default batch of 1 024 events of ~300 bytes in one 1 MB transaction', () => {
    for (const supplied of [false, true]) {
      const items = typicalBatch(1024, 300, { supplied });
      const split = splitBatch(items, { maxTransactionBytes: 1_000_000, prefixBytes });
      assert.ok(split.ok);
      assert.deepEqual(
        split.parts.map((p) => [p.start, p.end]),
        [[0, 1024]],
        `supplied ids: ${supplied}`,
      );
      assert.ok(split.parts[0]!.bytes >= countedBytes(items, { nonceReads: 1, nonceClears: MAX_NONCE_CLEARS }));
      assert.ok(split.parts[0]!.bytes < 900_000, `${split.parts[0]!.bytes} bytes`);
    }
  });

  it('still splits what does not fit, each part under the limit by what FoundationDB counts', () => {
    // Every event its own tenant and millisecond, and a supplied id: the most index keys and reads a batch can have.
    const items = typicalBatch(1024, 500, { supplied: true, spread: true });
    const split = splitBatch(items, { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.ok(split.ok);
    assert.equal(split.parts.length, 2);
    assertCovers(split.parts, items.length);
    for (const part of split.parts) {
      assert.ok(part.bytes <= 1_000_000);
      assert.ok(countedBytes(items.slice(part.start, part.end), { nonceReads: 1, nonceClears: MAX_NONCE_CLEARS }) <= part.bytes);
    }
    const larger = typicalBatch(1024, 2_000);
    const cut = splitBatch(larger, { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.ok(cut.ok && cut.parts.length === 3, `${cut.ok && cut.parts.length} parts`);
  });

  it('keeps a small batch in one transaction', () => {
    const items = Array.from({ length: 100 }, () => item());
    const split = splitBatch(items, { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.ok(split.ok);
    assert.deepEqual(
      split.parts.map((p) => [p.start, p.end]),
      [[0, 100]],
    );
    assert.deepEqual(splitBatch([], { maxTransactionBytes: 1_000_000, prefixBytes }), { ok: true, parts: [] });
  });

  it('gives an event too big to share a transaction one of its own', () => {
    const items = [item(), item(), item({ size: 2_500_000 }), item(), item({ size: 1_200_000 }), item({ size: 1_200_000 })];
    const split = splitBatch(items, { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.ok(split.ok);
    assert.deepEqual(
      split.parts.map((p) => [p.start, p.end]),
      [
        [0, 2],
        [2, 3],
        [3, 4],
        [4, 5],
        [5, 6],
      ],
    );
    assert.ok(split.parts[1]!.bytes > 2_500_000 && split.parts[1]!.bytes < FDB_MAX_TRANSACTION_BYTES);
  });

  it('refuses, before writing anything, a batch holding an event over FoundationDB’s 10 MB limit', () => {
    const items = [item(), item({ size: 9_000_000 }), item({ size: FDB_MAX_TRANSACTION_BYTES }), item()];
    const split = splitBatch(items, { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.equal(split.ok, false);
    assert.ok(!split.ok && split.index === 2 && split.bytes > FDB_MAX_TRANSACTION_BYTES);
    // An audit entry holds its audit id, not a second copy of the event: an audited event under the limit fits.
    const audited = splitBatch([item({ size: 5_000_000, auditId: randomUUID() })], { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.ok(audited.ok && audited.parts.length === 1);
  });

  it('caps the events of a transaction (a block index is 16 bits)', () => {
    const items = Array.from({ length: 25 }, () => item({ size: 1 }));
    const split = splitBatch(items, { maxTransactionBytes: 9_000_000, prefixBytes, maxEvents: 10 });
    assert.ok(split.ok);
    assert.deepEqual(
      split.parts.map((p) => p.end - p.start),
      [10, 10, 5],
    );
  });

  it('rejects limits that make no sense', () => {
    assert.throws(() => splitBatch([item()], { maxTransactionBytes: 0, prefixBytes }), RangeError);
    assert.throws(() => splitBatch([item()], { maxTransactionBytes: 1000, prefixBytes, maxEvents: 0 }), RangeError);
  });
});

describe('fdb batches: FoundationDB’s key and value limits on the layout’s writes', () => {
  it('chunks at FoundationDB’s value limit and joins the chunks back', () => {
    assert.equal(MAX_VALUE_BYTES, FDB_MAX_VALUE_BYTES);
    const value = Buffer.alloc(9_000_001);
    for (let i = 0; i < value.length; i += 997) value[i] = i & 0xff;
    const chunks = chunkValue(value);
    assert.equal(chunks.length, 91);
    for (const chunk of chunks) assert.ok(chunk.length <= FDB_MAX_VALUE_BYTES);
    assert.ok(joinChunks(chunks).equals(value));
  });

  it('plans only writes FoundationDB accepts, for every part of a split batch', () => {
    const next = random(4);
    const items = [...mixedBatch(next, 500, 400_000), item({ size: 2_000_000, auditId: randomUUID(), tenantId: 't' })];
    const split = splitBatch(items, { maxTransactionBytes: 1_000_000, prefixBytes });
    assert.ok(split.ok);
    for (const part of split.parts) {
      const slice = items.slice(part.start, part.end);
      const plan = layout.planAppend(PLACEHOLDER, slice);
      for (const put of plan.puts) {
        assert.equal(limitProblem(put.key, put.value), null);
        assert.ok(put.key.length <= FDB_MAX_KEY_BYTES && put.value.length <= FDB_MAX_VALUE_BYTES);
      }
      // The chunks join back into the block, every event intact.
      const block = new DecodedBlock(joinChunks(plan.puts.filter((p) => inRange(p.key, layout.blockRange())).map((p) => p.value)));
      assert.equal(block.count, slice.length);
      slice.forEach((it, i) => assert.ok(block.bytes(i).equals(it.bytes)));
      const audits = plan.puts.filter((p) => inRange(p.key, layout.auditRange())).map((p) => p.value);
      if (audits.length > 0) assert.equal(decodeAuditBlock(joinChunks(audits)).length, slice.filter((it) => it.auditId !== null).length);
    }
  });

  it('names what is over a limit', () => {
    assert.match(limitProblem(Buffer.alloc(FDB_MAX_KEY_BYTES + 1), Buffer.alloc(0))!, /10001 bytes .* key limit/);
    assert.match(limitProblem(Buffer.alloc(10), Buffer.alloc(FDB_MAX_VALUE_BYTES + 1))!, /100001 bytes .* value limit/);
    assert.equal(limitProblem(Buffer.alloc(FDB_MAX_KEY_BYTES), Buffer.alloc(FDB_MAX_VALUE_BYTES)), null);
  });
});

describe('fdb retries: a retry recognises its earlier commit by its nonce', () => {
  const committedAt = stampFromCounter(0xabcdefn);
  const attempt = (items: readonly AppendItem[], stored?: Map<string, Position>): AppendAttempt => ({
    nonce: newNonce(),
    plan: layout.planAppend(PLACEHOLDER, items, stored),
  });

  it('finds the attempt whose nonce is stored, and its stamp patches the result to the stored positions', () => {
    const supplied = item({ checkDuplicate: true });
    const items = [item(), supplied, item(), { ...supplied }, item()];
    const first = attempt(items, new Map([[randomUUID(), positionOf(stampFromCounter(1n), 0)]]));
    assert.deepEqual(first.plan.result.duplicate, [false, false, false, true, false]);
    const found = earlierCommit([first], [Buffer.from(committedAt)]);
    assert.ok(found !== null && found.attempt === first && found.stamp.equals(committedAt));
    patchStamp(found.attempt.plan, found.stamp);
    assert.deepEqual(
      found.attempt.plan.result.positions.map((p) => p.toString('hex')),
      [0, 1, 2, 1, 3].map((i) => positionOf(committedAt, i).toString('hex')),
    );
    assert.equal(found.attempt.plan.result.duplicate.filter(Boolean).length, 1, 'the batch’s own events are not reported as duplicates');
  });

  it('finds nothing when no attempt’s nonce is stored, whatever the id index holds', () => {
    const supplied = item({ checkDuplicate: true });
    const first = attempt([supplied]);
    assert.equal(earlierCommit([first], [undefined]), null);
    assert.equal(earlierCommit([], []), null, 'a first attempt has nothing to look for');
  });

  it('takes another writer’s commit of the same supplied id, at the same index, as a duplicate, not as its own', () => {
    // Two instances append the same caller event_id alone in a batch: both plan it at index 0. The first commits;
    // the second's commit conflicts (it read the id) and is retried. The id is now stored at index 0 of another
    // stamp, exactly where this attempt planned it, but this attempt's nonce is not stored.
    const supplied = item({ checkDuplicate: true });
    const mine = attempt([supplied]);
    const elsewhere = new Map([[supplied.eventId, positionOf(committedAt, 0)]]);
    assert.equal(earlierCommit([mine], [undefined]), null, 'no nonce of ours: not our commit');
    // So the retry plans afresh with the ids it read, like a first attempt: a genuine duplicate.
    const retry = layout.planAppend(PLACEHOLDER, [supplied], elsewhere);
    assert.deepEqual(retry.result.duplicate, [true]);
    assert.ok(retry.result.positions[0]!.equals(positionOf(committedAt, 0)));
    assert.equal(retry.events, 0, 'nothing written');
  });

  it('picks the attempt that committed among several, and refuses a malformed nonce value', () => {
    const items = [item(), item()];
    const attempts = [attempt(items), attempt(items), attempt(items)];
    const found = earlierCommit(attempts, [undefined, Buffer.from(committedAt), undefined]);
    assert.ok(found !== null && found.attempt === attempts[1]);
    assert.notEqual(attempts[0]!.nonce, attempts[1]!.nonce, 'every attempt has its own nonce');
    assert.match(attempts[0]!.nonce, /^[0-9a-f]{32}$/);
    assert.throws(() => earlierCommit(attempts, [Buffer.alloc(3)]), { code: 'ERR_EVENTRAIL_STORE_CORRUPT' });
  });

  it('keeps nonces under their own keys, read as one range, outside every other range of the layout', () => {
    const key = layout.nonceKey(newNonce());
    assert.ok(inRange(key, layout.nonceRange()) && inRange(key, layout.all()));
    for (const range of [layout.blockRange(), layout.auditRange(), layout.deadLetterRange(), layout.checkpointRange(), layout.timeRange()])
      assert.ok(!inRange(key, range));
  });
});

describe('fdb reads: what one page transaction may read', () => {
  const limits = { bytes: 4_000_000, blocks: 256 };

  it('spends bytes and block fetches, and ends a scan once either is reached', () => {
    const meter = new PageMeter(limits);
    assert.equal(meter.spent, false);
    meter.add(3_999_999, 255);
    assert.equal(meter.spent, false);
    meter.add(1);
    assert.equal(meter.spent, true, 'the byte limit');
    const fetches = new PageMeter(limits);
    for (let i = 0; i < 256; i++) fetches.add(100, 1);
    assert.equal(fetches.spent, true, 'the block fetch limit, whatever the bytes');
  });

  it('fetches windows of blocks in parallel until the page has read its bytes, always resolving at least one', () => {
    // 1 024 sparse audited events, one block each, each block read costing 20 KB: the page stops well short of 1 024 round trips.
    const meter = new PageMeter(limits);
    const waiting = 1024;
    const windows: number[] = [];
    let resolved = 0;
    for (let n; (n = meter.nextWindow(waiting - resolved, 32, resolved)) > 0; resolved += n) {
      windows.push(n);
      meter.add(n * 20_000, n);
    }
    assert.equal(resolved, 224, 'stops after the window that reached 4 MB');
    assert.ok(windows.every((n) => n === 32));
    assert.ok(meter.bytes >= limits.bytes);

    // A single block over the byte limit still makes progress, alone in its page.
    const huge = new PageMeter(limits);
    huge.add(10_000_000);
    assert.equal(huge.nextWindow(5, 32, 0), 5, 'nothing resolved yet: go on');
    assert.equal(huge.nextWindow(5, 32, 1), 0, 'then the page ends');
    assert.equal(new PageMeter(limits).nextWindow(0, 32, 0), 0, 'nothing waiting');
    assert.equal(new PageMeter(limits).nextWindow(7, 32, 0), 7, 'the rest, when fewer than a window');
    assert.equal(new PageMeter(limits).nextWindow(7, 0, 0), 1, 'a window is at least one block');
  });
});
