/**
 * The bus's diagnostics_channel channels, read by real subscribers:
 * eventrail:emit for each accepted event, eventrail:commit per durable batch,
 * eventrail:deliver once every consumer is done with an event, and
 * eventrail:dead-letter for a delivery out of attempts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import {
  CHANNEL_NAMES,
  type CommitMessage,
  type DeadLetterMessage,
  type DeliverMessage,
  type EmitMessage,
  type EventInput,
} from '../src/index.js';
import { fixture, uuid, withBus } from './helpers.js';

describe('diagnostics channels', () => {
  it('publish emit, commit, deliver and dead-letter messages to subscribers', async () => {
    const seen = {
      emit: [] as EmitMessage[],
      commit: [] as CommitMessage[],
      deliver: [] as DeliverMessage[],
      deadLetter: [] as DeadLetterMessage[],
    };
    const subscribers = {
      emit: (m: unknown) => seen.emit.push(m as EmitMessage),
      commit: (m: unknown) => seen.commit.push(m as CommitMessage),
      deliver: (m: unknown) => seen.deliver.push(m as DeliverMessage),
      deadLetter: (m: unknown) => seen.deadLetter.push(m as DeadLetterMessage),
    };
    assert.deepEqual(CHANNEL_NAMES, {
      emit: 'eventrail:emit',
      commit: 'eventrail:commit',
      deliver: 'eventrail:deliver',
      deadLetter: 'eventrail:dead-letter',
    });
    for (const key of Object.keys(subscribers) as Array<keyof typeof subscribers>)
      diagnostics_channel.subscribe(CHANNEL_NAMES[key], subscribers[key]);
    try {
      await withBus(
        (dir) => ({
          store: { kind: 'lmdb', path: dir.file('store') },
          consumers: [fixture('trace-consumer'), fixture('recorder')],
          pool: { maxThreads: 1 },
          delivery: { maxAttempts: 1 },
          dispatch: { lingerMs: 50 },
        }),
        async ({ bus }) => {
          const metadata = { source: 'shop' };
          const supplied = uuid();
          const inputs: EventInput[] = [
            { event_id: supplied, event_type: { Custom: 'OrderPlaced' }, payload: { n: 1 }, metadata },
            { event_type: { Custom: 'OrderPlaced' }, payload: { fail: true }, metadata },
            { event_type: 'UserLoggedIn', payload: { n: 3 }, metadata },
          ];
          const receipts = await bus.emitMany(inputs);
          // Rejected: no emit message.
          await assert.rejects(bus.emit({ event_type: 'NoSuchType', metadata } as never), { code: 'ERR_EVENTRAIL_INVALID_EVENT' });
          // An emitMany with one invalid input accepts nothing: no emit message for its valid ones either.
          await assert.rejects(
            bus.emitMany([{ event_type: 'UserLoggedIn', payload: { n: 4 }, metadata }, { event_type: 'NoSuchType', metadata } as never]),
            { code: 'ERR_EVENTRAIL_INVALID_EVENT' },
          );
          // A duplicate of a stored event_id: committed (counted as a duplicate), not delivered again.
          const again = await bus.emit({ event_id: supplied, event_type: { Custom: 'OrderPlaced' }, payload: { n: 1 }, metadata });
          assert.equal(again.duplicate, true);
          await bus.flush();

          assert.deepEqual(
            seen.emit.map((m) => m.event.event_id),
            [...receipts.map((r) => r.event_id), supplied],
          );
          assert.deepEqual(seen.emit[2]!.event.payload, { n: 3 });
          assert.equal(seen.emit[2]!.event.event_type, 'UserLoggedIn');

          assert.equal(
            seen.commit.reduce((n, m) => n + m.count, 0),
            4,
          );
          assert.equal(
            seen.commit.reduce((n, m) => n + m.duplicates, 0),
            1,
          );
          for (const m of seen.commit) assert.ok(m.durationMs >= 0);

          const delivered = new Map(seen.deliver.map((m) => [m.eventId, m.position]));
          assert.equal(seen.deliver.length, 3, 'one deliver message per event, the duplicate none');
          for (const r of receipts) assert.equal(delivered.get(r.event_id), r.position);

          assert.equal(seen.deadLetter.length, 1);
          const dead = seen.deadLetter[0]!;
          assert.deepEqual(
            [dead.eventId, dead.consumer, dead.position, dead.attempts],
            [receipts[1]!.event_id, 'Traced', receipts[1]!.position, 1],
          );
          assert.match(dead.error.message, /failing on purpose/);
        },
      );
    } finally {
      for (const key of Object.keys(subscribers) as Array<keyof typeof subscribers>)
        diagnostics_channel.unsubscribe(CHANNEL_NAMES[key], subscribers[key]);
    }
  });

  it('publish no emit message for events refused by backpressure, or left waiting for room by close()', async () => {
    const emitted: string[] = [];
    const subscriber = (m: unknown) => emitted.push((m as EmitMessage).event.event_id);
    diagnostics_channel.subscribe(CHANNEL_NAMES.emit, subscriber);
    const metadata = { source: 'shop' };
    const input = (n: number): EventInput => ({ event_id: uuid(), event_type: 'UserLoggedIn', payload: { n }, metadata });
    // Two events fill the bus: their handlers wait until close() gives up on them.
    const options = (onOverflow: 'reject' | 'wait') => ({
      store: { kind: 'none' as const },
      consumers: [{ module: fixture('signal-waiter'), options: { wait: true } }],
      pool: { minThreads: 1, maxThreads: 1 },
      delivery: { handlerTimeoutMs: 600_000, maxAttempts: 1 },
      dispatch: { maxBatch: 1 },
      backpressure: { maxPending: 2, onOverflow },
    });
    try {
      // withBus closes without a timeout, which would wait for ever for these handlers: each body closes first.
      await withBus(options('reject'), async ({ bus }) => {
        try {
          const accepted = [input(0), input(1)];
          await bus.emitMany(accepted);
          await assert.rejects(bus.emit(input(2)), { code: 'ERR_EVENTRAIL_BACKPRESSURE' });
          await assert.rejects(bus.emitMany([input(3)]), { code: 'ERR_EVENTRAIL_BACKPRESSURE' });
          assert.equal(bus.post(input(4))?.code, 'ERR_EVENTRAIL_BACKPRESSURE');
          assert.deepEqual(
            emitted,
            accepted.map((e) => e.event_id),
          );
        } finally {
          await bus.close({ timeoutMs: 50 });
        }
      });
      emitted.length = 0;
      await withBus(options('wait'), async ({ bus }) => {
        let refused: Promise<void> = Promise.resolve();
        try {
          const accepted = [input(0), input(1)];
          await bus.emitMany(accepted);
          refused = assert.rejects(bus.emit(input(2)), { code: 'ERR_EVENTRAIL_CLOSED' });
          assert.equal(bus.post(input(3)), null);
          await bus.close({ timeoutMs: 50 });
          assert.deepEqual(
            emitted,
            accepted.map((e) => e.event_id),
          );
        } finally {
          await bus.close({ timeoutMs: 50 });
        }
        await refused;
      });
    } finally {
      diagnostics_channel.unsubscribe(CHANNEL_NAMES.emit, subscriber);
    }
  });
});
