import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, suiteBus, uuid, withBus } from './helpers.js';

describe('routing by event type', () => {
  const suite = suiteBus({
    store: { kind: 'none' },
    consumers: [fixture('recorder'), fixture('login-recorder')],
    pool: { maxThreads: 1 },
  });

  it('delivers to the consumers of the type and to wildcard consumers, and only to them', async () => {
    const user = uuid();
    const login = await suite.bus.emit({ event_type: 'UserLoggedIn', payload: { seq: 1 }, metadata: { source: 'test', user_id: user } });
    const logout = await suite.bus.emit({ event_type: 'UserLoggedOut', payload: { seq: 2 }, metadata: { source: 'test', user_id: user } });
    const custom = await suite.bus.emit({ event_type: { Custom: 'Audited' }, payload: { seq: 3 }, metadata: { source: 'test' } });
    const otherCustom = await suite.bus.emit({ event_type: { Custom: 'UserLoggedIn' }, payload: { seq: 4 }, metadata: { source: 'test' } });
    await suite.bus.flush();
    const seen = suite.out.read();
    const by = (consumer: string) => new Set(seen.filter((d) => d.consumer === consumer).map((d) => d.event_id));
    assert.deepEqual(by('Recorder'), new Set([login.event_id, logout.event_id, custom.event_id, otherCustom.event_id]));
    // A custom type named like a builtin is a different type.
    assert.deepEqual(by('LoginRecorder'), new Set([login.event_id, custom.event_id]));
    assert.equal(seen.length, 6);
    assert.ok(
      seen.every((d) => d.frozen),
      'events handed to consumers are frozen',
    );
    assert.ok(seen.every((d) => d.attempt === 1));
  });

  it('resolves emit with the event id and a position, in order', async () => {
    const a = await suite.bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } });
    const b = await suite.bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } });
    assert.match(a.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(a.position, /^[0-9a-f]{24}$/);
    assert.ok(a.position < b.position);
    assert.equal(a.duplicate, false);
  });

  it('reports the loaded consumers', () => {
    assert.deepEqual(
      suite.bus.consumers.map((c) => [c.name, c.eventTypes]),
      [
        ['Recorder', '*'],
        ['LoginRecorder', ['UserLoggedIn', 'Custom:Audited']],
      ],
    );
  });
});

describe('fan-out with a failing consumer', () => {
  it('one consumer throwing never keeps the event from the others', async () => {
    await withBus(
      {
        store: { kind: 'none' },
        consumers: [fixture('flaky'), fixture('recorder'), fixture('login-recorder')],
        pool: { maxThreads: 1 },
        delivery: { maxAttempts: 1 },
      },
      async ({ bus, out }) => {
        const events = await bus.emitMany(
          Array.from({ length: 20 }, (_, seq) => ({
            event_type: 'UserLoggedIn' as const,
            payload: { seq, fail: seq % 2 === 0 },
            metadata: { source: 'test', user_id: uuid() },
          })),
        );
        await bus.flush();
        const seen = out.read();
        for (const consumer of ['Recorder', 'LoginRecorder', 'Flaky']) {
          assert.deepEqual(
            new Set(seen.filter((d) => d.consumer === consumer).map((d) => d.event_id)),
            new Set(events.map((e) => e.event_id)),
            `${consumer} got every event`,
          );
        }
        const dead = await bus.deadLetters.list();
        assert.equal(dead.length, 10);
        assert.ok(dead.every((d) => d.consumer === 'Flaky' && d.error.message.includes('flaky failure') && d.attempts === 1));
        assert.deepEqual(new Set(dead.map((d) => (d.event.payload as { seq: number }).seq)), new Set([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]));
      },
    );
  });
});
