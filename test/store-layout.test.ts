import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pack, packUnboundVersionstamp, unboundVersionstamp, type TupleItem } from 'fdb-tuple';
import { randomUUID } from 'node:crypto';
import { Codec } from '../src/codec.js';
import { encodeAuditRecord } from '../src/event/audit.js';
import { idsToCheck, patchStamp, type Put } from '../src/store/layout/append-plan.js';
import { auditEntries, decodeAuditBlock, encodeAuditBlockOf, eventsNeededBy, type AuditedEvent } from '../src/store/layout/audit-blocks.js';
import { DecodedBlock, blockCount, blockSpans, chunksOfSpans, copySpans, encodeBlock } from '../src/store/layout/blocks.js';
import { ChunkGatherer, blockGatherer, chunkValue, deadLetterGatherer, joinChunks } from '../src/store/layout/chunks.js';
import { decodeCount, encodeCount } from '../src/store/layout/counts.js';
import { decodeDeadLetter, decodeDeadLetters, encodeDeadLetter } from '../src/store/layout/dead-letters.js';
import {
  decodeGroupRecord,
  decodeLease,
  decodeMembership,
  decodePartitionCount,
  encodeGroupRecord,
  encodeLease,
  encodeMembership,
  encodePartitionCount,
} from '../src/store/layout/groups.js';
import { decodeIndexList, encodeIndexList } from '../src/store/layout/index-lists.js';
import { StoreLayout, type KeyRange } from '../src/store/layout/keys.js';
import { counterFromStamp, indexOf, positionOf, stampFromCounter, stampOf } from '../src/store/layout/positions.js';
import { tupleString } from '../src/store/layout/tuple.js';
import { MAX_VALUE_BYTES } from '../src/store/limits.js';
import type { AppendItem, DeadLetterRecord } from '../src/store/store.js';
import type { StoreCorruptError } from '../src/errors.js';

const layout = new StoreLayout('eventrail');
const vs = (stamp: Buffer): TupleItem => ({ type: 'versionstamp', value: Buffer.concat([stamp, Buffer.alloc(2)]) });
const inRange = (key: Buffer, range: KeyRange) => Buffer.compare(key, range.start) >= 0 && Buffer.compare(key, range.end) < 0;
const sorted = (keys: Buffer[]) => [...keys].sort(Buffer.compare);

function item(eventId: string, options: Partial<AppendItem> = {}): AppendItem {
  return {
    eventId,
    checkDuplicate: false,
    bytes: Buffer.from(`event ${eventId}`),
    tenantId: null,
    timestampMs: 1_700_000_000_000,
    auditId: null,
    ...options,
  };
}

