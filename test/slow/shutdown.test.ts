/**
 * Shutdown loses nothing it acknowledged, and the counts are exact: every
 * acknowledged event is stored once and delivered once per consumer, none is
 * dead-lettered, and every emit refused because the bus is closing is
 * rejected with the coded BusClosedError and not stored. closeOnSignals is
 * tested in a real child process (test/fixtures/signal-child.ts) for SIGTERM,
 * SIGINT and a second signal while draining; the test waits on the child's
 * messages, never on a timer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { BusClosedError, createBus, type EventBus } from '../../src/index.js';
import type { ChildMessage } from '../fixtures/signal-child.js';
import { fixture, linesOf, recorder, tempDir, type TempDir } from '../helpers.js';
import type { Delivered } from '../fixtures/record.js';

const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

/** How many times each event id occurs. */
function tally(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Each of `expected` occurs exactly once in `ids`, and nothing else does. */
function assertEachOnce(ids: readonly string[], expected: readonly string[], what: string): void {
  const counts = tally(ids);
  assert.equal(ids.length, expected.length, `${what}: ${ids.length} for ${expected.length} events`);
  for (const id of expected) assert.equal(counts.get(id), 1, `${what}: event ${id}`);
}

async function storedIds(bus: EventBus): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of bus.replay()) ids.push(e.event_id);
  return ids;
}

interface Child {
  readonly process: ChildProcess;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stderr(): string;
  /** Resolves with the first message from the child that satisfies `match` (seen or still to come). */
  message(match: (m: ChildMessage) => boolean): Promise<ChildMessage>;
}

