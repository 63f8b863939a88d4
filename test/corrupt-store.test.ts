import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'lmdb';
import { Codec } from '../src/codec.js';
import { createBus, type AuditEntry, type StoreCorruptError } from '../src/index.js';
import { decodeDeadLetter, encodeDeadLetter } from '../src/store/layout/dead-letters.js';
import { StoreLayout } from '../src/store/layout/keys.js';
import { collect, eventOffset, recorder, tempDir, uuid } from './helpers.js';

const CORRUPT = 'ERR_EVENTRAIL_STORE_CORRUPT';

describe('corrupt data read back from the store', () => {
  it('a corrupted block and a corrupted event become coded errors; the replay of the rest continues', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const path = dir.file('store');
    try {
      const writer = await createBus({ store: { kind: 'lmdb', path }, consumers: [out.consumer('recorder')] });
      for (let batch = 0; batch < 3; batch++) {
        await writer.emitMany(
          Array.from({ length: 10 }, (_, i) => ({
            event_type: 'SessionCreated' as const,
            payload: { batch, i },
            metadata: { source: 'test' },
          })),
        );
      }
      await writer.close();

      // Damage the stored bytes directly, as a failing disk would.
      const layout = new StoreLayout('eventrail');
      const db = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary' });
      const range = layout.blockRange();
      const blocks = [...db.getRange({ start: range.start, end: range.end })].map(({ key, value }) => ({ key, value: Buffer.from(value) }));
      assert.equal(blocks.length, 3, 'one block per commit');
      // Block 2: garbage from the first byte.
      await db.put(blocks[1]!.key, Buffer.from('this is not a block at all'));
      // Block 3: the block is intact but its 5th event's bytes start with 0xc1, which msgpack never uses.
      const third = blocks[2]!.value;
      const count = third.readUInt32BE(1);
      let at = 5 + count * 12;
      for (let i = 0; i < 4; i++) at += third.readUInt32BE(5 + i * 4);
      third[at] = 0xc1;
      await db.put(blocks[2]!.key, third);
      await db.close();

      const reader = await createBus({ store: { kind: 'lmdb', path }, consumers: [out.consumer('recorder')] });
      const errors: StoreCorruptError[] = [];
      const seen: Array<{ batch: number; i: number }> = [];
      for await (const event of reader.replay({ onCorrupt: (e) => errors.push(e) }))
        seen.push(event.payload as { batch: number; i: number });
      assert.equal(errors.length, 2, errors.map((e) => e.message).join('\n'));
      assert.ok(errors.every((e) => e.code === 'ERR_EVENTRAIL_STORE_CORRUPT'));
      assert.deepEqual(
        seen.map((p) => `${p.batch}.${p.i}`),
        [...Array.from({ length: 10 }, (_, i) => `0.${i}`), ...Array.from({ length: 10 }, (_, i) => `2.${i}`).filter((k) => k !== '2.4')],
      );

      // Without onCorrupt, the bus reports it as a warning and goes on.
      const warnings: string[] = [];
      reader.on('warning', (m) => warnings.push(m));
      let count2 = 0;
      for await (const _ of reader.replay()) count2++;
      assert.equal(count2, 19);
      assert.equal(warnings.length, 2);
      // Nothing was left past the checkpoint to deliver again, and nothing was dead-lettered.
      assert.deepEqual(await reader.deadLetters.list(), []);
      await reader.close();
      assert.equal(out.read().length, 30, 'each event delivered once, by the writer');
    } finally {
      dir.remove();
    }
  });

  it('a corrupt audit block, audited event or block chunk is reported and the audit query and replay go on', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const path = dir.file('store');
    const options = {
      store: { kind: 'lmdb' as const, path },
      consumers: [out.consumer('recorder')],
      audit: { eventTypes: ['UserLoggedIn' as const] },
    };
    try {
      const writer = await createBus(options);
      for (let batch = 0; batch < 4; batch++) {
        await writer.emitMany(
          Array.from({ length: 10 }, (_, i) => ({
            event_type: 'UserLoggedIn' as const,
            payload: { batch, i },
            metadata: { source: 'test', user_id: uuid() },
          })),
        );
      }
      await writer.flush();
      await writer.close();

      const layout = new StoreLayout('eventrail');
      const db = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary' });
      const read = (range: { start: Buffer; end: Buffer }) =>
        [...db.getRange(range)].map(({ key, value }) => ({ key, value: Buffer.from(value) }));
      const blocks = read(layout.blockRange());
      const audits = read(layout.auditRange());
      assert.equal(blocks.length, 4, 'one single-chunk block per commit');
      assert.equal(audits.length, 4, 'one single-chunk audit block per commit');
      const stampOf = (key: Buffer) => layout.decodeBlockKey(key).stamp;
      // Batch 0: its audit block gets a stray chunk 2 (no chunk 1): chunks out of order.
      await db.put(layout.auditKey(layout.decodeAuditKey(audits[0]!.key).stamp, 2), Buffer.from('stray'));
      // Batch 1: its audit block is garbage.
      await db.put(audits[1]!.key, Buffer.from('not an audit block'));
      // Batch 2: the 5th event's bytes start with 0xc1, which msgpack never uses.
      const third = blocks[2]!.value;
      third[eventOffset(third, 4)] = 0xc1;
      await db.put(blocks[2]!.key, third);
      // Batch 3: its event block gets a stray chunk 2 (no chunk 1).
      await db.put(layout.blockKey(stampOf(blocks[3]!.key), 2), Buffer.from('stray'));
      await db.close();

      const reader = await createBus(options);
      const key = (p: unknown) => `${(p as { batch: number }).batch}.${(p as { i: number }).i}`;
      const batch = (b: number, skip?: number) => Array.from({ length: 10 }, (_, i) => `${b}.${i}`).filter((_, i) => i !== skip);

      const auditErrors: StoreCorruptError[] = [];
      const entries: AuditEntry[] = await collect(reader.audit.query({ onCorrupt: (e) => auditErrors.push(e) }));
      assert.deepEqual(
        entries.map((e) => key(e.payload)),
        [...batch(2, 4), ...batch(3)],
      );
      assert.equal(auditErrors.length, 3, auditErrors.map((e) => e.message).join('\n'));
      assert.ok(auditErrors.every((e) => e.code === CORRUPT));
      assert.match(auditErrors[0]!.message, /audit block [0-9a-f]+: chunk 2 where 1 was expected/);
      assert.match(auditErrors[1]!.message, /malformed audit block/);
      assert.match(auditErrors[2]!.message, /cannot be decoded/);

      const replayErrors: StoreCorruptError[] = [];
      const events = await collect(reader.replay({ onCorrupt: (e) => replayErrors.push(e) }));
      assert.deepEqual(
        events.map((e) => key(e.payload)),
        [...batch(0), ...batch(1), ...batch(2, 4)],
      );
      assert.equal(replayErrors.length, 2, replayErrors.map((e) => e.message).join('\n'));
      assert.ok(replayErrors.every((e) => e.code === CORRUPT));
      assert.match(replayErrors[1]!.message, /block [0-9a-f]+: chunk 2 where 1 was expected/);

      // Without onCorrupt, each is a warning on the bus, and the query goes on.
      const warnings: unknown[] = [];
      reader.on('warning', (_m, cause) => warnings.push(cause));
      assert.equal((await collect(reader.audit.query())).length, 19);
      assert.equal(warnings.length, 3);
      assert.ok(warnings.every((w) => (w as StoreCorruptError).code === CORRUPT));
      // Filters still apply to what can be read.
      assert.equal((await collect(reader.audit.query({ limit: 5, onCorrupt: () => {} }))).length, 5);
      assert.deepEqual(await reader.deadLetters.list(), []);
      await reader.close();
      assert.equal(out.read().length, 40, 'each event delivered once, by the writer');
    } finally {
      dir.remove();
    }
  });

  it('a corrupt dead letter, or one whose event is corrupt, is reported; the others are listed and redriven', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const path = dir.file('store');
    const options = {
      store: { kind: 'lmdb' as const, path },
      consumers: [out.consumer('flaky')],
      delivery: { maxAttempts: 1, backoff: { initialMs: 1, maxMs: 2 } },
    };
    try {
      const writer = await createBus(options);
      // Each fails its first attempt, so each is dead-lettered; a redrive (attempt 2) succeeds.
      await writer.emitMany(
        Array.from({ length: 5 }, (_, i) => ({
          event_type: 'SessionCreated' as const,
          payload: { seq: i, failTimes: 1 },
          metadata: { source: 'test' },
        })),
      );
      await writer.flush();
      assert.equal((await writer.deadLetters.list()).length, 5);
      await writer.close();

      const layout = new StoreLayout('eventrail');
      const codec = new Codec();
      const db = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary' });
      const letters = [...db.getRange(layout.deadLetterRange())].map(({ key, value }) => ({ key, value: Buffer.from(value) }));
      assert.equal(letters.length, 5, 'one single-chunk dead letter per event');
      // Letter 0: garbage.
      await db.put(letters[0]!.key, Buffer.from('not a dead letter'));
      // Letter 1: a well-formed record whose event bytes are not msgpack.
      const one = decodeDeadLetter(codec, layout.decodeDeadLetterKey(letters[1]!.key), letters[1]!.value);
      await db.put(letters[1]!.key, encodeDeadLetter(codec, { ...one, event: Buffer.from([0xc1, 0x00]) }));
      // Letter 2: a stray chunk 2 with no chunk 1.
      const two = layout.decodeDeadLetterKey(letters[2]!.key);
      await db.put(layout.deadLetterKey(two.consumer, two.position, 2), Buffer.from('stray'));
      await db.close();

      const reader = await createBus(options);
      const errors: StoreCorruptError[] = [];
      const listed = await reader.deadLetters.list({ onCorrupt: (e) => errors.push(e) });
      assert.deepEqual(
        listed.map((d) => (d.event.payload as { seq: number }).seq),
        [3, 4],
      );
      assert.equal(errors.length, 3, errors.map((e) => e.message).join('\n'));
      assert.ok(errors.every((e) => e.code === CORRUPT));

      // The bus's warning path when no handler is given; the listing's own filters still apply.
      const warnings: unknown[] = [];
      reader.on('warning', (_m, cause) => warnings.push(cause));
      assert.equal((await reader.deadLetters.list()).length, 2);
      assert.equal(warnings.length, 3);
      assert.ok(warnings.every((w) => (w as StoreCorruptError).code === CORRUPT));
      assert.equal((await reader.deadLetters.list({ limit: 1, onCorrupt: () => {} })).length, 1);

      const redriveErrors: StoreCorruptError[] = [];
      assert.equal(await reader.deadLetters.redrive({ onCorrupt: (e) => redriveErrors.push(e) }), 2);
      assert.equal(redriveErrors.length, 3);
      await reader.flush();
      // The two redriven succeeded and are gone; the three corrupt ones stay, and are still reported.
      const left: StoreCorruptError[] = [];
      assert.deepEqual(await reader.deadLetters.list({ onCorrupt: (e) => left.push(e) }), []);
      assert.equal(left.length, 3);
      await reader.close();
      const attempts = out.read().map((d) => `${d.seq}@${d.attempt}`);
      assert.deepEqual(attempts.sort(), ['0@1', '1@1', '2@1', '3@1', '3@2', '4@1', '4@2']);
    } finally {
      dir.remove();
    }
  });
});