describe('store layout: keys are fdb-tuple tuples', () => {
  const stamp = stampFromCounter(0x0102030405060708n);
  const strings = ['', 'plain', '0190f5b2-7c1e-7cc3-9d6e-8f5d2a1b3c4d', 'ünïcødé ☃', 'nul\0inside', '\0', 'trailing\0'];

  it('builds every key exactly as pack() does', () => {
    for (const chunk of [0, 1, 255, 256, 65_535, 65_536, 1_000_000]) {
      assert.deepEqual(layout.blockKey(stamp, chunk), pack(['eventrail', 'ev', vs(stamp), chunk]));
      assert.deepEqual(layout.auditKey(stamp, chunk), pack(['eventrail', 'au', vs(stamp), chunk]));
    }
    for (const s of strings) {
      assert.deepEqual(tupleString(s), pack(s), JSON.stringify(s));
      assert.deepEqual(layout.idKey(s), pack(['eventrail', 'id', s]));
      assert.deepEqual(layout.tenantKey(s, stamp), pack(['eventrail', 't', s, vs(stamp)]));
      assert.deepEqual(layout.checkpointKey(s), pack(['eventrail', 'cp', s]));
      const position = positionOf(stamp, 513);
      assert.deepEqual(layout.deadLetterKey(s, position), pack(['eventrail', 'dl', s, { type: 'versionstamp', value: position }]));
    }
    for (const ms of [0, 1, -1, 1_700_000_000_123, -62_135_596_800_000, 8_640_000_000_000_000]) {
      assert.deepEqual(layout.timeKey(ms, stamp), pack(['eventrail', 'ts', ms, vs(stamp)]));
    }
    for (const s of strings) {
      assert.deepEqual(layout.memberKey(s), pack(['eventrail', 'mb', s]));
      assert.deepEqual(layout.groupKey(s), pack(['eventrail', 'gr', s]));
      for (const partition of [0, 1, 255, 256, 70_000]) {
        assert.deepEqual(layout.leaseKey(s, partition), pack(['eventrail', 'ls', s, partition]));
        assert.deepEqual(layout.cursorKey(s, partition), pack(['eventrail', 'cu', s, partition]));
      }
    }
    assert.deepEqual(layout.partitionsKey, pack(['eventrail', 'meta', 'partitions']));
    assert.deepEqual(layout.headKey, pack(['eventrail', 'meta', 'head']));
    assert.deepEqual(layout.counterKey, pack(['eventrail', 'meta', 'counter']));
    assert.deepEqual(layout.countKey('events'), pack(['eventrail', 'meta', 'count', 'events']));
    assert.deepEqual(new StoreLayout('other\0prefix').idKey('x'), pack(['other\0prefix', 'id', 'x']));
  });

  it('decodes the keys it builds', () => {
    assert.deepEqual(layout.decodeBlockKey(layout.blockKey(stamp, 300)), { stamp, chunk: 300 });
    assert.deepEqual(layout.decodeAuditKey(layout.auditKey(stamp, 2)), { stamp, chunk: 2 });
    assert.deepEqual(layout.decodeTimeKey(layout.timeKey(-5, stamp)), { timestampMs: -5, stamp });
    assert.deepEqual(layout.stampOfIndexKey(layout.tenantKey('t\0', stamp)), stamp);
    const position = positionOf(stamp, 7);
    assert.deepEqual(layout.decodeDeadLetterKey(layout.deadLetterKey('ünï\0', position)), { consumer: 'ünï\0', position, chunk: 0 });
    assert.deepEqual(layout.decodeDeadLetterKey(layout.deadLetterKey('ünï\0', position, 300)), { consumer: 'ünï\0', position, chunk: 300 });
    assert.equal(layout.decodeCheckpointKey(layout.checkpointKey('MetricsCollector')), 'MetricsCollector');
    assert.equal(layout.decodeMemberKey(layout.memberKey('pod-1\0')), 'pod-1\0');
    assert.equal(layout.decodeGroupKey(layout.groupKey('Mailer')), 'Mailer');
    assert.deepEqual(layout.decodeLeaseKey(layout.leaseKey('ünï\0', 300)), { group: 'ünï\0', partition: 300 });
    assert.deepEqual(layout.decodeCursorKey(layout.cursorKey('G', 0)), { group: 'G', partition: 0 });
    assert.throws(() => layout.leaseKey('G', -1), RangeError);
    assert.throws(() => layout.cursorKey('G', 1.5), RangeError);
    assert.throws(() => layout.decodeLeaseKey(layout.memberKey('x')), /not a lease key/);
    // One group's range holds its keys only, not those of a group whose name it starts.
    assert.ok(inRange(layout.leaseKey('G', 3), layout.leaseRange('G')));
    assert.ok(!inRange(layout.leaseKey('GG', 3), layout.leaseRange('G')));
    assert.ok(inRange(layout.leaseKey('GG', 3), layout.leaseRange()));
    assert.ok(!inRange(layout.cursorKey('GG', 3), layout.cursorRange('G')));
  });

  it('stores memberships, group records, leases and the partition count as tuples', () => {
    assert.deepEqual(encodeMembership({ expiresAt: 1_700_000_001_000, groups: ['a', 'b'] }), pack([1_700_000_001_000, 'a', 'b']));
    assert.deepEqual(decodeMembership(encodeMembership({ expiresAt: 5.5, groups: [] }), 'x'), { expiresAt: 5.5, groups: [] });
    assert.deepEqual(decodeGroupRecord(encodeGroupRecord({ startFrom: 'now', createdAt: 7 }), 'G'), { startFrom: 'now', createdAt: 7 });
    assert.deepEqual(encodeLease({ owner: 'pod-1', expiresAt: 9, epoch: 3 }), pack(['pod-1', 9, 3]));
    assert.deepEqual(decodeLease(encodeLease({ owner: '', expiresAt: 0, epoch: 12 }), 'G/0'), { owner: '', expiresAt: 0, epoch: 12 });
    assert.deepEqual(encodePartitionCount(16), Buffer.from([0, 0, 0, 16]));
    assert.equal(decodePartitionCount(encodePartitionCount(16)), 16);
    assert.equal(decodePartitionCount(undefined), null);
    assert.throws(() => decodePartitionCount(Buffer.from([0, 0, 0, 0])), /partition count is 0/);
    assert.throws(() => decodeLease(pack(['pod', 'x', 1]), 'G/1'), /lease of G\/1/);
    assert.throws(() => decodeLease(Buffer.from([0xff, 0x01]), 'G/2'), /lease of G\/2/);
    assert.throws(() => decodeGroupRecord(pack(['sometime', 1]), 'G'), /record of group G/);
    assert.throws(() => decodeMembership(pack(['x']), 'pod'), /membership of pod/);
  });

  it('puts the stamp where FoundationDB will write it', () => {
    const items = [
      item('a', { tenantId: 'tenant-1', auditId: randomUUID() }),
      item('b', { tenantId: 'ténant\0two', timestampMs: 5 }),
      item('c', { tenantId: 'tenant-1', timestampMs: -3 }),
    ];
    const placeholder = Buffer.alloc(10, 0xee);
    const plan = layout.planAppend(placeholder, items);
    const withStampIn = (where: Put['stampIn']) => plan.puts.filter((p) => p.stampIn === where);
    assert.equal(withStampIn('none').length, 0);
    for (const put of withStampIn('key')) {
      assert.deepEqual(put.key.subarray(put.stampOffset, put.stampOffset + 10), placeholder);
      assert.deepEqual(put.key.subarray(put.stampOffset + 10, put.stampOffset + 12), Buffer.alloc(2));
    }
    for (const put of withStampIn('value')) assert.deepEqual(put.value.subarray(put.stampOffset, put.stampOffset + 10), placeholder);
    assert.equal(withStampIn('value').length, 3, 'one id key per event');

    // fdb-tuple reports the same offsets for an unbound versionstamp in the same place.
    const offsetOf = (tuple: TupleItem[]) => packUnboundVersionstamp(tuple).stampPos;
    const findKey = (tuple: TupleItem[]) => plan.puts.find((p) => p.key.equals(pack(tuple)));
    const expect: [TupleItem[], TupleItem[]][] = [
      [
        ['eventrail', 'ev', vs(placeholder), 0],
        ['eventrail', 'ev', unboundVersionstamp(0), 0],
      ],
      [
        ['eventrail', 't', 'ténant\0two', vs(placeholder)],
        ['eventrail', 't', 'ténant\0two', unboundVersionstamp(0)],
      ],
      [
        ['eventrail', 'ts', -3, vs(placeholder)],
        ['eventrail', 'ts', -3, unboundVersionstamp(0)],
      ],
      [
        ['eventrail', 'au', vs(placeholder), 0],
        ['eventrail', 'au', unboundVersionstamp(0), 0],
      ],
    ];
    for (const [stored, unbound] of expect) {
      const put = findKey(stored);
      assert.ok(put, `a put for ${JSON.stringify(stored)}`);
      assert.equal(put.stampOffset, offsetOf(unbound));
    }
    assert.equal(layout.blockKeyStampOffset, offsetOf(['eventrail', 'ev', unboundVersionstamp(0), 0]));

    const stamp2 = stampFromCounter(42n);
    patchStamp(plan, stamp2);
    for (const put of withStampIn('key')) assert.deepEqual(put.key.subarray(put.stampOffset, put.stampOffset + 10), stamp2);
    assert.deepEqual(plan.result.positions, [positionOf(stamp2, 0), positionOf(stamp2, 1), positionOf(stamp2, 2)]);
    assert.deepEqual(plan.puts, layout.planAppend(stamp2, items).puts, 'patching gives what building with the stamp gives');
  });
});

