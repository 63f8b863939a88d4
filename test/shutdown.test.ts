import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusClosedError, createBus } from '../src/index.js';
import { fixture, recorder, tempDir } from './helpers.js';

const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

describe('shutdown', () => {
  it('SIGTERM with closeOnSignals drains every acknowledged event, then exits 0', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const acked = dir.file('acked.txt');
    try {
      process.env.SLOW_MS = '2';
      const child = spawn(process.execPath, [fixture('sigterm-child'), dir.file('store'), fixture('slow')], {
        env: { ...process.env, ACKED_OUT: acked, RECORDER_OUT: out.path },
        stdio: ['ignore', 'inherit', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while (lines(acked).length < 200) {
        assert.ok(Date.now() < deadline, 'the child acknowledged events');
        await sleep(10);
      }
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /SIGTERM received/);
      const ackedIds = lines(acked);
      const delivered = new Set(out.read().map((d) => d.event_id));
      assert.deepEqual(
        ackedIds.filter((id) => !delivered.has(id)),
        [],
        'every acknowledged event was delivered before exit',
      );
      // Nothing is left past the checkpoint: reopening delivers nothing again.
      const before = out.read().length;
      const bus = await createBus({ store: { kind: 'lmdb', path: dir.file('store') }, consumers: [fixture('recorder')] });
      await bus.flush();
      await bus.close();
      assert.equal(out.read().length, before, 'no event left undelivered after a clean shutdown');
    } finally {
      delete process.env.SLOW_MS;
      dir.remove();
    }
  });

  it('close() under load loses nothing; a second close() is harmless; emit after close rejects', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    process.env.SLOW_MS = '1';
    const bus = await createBus({ store: { kind: 'lmdb', path: dir.file('store') }, consumers: [fixture('slow')], dispatch: { maxBatch: 8 } });
    try {
      const receipts = Array.from({ length: 300 }, (_, seq) =>
        bus.emit({ event_type: 'SessionCreated', payload: { seq }, metadata: { source: 'test' } }),
      );
      const closing = bus.close();
      const again = bus.close();
      await Promise.all([closing, again]);
      const ids = (await Promise.all(receipts)).map((r) => r.event_id);
      const delivered = new Set(out.read().map((d) => d.event_id));
      assert.equal(ids.filter((id) => !delivered.has(id)).length, 0);
      await assert.rejects(bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } }), BusClosedError);
    } finally {
      delete process.env.SLOW_MS;
      dir.remove();
    }
  });
});
