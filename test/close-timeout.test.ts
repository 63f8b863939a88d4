/**
 * close({ timeoutMs }) gives up on handlers still running: their ctx.signal
 * aborts (with the bus's closed error) before their workers are terminated,
 * and the events they were handling stay past the checkpoint, so the next bus
 * on the same store delivers them again.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createBus, type BusOptions } from '../src/index.js';
import type { SignalWaiterLine } from './fixtures/signal-waiter.js';
import { fixture, tempDir, uuid } from './helpers.js';

const dir = tempDir();
after(() => dir.remove());

const linesOf = (path: string): SignalWaiterLine[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SignalWaiterLine)
    : [];

/** Waits until `condition` holds; fails after `ms` (a bound for a broken build, not a timing assumption). */
async function until(condition: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

const options = (out: string, wait: boolean): BusOptions => ({
  store: { kind: 'lmdb', path: dir.file('store') },
  consumers: [{ module: fixture('signal-waiter'), options: { out, wait } }],
  pool: { minThreads: 1, maxThreads: 1 },
  // Far longer than the test: only the close may abort the handler.
  delivery: { handlerTimeoutMs: 600_000, maxAttempts: 1 },
  checkpoint: { intervalMs: 0 },
});

describe('close({ timeoutMs })', () => {
  it('aborts ctx.signal of a handler still running, and the event is delivered again after a restart', async () => {
    const waiting = dir.file('waiting.jsonl');
    const bus = await createBus(options(waiting, true));
    const warnings: string[] = [];
    bus.on('warning', (message) => warnings.push(message));
    const { event_id } = await bus.emit({ event_type: 'UserLoggedIn', payload: null, metadata: { source: 'test', user_id: uuid() } });
    await until(() => linesOf(waiting).some((l) => l.phase === 'started'), 'the handler started');

    await bus.close({ timeoutMs: 50 });

    const aborted = linesOf(waiting).filter((l) => l.phase === 'aborted');
    assert.deepEqual(
      aborted,
      [{ event_id, phase: 'aborted', code: 'ERR_EVENTRAIL_CLOSED' }],
      'the handler saw its signal abort before its worker was terminated',
    );
    assert.ok(
      warnings.some((w) => w.includes('gave up') && w.includes('1 events')),
      `a warning says what was given up: ${warnings.join(' | ')}`,
    );

    const delivered = dir.file('delivered.jsonl');
    const again = await createBus(options(delivered, false));
    try {
      await until(() => linesOf(delivered).length > 0, 'the event was delivered again');
      await again.flush();
      assert.deepEqual(
        linesOf(delivered).map((l) => l.event_id),
        [event_id],
      );
    } finally {
      await again.close();
    }
  });

  it('rejects a timeout that is not a number ≥ 0, and still closes when asked properly', async () => {
    const bus = await createBus({ ...options(dir.file('unused.jsonl'), false), store: { kind: 'none' } });
    await assert.rejects(bus.close({ timeoutMs: -1 }), TypeError);
    await assert.rejects(bus.close({ timeoutMs: '5' as unknown as number }), TypeError);
    assert.equal(bus.closed, false);
    await bus.close({ timeoutMs: 10_000 });
    assert.equal(bus.closed, true);
  });
});