describe('store layout: key order', () => {
  it('orders blocks by stamp, then chunk', () => {
    const keys: Buffer[] = [];
    for (const counter of [1n, 2n, 255n, 256n, 65_536n, 2n ** 40n])
      for (const chunk of [0, 1, 9, 255, 256]) keys.push(layout.blockKey(stampFromCounter(counter), chunk));
    assert.deepEqual(sorted(keys), keys);
    const all = layout.blockRange();
    for (const key of keys) assert.ok(inRange(key, all));
    const from = stampFromCounter(2n);
    const until = stampFromCounter(256n);
    const inside = keys.filter((k) => inRange(k, layout.blockRange(from, until)));
    assert.deepEqual(
      inside.map((k) => counterFromStamp(layout.decodeBlockKey(k).stamp)),
      [2n, 2n, 2n, 2n, 2n, 255n, 255n, 255n, 255n, 255n, 256n, 256n, 256n, 256n, 256n],
    );
    assert.equal(keys.filter((k) => inRange(k, layout.blockChunks(from))).length, 5);
  });

  it('orders a tenant index by stamp and keeps tenants apart', () => {
    const a = [1n, 2n, 300n].map((c) => layout.tenantKey('a', stampFromCounter(c)));
    const ab = [1n, 2n].map((c) => layout.tenantKey('ab', stampFromCounter(c)));
    assert.deepEqual(sorted([...ab, ...a]), [...a, ...ab]);
    assert.ok(a.every((k) => inRange(k, layout.tenantRange('a'))));
    assert.ok(ab.every((k) => !inRange(k, layout.tenantRange('a'))));
    assert.deepEqual(
      a.filter((k) => inRange(k, layout.tenantRange('a', stampFromCounter(2n)))),
      a.slice(1),
    );
    assert.deepEqual(
      a.filter((k) => inRange(k, layout.tenantRange('a', undefined, stampFromCounter(2n)))),
      a.slice(0, 2),
    );
  });

  it('orders the time index by millisecond, then stamp, and bounds it as [fromMs, toMs)', () => {
    const ms = [-1000, -1, 0, 1, 255, 256, 1_700_000_000_000, 1_700_000_000_001];
    const keys = ms.flatMap((m) => [layout.timeKey(m, stampFromCounter(9n)), layout.timeKey(m, stampFromCounter(10n))]);
    assert.deepEqual(sorted(keys), keys);
    const within = (from?: number, to?: number) =>
      keys
        .filter((k) => inRange(k, layout.timeRange(from, to)))
        .map((k) => layout.decodeTimeKey(k).timestampMs)
        .filter((_, i) => i % 2 === 0);
    assert.deepEqual(within(0, 256), [0, 1, 255]);
    assert.deepEqual(within(-1), [-1, 0, 1, 255, 256, 1_700_000_000_000, 1_700_000_000_001]);
    assert.deepEqual(within(undefined, 0), [-1000, -1]);
    assert.deepEqual(within(0.5, 255.5), [1, 255], 'fractional bounds: t >= 0.5 and t < 255.5');
    assert.deepEqual(within(-Infinity, Infinity), ms);
    assert.deepEqual(within(Infinity), []);
    assert.throws(() => layout.timeRange(Number.NaN), RangeError);
  });

  it('keeps prefixes apart', () => {
    const a = new StoreLayout('a');
    const ab = new StoreLayout('ab');
    const stamp = stampFromCounter(1n);
    for (const key of [ab.blockKey(stamp, 0), ab.idKey('x'), ab.counterKey]) assert.ok(!inRange(key, a.all()));
    for (const key of [a.blockKey(stamp, 0), a.idKey('x'), a.counterKey, a.checkpointKey('c')]) assert.ok(inRange(key, a.all()));
  });
});