/** Forks the signal child with `consumer` (a fixture name) given `options` (JSON, handed over in CONSUMER_OPTIONS). */
function startChild(
  dir: TempDir,
  consumer: string,
  options: Record<string, unknown>,
  mode: 'stream' | 'fixed',
  env: Record<string, string>,
): Child {
  const child = fork(fixture('signal-child'), [dir.file('store'), fixture(consumer), mode], {
    env: {
      ...process.env,
      ACKED_OUT: dir.file('acked.txt'),
      REJECTED_OUT: dir.file('rejected.txt'),
      CONSUMER_OPTIONS: JSON.stringify(options),
      ...env,
    },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const seen: ChildMessage[] = [];
  const waiting: Array<{ match: (m: ChildMessage) => boolean; resolve: (m: ChildMessage) => void }> = [];
  child.on('message', (m: ChildMessage) => {
    seen.push(m);
    for (const w of [...waiting]) {
      if (w.match(m)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    exited,
    stderr: () => stderr,
    message: (match) => {
      const found = seen.find(match);
      if (found !== undefined) return Promise.resolve(found);
      // Should the child die first, its exit code and stderr say why.
      return Promise.race([
        new Promise<ChildMessage>((resolve) => waiting.push({ match, resolve })),
        exited.then((code) => assert.fail(`the child exited (${code}) before the awaited message: ${stderr}`)),
      ]);
    },
  };
}

/**
 * Reopens the store in this process with the Recorder consumer: returns what
 * is stored, what recovery delivered again and the dead letters.
 */
/**
 * Opens the store again with the child's consumer group (`fixture` declares
 * the same name, and records): what that group had not finished is delivered
 * now, into a recorder of its own.
 */
async function reopen(dir: TempDir, fixture: 'slow-again' | 'hang-again') {
  const out = recorder(dir);
  const bus = await createBus({ store: { kind: 'lmdb', path: dir.file('store') }, consumers: [out.consumer(fixture)] });
  try {
    await bus.flush();
    return {
      stored: await storedIds(bus),
      redelivered: out.read().map((d) => d.event_id),
      deadLetters: await bus.deadLetters.list(),
    };
  } finally {
    await bus.close();
  }
}

describe('shutdown', { timeout: 120_000 }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} with closeOnSignals drains every acknowledged event, then exits 0: stored and delivered once each, nothing dead-lettered`, async () => {
      const dir = tempDir();
      const out = recorder(dir);
      try {
        const child = startChild(dir, 'slow', { out: out.path, ms: 2 }, 'stream', { ACK_TARGET: '200' });
        await child.message((m) => m.kind === 'acked');
        child.process.kill(signal);
        assert.equal(await child.exited, 0, child.stderr());
        assert.match(child.stderr(), new RegExp(`${signal} received, draining \\d+ pending events`));
        assert.match(child.stderr(), /eventrail: closed/);

        const acked = lines(dir.file('acked.txt'));
        assert.ok(acked.length >= 200);
        // Each of the eight producers stopped at its first refused emit: exactly eight, all BusClosedError.
        assert.deepEqual(lines(dir.file('rejected.txt')), Array(8).fill('ERR_EVENTRAIL_CLOSED'));
        assertEachOnce(
          linesOf<Delivered>(out.path, 'Slow').map((d) => d.event_id),
          acked,
          'delivered in the child before it exited',
        );

        const after = await reopen(dir, 'slow-again');
        assertEachOnce(after.stored, acked, 'stored (the refused emits left nothing)');
        assert.deepEqual(after.redelivered, [], 'nothing was left past the cursors: reopening the group delivers nothing again');
        assert.deepEqual(after.deadLetters, []);
      } finally {
        dir.remove();
      }
    });
  }

  it('a second signal while draining exits at once with code 1; what was acknowledged is delivered after the restart, once', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const N = 200;
    try {
      // The Hang consumer never finishes these events, so the drain cannot end before the second signal.
      const child = startChild(dir, 'hang', { out: out.path }, 'fixed', { FIXED_EVENTS: String(N) });
      await child.message((m) => m.kind === 'acked');
      child.process.kill('SIGTERM');
      await child.message((m) => m.kind === 'log' && m.message.includes('received'));
      child.process.kill('SIGTERM');
      assert.equal(await child.exited, 1, child.stderr());
      assert.match(child.stderr(), new RegExp(`SIGTERM received, draining ${N} pending events`));
      assert.match(child.stderr(), /second SIGTERM while draining, exiting now/);
      assert.doesNotMatch(child.stderr(), /eventrail: closed/);

      const acked = lines(dir.file('acked.txt'));
      assert.equal(acked.length, N);
      const handedToHang = tally(linesOf<Delivered>(out.path, 'Hang').map((d) => d.event_id));
      assert.ok(
        [...handedToHang.keys()].every((id) => acked.includes(id)),
        'the child only ever delivered acknowledged events',
      );

      // The store is durable: nothing acknowledged is lost, recovery delivers each event once.
      const after = await reopen(dir, 'hang-again');
      assertEachOnce(after.stored, acked, 'stored');
      assertEachOnce(after.redelivered, acked, 'delivered after the restart');
      assert.deepEqual(after.deadLetters, []);

      // That restart closed cleanly: a second one delivers nothing.
      const again = await reopen(dir, 'hang-again');
      assert.equal(again.redelivered.length, 0, 'no event delivered a second time');
      assert.equal(again.stored.length, N);
    } finally {
      dir.remove();
    }
  });

  it('close() under load: every acknowledged event stored and delivered once; emits after close() are BusClosedError and not stored', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    const N = 300;
    const bus = await createBus({
      store: { kind: 'lmdb', path: dir.file('store') },
      consumers: [out.consumer('slow', { ms: 1 })],
      dispatch: { maxBatch: 8 },
    });
    try {
      const receipts = Array.from({ length: N }, (_, seq) =>
        bus.emit({ event_type: 'SessionCreated', payload: { seq }, metadata: { source: 'test' } }),
      );
      const closing = bus.close();
      // Refused while the drain is running, and after it (each caught as it is made, so none goes unhandled).
      const refusal = (p: Promise<unknown>) =>
        p.then(
          () => 'accepted',
          (err: unknown) => err,
        );
      const refused = Array.from({ length: 20 }, (_, seq) =>
        refusal(bus.emit({ event_type: 'SessionCreated', payload: { seq: N + seq }, metadata: { source: 'test' } })),
      );
      refused.push(refusal(bus.emitMany([{ event_type: 'SessionCreated', metadata: { source: 'test' } }])));
      const again = bus.close();
      await Promise.all([closing, again]);
      refused.push(refusal(bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } })));
      for (const err of await Promise.all(refused)) {
        assert.ok(err instanceof BusClosedError && err.code === 'ERR_EVENTRAIL_CLOSED', `refused with BusClosedError, got ${String(err)}`);
      }

      const ids = (await Promise.all(receipts)).map((r) => r.event_id);
      assertEachOnce(
        out.read().map((d) => d.event_id),
        ids,
        'delivered before close() resolved',
      );

      const reopened = await reopen(dir, 'slow-again');
      assertEachOnce(reopened.stored, ids, 'stored (nothing of the refused emits)');
      assert.equal(reopened.redelivered.length, 0, 'nothing left past the cursors');
      assert.deepEqual(reopened.deadLetters, []);
    } finally {
      dir.remove();
    }
  });
});
