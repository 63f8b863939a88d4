import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'lmdb';
import { createBus, type StoreCorruptError } from '../src/index.js';
import { StoreLayout } from '../src/store/layout.js';
import { fixture, recorder, tempDir } from './helpers.js';

describe('corrupt data read back from the store', () => {
  it('a corrupted block and a corrupted event become coded errors; the replay of the rest continues', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const path = dir.file('store');
    try {
      const writer = await createBus({ store: { kind: 'lmdb', path }, consumers: [fixture('recorder')] });
      for (let batch = 0; batch < 3; batch++) {
        await writer.emitMany(
          Array.from({ length: 10 }, (_, i) => ({ event_type: 'SessionCreated' as const, payload: { batch, i }, metadata: { source: 'test' } })),
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

      const reader = await createBus({ store: { kind: 'lmdb', path }, consumers: [fixture('recorder')] });
      const errors: StoreCorruptError[] = [];
      const seen: Array<{ batch: number; i: number }> = [];
      for await (const event of reader.replay({ onCorrupt: (e) => errors.push(e) })) seen.push(event.payload as { batch: number; i: number });
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
      await reader.close();
      assert.ok(out.read().length >= 30);
    } finally {
      dir.remove();
    }
  });
});