describe('store layout: values', () => {
  it('chunks values at 100 000 bytes and joins them back', () => {
    for (const size of [0, 1, 99_999, 100_000, 100_001, 250_000]) {
      const value = Buffer.alloc(size);
      for (let i = 0; i < size; i++) value[i] = (i * 7 + 3) & 0xff;
      const chunks = chunkValue(value);
      assert.equal(chunks.length, Math.max(1, Math.ceil(size / MAX_VALUE_BYTES)), `chunks of ${size}`);
      for (const chunk of chunks) assert.ok(chunk.length <= MAX_VALUE_BYTES);
      assert.ok(
        chunks.slice(0, -1).every((c) => c.length === MAX_VALUE_BYTES),
        'only the last chunk is short',
      );
      assert.deepEqual(joinChunks(chunks), value);
    }
  });

  it('stores a block that slices back into its events', () => {
    const codec = new Codec();
    const events = [{ a: 1 }, 'two', { nested: { list: [1, 2, 3] } }, Buffer.alloc(150_000, 9)];
    const encoded = events.map((e, i) => ({ bytes: codec.encode(e), timestampMs: 1_700_000_000_000 + i * 1000 - 1500 }));
    const blockBytes = encodeBlock(encoded);
    const block = new DecodedBlock(joinChunks(chunkValue(blockBytes)));
    assert.equal(block.count, 4);
    assert.equal(blockCount(chunkValue(blockBytes)[0]!), 4);
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(block.bytes(i), encoded[i]!.bytes);
      assert.equal(block.timestampMs(i), encoded[i]!.timestampMs);
    }
    assert.deepEqual(codec.decodeMany(block.body), events);
    assert.equal(new DecodedBlock(encodeBlock([])).count, 0);
    assert.throws(() => new DecodedBlock(blockBytes.subarray(0, blockBytes.length - 1)), { code: 'ERR_EVENTRAIL_STORE_CORRUPT' });
    assert.throws(() => new DecodedBlock(Buffer.from([9, 0, 0, 0, 0])), { code: 'ERR_EVENTRAIL_STORE_CORRUPT' });
  });

  it('finds events in a block from its first chunk alone', () => {
    const events = [10, 120_000, 5, 99_000, 7].map((size, i) => ({ bytes: Buffer.alloc(size, i + 1), timestampMs: 100 + i }));
    const block = encodeBlock(events);
    const chunks = chunkValue(block);
    const found = blockSpans(chunks[0]!, [1, 3, 4]);
    assert.ok(found);
    assert.equal(found.count, 5);
    for (const span of found.spans) {
      assert.deepEqual(block.subarray(span.start, span.start + span.length), events[span.index]!.bytes);
      assert.equal(span.timestampMs, 100 + span.index);
    }
    assert.deepEqual(blockSpans(chunks[0]!, []), { count: 5, spans: [] });
    assert.throws(() => blockSpans(chunks[0]!, [5]), { code: 'ERR_EVENTRAIL_STORE_CORRUPT' });
    // A header longer than the first chunk: the caller reads the whole block instead.
    const many = encodeBlock(Array.from({ length: 9000 }, () => ({ bytes: Buffer.from([0xc0]), timestampMs: 0 })));
    assert.equal(blockSpans(chunkValue(many)[0]!, [0]), null);
  });

  it('stores audit entries with their index, time, tenant and audit id, and still reads the first format', () => {
    const entries = [
      { index: 0, timestampMs: 5, tenantId: null, auditId: randomUUID() },
      { index: 65_535, timestampMs: -1, tenantId: 'ténant\0', auditId: randomUUID() },
      { index: 7, timestampMs: 1_700_000_000_000, tenantId: '', auditId: randomUUID() },
    ];
    // The batch's events by block index, and which of them are audited.
    const audited = (list: ReadonlyArray<AuditedEvent & { readonly index: number }>) => {
      const byIndex: AuditedEvent[] = [];
      for (const e of list) byIndex[e.index] = e;
      return encodeAuditBlockOf(
        byIndex,
        list.map((e) => e.index),
      );
    };
    const block = audited(entries);
    const frames = decodeAuditBlock(block);
    assert.deepEqual(
      frames,
      entries.map((e) => ({ ...e, record: null })),
    );
    assert.throws(() => decodeAuditBlock(block.subarray(0, 20)), { code: 'ERR_EVENTRAIL_STORE_CORRUPT' });
    assert.throws(() => audited([{ ...entries[0]!, auditId: 'not-a-uuid' }]), RangeError);
    // Records are made of the audit id and the event, read from its block.
    const events = entries.map((_, i) => Buffer.from(`event ${i}`));
    const records = entries.map((e, i) => encodeAuditRecord(e.auditId, events[i]!));
    assert.deepEqual(eventsNeededBy(frames), [0, 65_535, 7]);
    const stamp = stampFromCounter(3n);
    assert.deepEqual(
      auditEntries(stamp, frames, events),
      frames.map((f, i) => ({ position: positionOf(stamp, f.index), bytes: records[i] })),
    );
    // A block of the first format holds each record in place (a u32 length, then the record).
    const parts: Buffer[] = [Buffer.from([1, 0, 0, 0, entries.length])];
    entries.forEach((e, i) => {
      const head = Buffer.alloc(12);
      head.writeUInt16BE(e.index, 0);
      head.writeDoubleBE(e.timestampMs, 2);
      const tenant = e.tenantId === null ? Buffer.alloc(0) : Buffer.from(e.tenantId);
      head.writeUInt16BE(e.tenantId === null ? 0xffff : tenant.length, 10);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(records[i]!.length, 0);
      parts.push(head, tenant, length, records[i]!);
    });
    const first = decodeAuditBlock(Buffer.concat(parts));
    assert.deepEqual(
      first,
      entries.map((e, i) => ({ ...e, record: records[i] })),
    );
    assert.deepEqual(eventsNeededBy(first), []);
    assert.deepEqual(
      auditEntries(stamp, first, []).map((e) => e.bytes),
      records,
    );
  });

  it('stores index lists, counts and positions', () => {
    assert.deepEqual(decodeIndexList(encodeIndexList([0, 1, 65_535])), [0, 1, 65_535]);
    assert.deepEqual(encodeIndexList([1, 258]), Buffer.from([0, 1, 1, 2]));
    assert.equal(decodeCount(encodeCount(123_456_789)), 123_456_789);
    assert.deepEqual(encodeCount(1), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), 'little-endian, as FoundationDB atomic add');
    const position = positionOf(stampFromCounter(5n), 513);
    assert.deepEqual(position, Buffer.from('000000000000000500000201', 'hex'));
    assert.deepEqual(stampOf(position), stampFromCounter(5n));
    assert.equal(indexOf(position), 513);
  });

  it('stores a dead letter in the codec’s shared structure, with its tenant', () => {
    const codec = new Codec();
    const position = positionOf(stampFromCounter(3n), 1);
    const record: DeadLetterRecord = {
      consumer: 'Mailer',
      position,
      event: codec.encode({ any: 'event' }),
      error: { code: 'ERR_X', name: 'Error', message: 'boom' },
      attempts: 5,
      failedAt: '2024-01-01T00:00:00.000Z',
      tenantId: 'tenant-1',
    };
    const value = encodeDeadLetter(codec, record);
    assert.deepEqual(decodeDeadLetter(new Codec(), { consumer: 'Mailer', position }, value), record);
    const withStack = { ...record, tenantId: null, error: { ...record.error, stack: 'Error: boom\n    at x' } };
    assert.deepEqual(decodeDeadLetter(codec, { consumer: 'Mailer', position }, encodeDeadLetter(codec, withStack)), withStack);
  });
});

