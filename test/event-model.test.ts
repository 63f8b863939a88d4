/**
 * The data contract: an event that went through the bus is, as JSON, exactly
 * what serde_json writes for the seed's Rust `Event` struct. The expected JSON
 * strings below are written by hand from serde's rules, not produced by this
 * package: struct fields in declaration order (event_id, timestamp, event_type,
 * payload, metadata; correlation_id, causation_id, user_id, tenant_id, source),
 * unit variants as strings, `Custom(String)` as {"Custom":"..."}, `None` as
 * null, `Uuid` in lowercase, and chrono's `DateTime<Utc>` as RFC 3339 in UTC
 * with a "Z" and 0, 3, 6 or 9 fraction digits. (Payload keys are written in
 * sorted order here, which is what serde_json's default map also does.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EventInput } from '../src/index.js';
import type { JsonDelivery } from './fixtures/json-recorder.js';
import { fixture, linesOf, suiteBus, uuid } from './helpers.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** chrono's `DateTime<Utc>` as serde writes it. */
const CHRONO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;

describe('the event as JSON', () => {
  const suite = suiteBus({
    store: { kind: 'none' },
    consumers: [fixture('json-recorder'), fixture('flaky')],
    pool: { maxThreads: 1 },
    delivery: { maxAttempts: 1 },
  });

  /** Emits, waits until every consumer is done, and returns the JSON JsonRecorder was handed. */
  async function deliveredJson(input: EventInput): Promise<string> {
    const receipt = await suite.bus.emit(input);
    await suite.bus.flush();
    const seen = linesOf<JsonDelivery>(suite.out.path, 'JsonRecorder').filter((d) => d.event_id === receipt.event_id);
    assert.equal(seen.length, 1, 'delivered once to JsonRecorder');
    return seen[0]!.json;
  }

  it('a builtin type with every field set: serde field order, whatever order the input had', async () => {
    // Keys deliberately given in reverse order.
    const input = {
      metadata: {
        source: 'login_handler',
        tenant_id: '7b0c3a52-3d5e-4f1a-9c2b-8e7d6f5a4b3c',
        user_id: '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c',
        causation_id: '01942f5e-0000-7000-8000-00000000c0de',
        correlation_id: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
      },
      payload: { device: { os: 'linux', trusted: true }, ips: ['10.0.0.1', '10.0.0.2'], n: 2.5, session_id: 's-42' },
      event_type: 'UserLoggedIn',
      timestamp: '2026-01-31T12:00:00.123Z',
      event_id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    } as const;
    const json = await deliveredJson(input as unknown as EventInput);
    assert.equal(
      json,
      '{"event_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",' +
        '"timestamp":"2026-01-31T12:00:00.123Z",' +
        '"event_type":"UserLoggedIn",' +
        '"payload":{"device":{"os":"linux","trusted":true},"ips":["10.0.0.1","10.0.0.2"],"n":2.5,"session_id":"s-42"},' +
        '"metadata":{"correlation_id":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",' +
        '"causation_id":"01942f5e-0000-7000-8000-00000000c0de",' +
        '"user_id":"3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c",' +
        '"tenant_id":"7b0c3a52-3d5e-4f1a-9c2b-8e7d6f5a4b3c",' +
        '"source":"login_handler"}}',
    );
  });

  it('Custom(String) as {"Custom":name}, None as null, a null payload as null', async () => {
    const json = await deliveredJson({
      event_id: '0190a1b2-c3d4-7e5f-8a9b-000000000002',
      timestamp: '2026-02-01T08:30:15.250Z',
      event_type: { Custom: 'PasswordChanged' },
      payload: null,
      metadata: { correlation_id: '0190a1b2-c3d4-7e5f-8a9b-0000000000c1', source: 'account_service' },
    });
    assert.equal(
      json,
      '{"event_id":"0190a1b2-c3d4-7e5f-8a9b-000000000002",' +
        '"timestamp":"2026-02-01T08:30:15.250Z",' +
        '"event_type":{"Custom":"PasswordChanged"},' +
        '"payload":null,' +
        '"metadata":{"correlation_id":"0190a1b2-c3d4-7e5f-8a9b-0000000000c1","causation_id":null,"user_id":null,"tenant_id":null,"source":"account_service"}}',
    );
  });

  it('explicit nulls stay null, and a left-out payload is {}', async () => {
    const json = await deliveredJson({
      event_id: '0190a1b2-c3d4-7e5f-8a9b-000000000003',
      timestamp: '2026-02-01T08:30:15.250Z',
      event_type: 'SessionExpired',
      metadata: {
        correlation_id: '0190a1b2-c3d4-7e5f-8a9b-0000000000c1',
        causation_id: null,
        user_id: null,
        tenant_id: null,
        source: 'reaper',
      },
    });
    assert.equal(
      json,
      '{"event_id":"0190a1b2-c3d4-7e5f-8a9b-000000000003","timestamp":"2026-02-01T08:30:15.250Z","event_type":"SessionExpired","payload":{},' +
        '"metadata":{"correlation_id":"0190a1b2-c3d4-7e5f-8a9b-0000000000c1","causation_id":null,"user_id":null,"tenant_id":null,"source":"reaper"}}',
    );
  });

  it('uuids are written in lowercase, as serde writes a Uuid', async () => {
    const json = await deliveredJson({
      event_id: '0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5C',
      timestamp: '2026-02-01T08:30:15.250Z',
      event_type: 'TokenRefreshed',
      payload: { token: 'ABC' },
      metadata: {
        correlation_id: 'A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D',
        causation_id: 'B1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D',
        user_id: 'C1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D',
        tenant_id: 'D1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D',
        source: 'Refresher',
      },
    });
    assert.equal(
      json,
      '{"event_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","timestamp":"2026-02-01T08:30:15.250Z","event_type":"TokenRefreshed","payload":{"token":"ABC"},' +
        '"metadata":{"correlation_id":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d","causation_id":"b1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",' +
        '"user_id":"c1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d","tenant_id":"d1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d","source":"Refresher"}}',
    );
  });

  it('the stored bytes decode to the same JSON (read back through a dead letter)', async () => {
    const input: EventInput = {
      event_id: '0190a1b2-c3d4-7e5f-8a9b-000000000004',
      timestamp: '2026-03-01T00:00:00.001Z',
      event_type: 'WorkflowFailed',
      payload: { fail: true, step: 3 },
      metadata: {
        correlation_id: '0190a1b2-c3d4-7e5f-8a9b-0000000000c4',
        user_id: '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c',
        source: 'workflow_engine',
      },
    };
    const expected =
      '{"event_id":"0190a1b2-c3d4-7e5f-8a9b-000000000004","timestamp":"2026-03-01T00:00:00.001Z","event_type":"WorkflowFailed","payload":{"fail":true,"step":3},' +
      '"metadata":{"correlation_id":"0190a1b2-c3d4-7e5f-8a9b-0000000000c4","causation_id":null,"user_id":"3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c","tenant_id":null,"source":"workflow_engine"}}';
    assert.equal(await deliveredJson(input), expected);
    const dead = await suite.bus.deadLetters.list({ eventId: input.event_id });
    assert.equal(dead.length, 1);
    assert.equal(JSON.stringify(dead[0]!.event), expected);
  });

  it('a timestamp with an offset is normalized to UTC without losing precision', async () => {
    const cases: Array<[given: string, serde: string]> = [
      ['2026-01-31T13:00:00.123+01:00', '2026-01-31T12:00:00.123Z'],
      ['2026-01-01T00:30:00.250+01:00', '2025-12-31T23:30:00.250Z'],
      ['2026-01-31T12:00:00.123456-02:30', '2026-01-31T14:30:00.123456Z'],
      ['2026-01-31T12:00:00.987654321+00:00', '2026-01-31T12:00:00.987654321Z'],
    ];
    for (const [given, serde] of cases) {
      const json = await deliveredJson({ timestamp: given, event_type: 'SessionCreated', metadata: { source: 'test' } });
      assert.equal((JSON.parse(json) as { timestamp: string }).timestamp, serde, `timestamp ${given}`);
    }
  });

  it('a timestamp is written as chrono writes DateTime<Utc>: "Z", and 0, 3, 6 or 9 fraction digits', async () => {
    const cases: Array<[given: string, serde: string]> = [
      ['2026-01-31T12:00:00Z', '2026-01-31T12:00:00Z'],
      ['2026-01-31T12:00:00.000Z', '2026-01-31T12:00:00Z'],
      ['2026-01-31T12:00:00.5Z', '2026-01-31T12:00:00.500Z'],
      ['2026-01-31T12:00:00.1234Z', '2026-01-31T12:00:00.123400Z'],
      ['2026-01-31T12:00:00.123000Z', '2026-01-31T12:00:00.123Z'],
      ['2026-01-31t12:00:00.123456789z', '2026-01-31T12:00:00.123456789Z'],
      ['2026-01-31T13:00:00+01:00', '2026-01-31T12:00:00Z'],
    ];
    for (const [given, serde] of cases) {
      const json = await deliveredJson({ timestamp: given, event_type: 'SessionCreated', metadata: { source: 'test' } });
      assert.equal((JSON.parse(json) as { timestamp: string }).timestamp, serde, `timestamp ${given}`);
    }
  });

  it('emit fills event_id (uuid v7), timestamp (now, UTC), correlation_id (a new uuid) and causation_id (null)', async () => {
    const before = Date.now();
    const a = await suite.bus.emit({ event_type: 'UserLoggedOut', metadata: { source: 'test' } });
    const b = await suite.bus.emit({ event_type: 'UserLoggedOut', metadata: { source: 'test' } });
    await suite.bus.flush();
    const afterMs = Date.now();
    assert.match(a.event_id, UUID_V7);
    assert.match(b.event_id, UUID_V7);
    for (const id of [a.event_id, b.event_id]) {
      // A v7 id starts with its creation time in ms.
      const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
      assert.ok(ms >= before && ms <= afterMs, `the id ${id} carries the time of the emit`);
    }
    const events = [a, b].map((r) => {
      const seen = linesOf<JsonDelivery>(suite.out.path, 'JsonRecorder').filter((d) => d.event_id === r.event_id);
      assert.equal(seen.length, 1);
      return JSON.parse(seen[0]!.json) as {
        event_id: string;
        timestamp: string;
        payload: unknown;
        metadata: { correlation_id: string; causation_id: null; user_id: null; tenant_id: null };
      };
    });
    for (const [i, e] of events.entries()) {
      assert.equal(e.event_id, [a, b][i]!.event_id, 'the receipt names the event');
      assert.match(e.timestamp, CHRONO_UTC);
      const ms = Date.parse(e.timestamp);
      assert.ok(ms >= before - 1 && ms <= afterMs + 1, `timestamp ${e.timestamp} is the time of the emit`);
      assert.match(e.metadata.correlation_id, UUID);
      assert.notEqual(e.metadata.correlation_id, e.event_id);
      assert.equal(e.metadata.causation_id, null);
      assert.equal(e.metadata.user_id, null);
      assert.equal(e.metadata.tenant_id, null);
      assert.deepEqual(e.payload, {});
    }
    assert.notEqual(events[0]!.metadata.correlation_id, events[1]!.metadata.correlation_id, 'each event starts its own correlation');
  });

  it('events handed to consumers are deeply frozen', async () => {
    const receipt = await suite.bus.emit({
      event_type: { Custom: 'Nested' },
      payload: { a: { b: [{ c: 1 }, [2, { d: 'x' }]] }, list: [{ e: null }] },
      metadata: { source: 'test', user_id: uuid() },
    });
    await suite.bus.flush();
    const seen = linesOf<JsonDelivery>(suite.out.path, 'JsonRecorder').filter((d) => d.event_id === receipt.event_id);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.deepFrozen, true, 'the event, its type, metadata and every nested payload object are frozen');
    assert.equal(seen[0]!.mutationThrew, true, 'changing a nested payload object throws');
  });

  it('the caller keeps a mutable input: emitting does not freeze or change it', async () => {
    const input = { event_type: { Custom: 'Mine' }, payload: { a: { b: 1 } }, metadata: { source: 'test' } };
    await suite.bus.emit(input);
    await suite.bus.flush();
    assert.equal(Object.isFrozen(input), false);
    assert.equal(Object.isFrozen(input.event_type), false);
    assert.equal(Object.isFrozen(input.payload.a), false);
    assert.deepEqual(input, { event_type: { Custom: 'Mine' }, payload: { a: { b: 1 } }, metadata: { source: 'test' } });
    // The same through the schema's path (a timestamp to normalise, uuids to lowercase): the event is built
    // from what validation made, never from the caller's objects.
    const upper = uuid().toUpperCase();
    const full = {
      event_type: 'UserLoggedIn',
      timestamp: '2026-01-31T13:00:00+01:00',
      payload: {},
      metadata: { source: 'test', user_id: upper },
    };
    const copy = structuredClone(full);
    await suite.bus.emit(full as EventInput);
    await suite.bus.flush();
    assert.deepEqual(full, copy);
  });
});
