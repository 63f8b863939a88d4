import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus } from '../../src/index.js';
import { fixture, recorder, tempDir } from '../helpers.js';

const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

/** Waits (polling, no fixed sleep as the condition) until `ready()` holds, failing after `ms`. */
async function until(ready: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('crash recovery', () => {
  it('every acknowledged event survives SIGKILL mid-stream and is delivered at least once', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const store = dir.file('store');
    const acked = dir.file('acked.txt');
    try {
      for (let round = 0; round < 3; round++) {
        const before = lines(acked).length;
        const child = spawn(process.execPath, [fixture('crash-child'), store, fixture('recorder')], {
          env: { ...process.env, ACKED_OUT: acked, RECORDER_OUT: out.path },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
        // Kill once it has acknowledged a good number of events in this round: it is mid-stream, with emits in flight.
        await until(() => lines(acked).length >= before + 300 + round * 100, 60_000, `round ${round} to acknowledge events`);
        child.kill('SIGKILL');
        assert.equal(await exited, 'SIGKILL');
      }
      const ackedIds = new Set(lines(acked));
      assert.ok(ackedIds.size >= 900, `acknowledged ${ackedIds.size}`);

      // Reopen: the bus re-dispatches whatever lies past the checkpoint before it returns.
      const deliveredBefore = out.read().length;
      const bus = await createBus({ store: { kind: 'lmdb', path: store }, consumers: [out.consumer('recorder')], pool: { maxThreads: 1 } });
      await bus.flush();
      const stored = new Set<string>();
      for await (const event of bus.replay()) stored.add(event.event_id);
      await bus.close();

      const missingFromStore = [...ackedIds].filter((id) => !stored.has(id));
      assert.deepEqual(missingFromStore, [], 'every acknowledged event is stored');
      const deliveries = out.read();
      const delivered = new Set(deliveries.map((d) => d.event_id));
      console.error(
        `crash test: ${ackedIds.size} acknowledged, ${stored.size} stored, ${deliveries.length - deliveredBefore} delivered again on reopen`,
      );
      const undelivered = [...stored].filter((id) => !delivered.has(id));
      assert.deepEqual(undelivered, [], 'every stored event was delivered at least once');
    } finally {
      dir.remove();
    }
  });
});