describe('store layout: planning an append', () => {
  const stamp = stampFromCounter(7n);
  const AUDIT_C = randomUUID();

  it('gives stored events consecutive indices and one index key per tenant and per millisecond', () => {
    const items = [
      item('a', { tenantId: 'x', timestampMs: 10 }),
      item('b', { tenantId: 'y', timestampMs: 10 }),
      item('c', { tenantId: 'x', timestampMs: 11, auditId: AUDIT_C }),
      item('d', { tenantId: null, timestampMs: 10 }),
    ];
    const plan = layout.planAppend(stamp, items);
    assert.deepEqual(
      plan.result.positions,
      [0, 1, 2, 3].map((i) => positionOf(stamp, i)),
    );
    assert.deepEqual(plan.result.duplicate, [false, false, false, false]);
    assert.equal(plan.events, 4);
    assert.equal(plan.auditEntries, 1);
    const value = (key: Buffer) => plan.puts.find((p) => p.key.equals(key))?.value;
    assert.deepEqual(decodeIndexList(value(layout.tenantKey('x', stamp))!), [0, 2]);
    assert.deepEqual(decodeIndexList(value(layout.tenantKey('y', stamp))!), [1]);
    assert.deepEqual(decodeIndexList(value(layout.timeKey(10, stamp))!), [0, 1, 3]);
    assert.deepEqual(decodeIndexList(value(layout.timeKey(11, stamp))!), [2]);
    assert.deepEqual(value(layout.idKey('c')), positionOf(stamp, 2));
    assert.deepEqual(decodeAuditBlock(value(layout.auditKey(stamp, 0))!), [
      { index: 2, timestampMs: 11, tenantId: 'x', auditId: AUDIT_C, record: null },
    ]);
    const block = new DecodedBlock(value(layout.blockKey(stamp, 0))!);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => block.bytes(i).toString()),
      ['event a', 'event b', 'event c', 'event d'],
    );
    assert.equal(plan.puts.length, 1 + 4 + 2 + 2 + 1);
  });

  it('skips ids already stored or repeated in the batch', () => {
    const earlier = positionOf(stampFromCounter(2n), 9);
    const items = [
      item('new', { checkDuplicate: true }),
      item('old', { checkDuplicate: true }),
      item('new', { checkDuplicate: true }),
      item('fresh'),
      item('old', { checkDuplicate: true }),
    ];
    assert.deepEqual(idsToCheck(items), ['new', 'old']);
    const plan = layout.planAppend(stamp, items, new Map([['old', earlier]]));
    assert.deepEqual(plan.result.duplicate, [false, true, true, false, true]);
    assert.deepEqual(plan.result.positions, [positionOf(stamp, 0), earlier, positionOf(stamp, 0), positionOf(stamp, 1), earlier]);
    assert.equal(plan.events, 2);
    assert.deepEqual(layout.planAppend(stamp, [item('old', { checkDuplicate: true })], new Map([['old', earlier]])).puts, []);
  });

  it('rejects timestamps that are not whole milliseconds', () => {
    assert.throws(() => layout.planAppend(stamp, [item('a', { timestampMs: Number.NaN })]), RangeError);
    assert.throws(() => layout.planAppend(stamp, [item('a', { timestampMs: 1.5 })]), RangeError);
  });

  it('leaves the id index to the caller with idsApart, its positions patched with the rest', () => {
    const items = [item('a', { tenantId: 'x', checkDuplicate: true }), item('b'), item('a', { checkDuplicate: true })];
    const placeholder = Buffer.alloc(10, 0xee);
    const whole = layout.planAppend(placeholder, items);
    const apart = layout.planAppend(placeholder, items, new Map(), { idsApart: true });
    assert.equal(whole.ids, null);
    assert.deepEqual(
      apart.ids!.items.map((it) => it.eventId),
      ['a', 'b'],
    );
    const idPrefix = layout.idKey('').subarray(0, -2);
    const isId = (put: Put) => put.key.subarray(0, idPrefix.length).equals(idPrefix);
    assert.deepEqual(
      apart.puts,
      whole.puts.filter((p) => !isId(p)),
    );
    patchStamp(apart, stamp);
    assert.deepEqual(apart.ids!.positions, [positionOf(stamp, 0), positionOf(stamp, 1)]);
    assert.deepEqual(apart.result.positions, [positionOf(stamp, 0), positionOf(stamp, 1), positionOf(stamp, 0)]);
    // The reused key buffer holds the same bytes as idKey, whatever came before it.
    for (const id of ['0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b', '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c', 'é', 'z', 'with\0nul', '']) {
      assert.deepEqual(layout.scratchIdKey(id), layout.idKey(id), id);
    }
  });

  it('chunks a large batch and its audit block', () => {
    const big = Buffer.alloc(120_000, 1);
    const plan = layout.planAppend(stamp, [
      item('a', { bytes: big, auditId: randomUUID() }),
      item('b', { bytes: big, auditId: randomUUID() }),
    ]);
    const blockPuts = plan.puts.filter((p) => inRange(p.key, layout.blockRange()));
    assert.equal(blockPuts.length, 3);
    assert.equal(plan.puts.filter((p) => inRange(p.key, layout.auditRange())).length, 1, 'audit entries do not repeat the events');
    for (const put of plan.puts) assert.ok(put.value.length <= MAX_VALUE_BYTES);
    const block = new DecodedBlock(joinChunks(blockPuts.map((p) => p.value)));
    assert.deepEqual(block.bytes(1), big);
    // 3000 entries with 40-byte tenants: an audit block of about 264 KB, in 3 chunks.
    const many = Array.from({ length: 3000 }, (_, i) => item(`e${i}`, { tenantId: 't'.repeat(40), auditId: randomUUID() }));
    const manyPlan = layout.planAppend(stamp, many);
    const auditPuts = manyPlan.puts.filter((p) => inRange(p.key, layout.auditRange()));
    assert.equal(auditPuts.length, 3);
    for (const put of manyPlan.puts) assert.ok(put.value.length <= MAX_VALUE_BYTES);
    assert.deepEqual(
      decodeAuditBlock(joinChunks(auditPuts.map((p) => p.value))).map((f) => f.auditId),
      many.map((it) => it.auditId),
    );
  });
});

describe('store layout: chunked values read back', () => {
  const stamp = stampFromCounter(9n);

  it('gathers chunked values from keys read in order, and reports a value whose chunks are missing or out of order', () => {
    const gatherer = new ChunkGatherer<string>(
      (a, b) => a === b,
      (id) => `value ${id}`,
    );
    const bytes = (text: string) => Buffer.from(text);
    const seen = [
      gatherer.add('a', 0, bytes('a0')),
      gatherer.add('a', 1, bytes('a1')),
      gatherer.add('b', 0, bytes('b0')), // hands back a
      gatherer.add('c', 0, bytes('c0')), // hands back b
      gatherer.add('c', 2, bytes('c2')), // chunk 1 missing
      gatherer.add('d', 1, bytes('d1')), // hands back c; d has no chunk 0
      gatherer.add('e', 0, bytes('e0')), // hands back d
      gatherer.add('e', 0, bytes('e0')), // chunk 0 twice
      gatherer.add('f', 0, bytes('f0')),
    ].filter((g) => g !== null);
    seen.push(gatherer.finish()!);
    assert.equal(gatherer.finish(), null, 'empty once finished');
    assert.deepEqual(
      seen.map((g) => [g!.id, g!.value?.toString() ?? null]),
      [
        ['a', 'a0a1'],
        ['b', 'b0'],
        ['c', null],
        ['d', null],
        ['e', null],
        ['f', 'f0'],
      ],
    );
    const errors = seen.filter((g) => g!.corrupt).map((g) => g!.corrupt!);
    assert.ok(errors.every((e) => e.code === 'ERR_EVENTRAIL_STORE_CORRUPT'));
    assert.deepEqual(
      errors.map((e) => e.message),
      [
        'corrupt store data: value c: chunk 2 where 1 was expected',
        'corrupt store data: value d: chunk 1 where 0 was expected',
        'corrupt store data: value e: chunk 0 where 1 was expected',
      ],
    );
    // The layout's gatherers compare stamps and dead letter keys by value.
    const blocks = blockGatherer('audit block');
    assert.equal(blocks.add(Buffer.from(stamp), 0, bytes('x')), null);
    assert.equal(blocks.add(Buffer.from(stamp), 1, bytes('y')), null);
    assert.equal(blocks.finish()!.value!.toString(), 'xy');
    assert.equal(blocks.add(Buffer.from(stamp), 1, bytes('y')), null);
    assert.match(blocks.finish()!.corrupt!.message, new RegExp(`audit block ${stamp.toString('hex')}: chunk 1 where 0`));
  });

  it('copies events out of a block’s chunks, and names a chunk that is missing or short', () => {
    const events = [10, 120_000, 5, 99_000, 7, 250_000].map((size, i) => ({ bytes: Buffer.alloc(size, i + 1), timestampMs: 100 + i }));
    const block = encodeBlock(events);
    const chunks = chunkValue(block);
    const all = blockSpans(chunks[0]!, [0, 1, 2, 3, 4, 5])!;
    const asked: number[] = [];
    const copied = copySpans(stamp, all.spans, (c) => {
      asked.push(c);
      return chunks[c];
    });
    assert.deepEqual(
      copied.map((e) => e.index),
      [0, 1, 2, 3, 4, 5],
    );
    copied.forEach((e) => {
      assert.ok(e.bytes.equals(events[e.index]!.bytes), `event ${e.index}`);
      assert.equal(e.timestampMs, 100 + e.index);
    });
    // Header 77 bytes, then the events back to back: 469 099 bytes, chunks 0 to 4.
    assert.equal(chunks.length, 5);
    assert.deepEqual(asked, [0, 1, 2, 3, 4], 'each chunk asked for once, in order');
    assert.ok(
      copied.every((e) => e.bytes.buffer === copied[0]!.bytes.buffer),
      'one buffer for the events of a block',
    );

    const some = blockSpans(chunks[0]!, [3, 5])!; // bytes 120 092-219 091 and 219 099-469 098
    assert.deepEqual(chunksOfSpans(some.spans), [1, 2, 3, 4]);
    assert.deepEqual(chunksOfSpans(blockSpans(chunks[0]!, [0, 2])!.spans), [1], 'event 0 lies in the first chunk, event 2 in the second');
    assert.deepEqual(chunksOfSpans(blockSpans(chunks[0]!, [0])!.spans), [], 'an event in the first chunk needs no other');
    const partial = copySpans(stamp, some.spans, (c) => chunks[c]);
    assert.ok(partial[0]!.bytes.equals(events[3]!.bytes) && partial[1]!.bytes.equals(events[5]!.bytes));

    const missing = (gone: number) => () => copySpans(stamp, some.spans, (c) => (c === gone ? undefined : chunks[c]));
    for (const gone of [1, 3, 4]) {
      assert.throws(
        missing(gone),
        (err: StoreCorruptError) =>
          err.code === 'ERR_EVENTRAIL_STORE_CORRUPT' && err.message.includes(`block ${stamp.toString('hex')} has no chunk ${gone}`),
      );
    }
    // A chunk shorter than the header says: what a lost or reordered chunk looks like from here.
    const short = () => copySpans(stamp, some.spans, (c) => (c === 2 ? chunks[2]!.subarray(0, 10) : chunks[c]));
    assert.throws(
      short,
      (err: StoreCorruptError) => err.code === 'ERR_EVENTRAIL_STORE_CORRUPT' && /chunk 2 ends before event 3/.test(err.message),
    );
  });

  it('keys dead letters by chunk: the first chunk keeps the key of an unchunked letter, the rest sort right after it', () => {
    const codec = new Codec();
    const position = positionOf(stamp, 4);
    const record: DeadLetterRecord = {
      consumer: 'Mailer',
      position,
      event: codec.encode({ pad: 'x'.repeat(300_000) }),
      error: { code: 'ERR_X', name: 'Error', message: 'boom' },
      attempts: 2,
      failedAt: '2024-01-01T00:00:00.000Z',
      tenantId: null,
    };
    const puts = layout.deadLetterPuts(codec, record);
    assert.equal(puts.length, 4);
    assert.ok(puts.every((p) => p.value.length <= MAX_VALUE_BYTES));
    // The first key is the one dead letters had before chunking: (prefix, 'dl', consumer, position).
    assert.deepEqual(puts[0]!.key, pack(['eventrail', 'dl', 'Mailer', { type: 'versionstamp', value: position }]));
    puts.forEach((p, c) => {
      if (c > 0) assert.deepEqual(p.key, pack(['eventrail', 'dl', 'Mailer', { type: 'versionstamp', value: position }, c]));
      assert.deepEqual(layout.decodeDeadLetterKey(p.key), { consumer: 'Mailer', position, chunk: c });
    });
    assert.deepEqual(
      sorted(puts.map((p) => p.key)),
      puts.map((p) => p.key),
      'chunks in key order',
    );
    const own = layout.deadLetterChunks('Mailer', position);
    assert.ok(puts.every((p) => inRange(p.key, own)));
    for (const other of [
      layout.deadLetterKey('Mailer', positionOf(stamp, 5)),
      layout.deadLetterKey('Mailer', positionOf(stamp, 3), 2),
      layout.deadLetterKey('Mailer\0', position),
    ]) {
      assert.ok(!inRange(other, own), 'a neighbour is not cleared with it');
    }
    assert.ok(puts.every((p) => inRange(p.key, layout.deadLetterRange('Mailer')) && !inRange(p.key, layout.deadLetterRange('Mailer2'))));
    assert.throws(
      () => layout.decodeDeadLetterKey(Buffer.concat([puts[0]!.key, Buffer.from([0x14])])),
      { code: 'ERR_EVENTRAIL_STORE_CORRUPT' },
      'chunk 0 is never written as an item',
    );
    assert.throws(() => layout.decodeDeadLetterKey(puts[0]!.key.subarray(0, puts[0]!.key.length - 1)), {
      code: 'ERR_EVENTRAIL_STORE_CORRUPT',
    });

    // Read back: gathered and decoded; an unchunked letter stored before is read as a letter of one chunk.
    const small = { ...record, position: positionOf(stamp, 6), event: codec.encode({ small: true }), tenantId: 'tenant-1' };
    const stored = [...puts, { key: layout.deadLetterKey('Mailer', small.position), value: encodeDeadLetter(codec, small) }];
    const gatherer = deadLetterGatherer();
    const letters = [];
    for (const { key, value } of stored) {
      const { consumer, position: at, chunk } = layout.decodeDeadLetterKey(key);
      const whole = gatherer.add({ consumer, position: at }, chunk, value);
      if (whole) letters.push(whole);
    }
    letters.push(gatherer.finish()!);
    assert.deepEqual([...decodeDeadLetters(codec, letters, {})], [record, small]);
    assert.deepEqual([...decodeDeadLetters(codec, letters, { tenantId: 'tenant-1' })], [small]);

    // A garbage value and a letter missing a chunk: reported, the others still read; without a handler, thrown.
    const broken = [
      { id: letters[0]!.id, value: Buffer.from('not a dead letter') },
      gatherLetter(layout, codec, record, [0, 2, 3]),
      letters[1]!,
    ];
    const reported: StoreCorruptError[] = [];
    assert.deepEqual([...decodeDeadLetters(codec, broken, { onCorrupt: (e) => reported.push(e) })], [small]);
    assert.equal(reported.length, 2);
    assert.ok(reported.every((e) => e.code === 'ERR_EVENTRAIL_STORE_CORRUPT'));
    assert.throws(() => [...decodeDeadLetters(codec, broken, {})], { code: 'ERR_EVENTRAIL_STORE_CORRUPT' });
  });
});

/** The gathered value of `record` from only some of its chunks. */
function gatherLetter(layout: StoreLayout, codec: Codec, record: DeadLetterRecord, chunks: readonly number[]) {
  const gatherer = deadLetterGatherer();
  const puts = layout.deadLetterPuts(codec, record);
  for (const c of chunks) gatherer.add({ consumer: record.consumer, position: record.position }, c, puts[c]!.value);
  return gatherer.finish()!;
}
