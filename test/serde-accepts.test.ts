/**
 * What the seed's Rust types accept, eventrail accepts too (see the README's
 * interop section): empty `source` and `Custom` names, leap seconds, chrono's
 * extended years, a payload key `__proto__` (kept as data, in objects without
 * a prototype, from emit through the store to a consumer in a worker), bigints
 * within 64 bits (handed back as bigints), and -0.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLI } from './fixtures/cli-run.js';
import { InvalidEventError, toSerdeJson, type Event } from '../src/index.js';
import { toUtcTimestamp } from '../src/event/timestamp.js';
import type { SerdeDelivery } from './fixtures/serde-recorder.js';
import { fixture, linesOf, tempDir, withBus } from './helpers.js';

describe('what serde accepts', () => {
  it('normalises leap seconds and extended years as chrono writes them', () => {
    assert.equal(toUtcTimestamp('2026-12-31T23:59:60.5Z'), '2026-12-31T23:59:60.500Z');
    assert.equal(toUtcTimestamp('2026-01-01T00:59:60.5+01:00'), '2025-12-31T23:59:60.500Z');
    assert.equal(toUtcTimestamp('+10000-01-01T00:00:00Z'), '+10000-01-01T00:00:00Z');
    assert.equal(toUtcTimestamp('9999-12-31T23:00:00-05:00'), '+10000-01-01T04:00:00Z');
    assert.equal(toUtcTimestamp('0001-01-01T00:00:00+01:00'), '0000-12-31T23:00:00Z');
    assert.equal(toUtcTimestamp('-0001-01-01T00:00:00Z'), '-0001-01-01T00:00:00Z');
    assert.equal(toUtcTimestamp('+262143-12-31T23:59:59Z'), '+262143-12-31T23:59:59Z');
    assert.equal(toUtcTimestamp('+262144-01-01T00:00:00Z'), null, "beyond chrono's range");
    assert.equal(toUtcTimestamp('10000-01-01T00:00:00Z'), null, 'five digits need a sign');
    assert.equal(toUtcTimestamp('2026-01-01T00:00:61Z'), null);
  });

  it('stores and delivers them unchanged, __proto__ as data and bigints as bigints', async () => {
    const payload = JSON.parse('{"__proto__":{"polluted":true},"list":[{"__proto__":1}]}') as Record<string, unknown>;
    payload.big = 18446744073709551615n;
    payload.small = -9223372036854775808n;
    payload.negativeZero = -0;
    await withBus(
      (dir) => ({ store: { kind: 'lmdb', path: dir.file('store') }, consumers: [fixture('serde-recorder')] }),
      async ({ bus, out }) => {
        const receipt = await bus.emit({
          timestamp: '+10000-01-01T00:00:60.25Z',
          event_type: { Custom: '' },
          payload: payload as never,
          metadata: { source: '' },
        });
        await bus.flush();
        const replayed: Event[] = [];
        for await (const e of bus.replay()) replayed.push(e);
        assert.equal(replayed.length, 1);
        const event = replayed[0]!;
        assert.equal(event.event_id, receipt.event_id);
        assert.equal(event.timestamp, '+10000-01-01T00:00:60.250Z');
        assert.deepEqual(event.event_type, { Custom: '' });
        assert.equal(event.metadata.source, '');
        const p = event.payload as Record<string, unknown>;
        assert.equal(Object.getPrototypeOf(p), null, 'an object holding __proto__ has no prototype');
        assert.deepEqual(Object.keys(p), ['__proto__', 'list', 'big', 'small', 'negativeZero']);
        assert.equal(({} as { polluted?: boolean }).polluted, undefined, 'no prototype was touched');
        assert.equal(p.big, 18446744073709551615n);
        assert.equal(p.small, -9223372036854775808n);
        assert.ok(Object.is(p.negativeZero, -0));
        const line = toSerdeJson(event);
        assert.ok(
          line.includes(
            '"payload":{"__proto__":{"polluted":true},"big":18446744073709551615,"list":[{"__proto__":1}],"negativeZero":-0.0,"small":-9223372036854775808}',
          ),
          line,
        );
        const delivered = linesOf<SerdeDelivery>(out.path, 'SerdeRecorder');
        assert.deepEqual(
          delivered.map((d) => d.serde),
          [line],
          'the consumer in the worker saw the same values',
        );
      },
    );
  });

  it('rejects an integer in JSON text that would change, with its own code', async () => {
    await withBus({ store: { kind: 'none' } }, async ({ bus }) => {
      const text = '{"event_type":"UserLoggedIn","payload":{"n":99999999999999999999},"metadata":{"source":"x"}}';
      await assert.rejects(bus.emitJson(text), { code: 'ERR_EVENTRAIL_INEXACT_NUMBER', name: 'InexactNumberError' });
      await assert.rejects(bus.emitJson('{"event_type":'), (err) => err instanceof InvalidEventError);
      await assert.rejects(
        bus.emitJson('{"event_type":"UserLoggedIn","event_type":"UserLoggedIn","metadata":{"source":"x"}}'),
        /duplicate field `event_type`/,
      );
      const r = await bus.emitJson('{"event_type":"UserLoggedIn","payload":{"n":9007199254740993,"m":[1,1]},"metadata":{"source":"x"}}');
      assert.equal(r.duplicate, false);
      // Counted as every refused emit is, by code.
      const metrics = await bus.metrics();
      assert.match(metrics, /eventrail_emits_rejected_total\{code="ERR_EVENTRAIL_INEXACT_NUMBER"\} 1/);
      assert.match(metrics, /eventrail_emits_rejected_total\{code="ERR_EVENTRAIL_INVALID_EVENT"\} 2/);
      await bus.close();
      // A closed bus says so before it reads the text.
      await assert.rejects(bus.emitJson('{"event_type":'), { code: 'ERR_EVENTRAIL_CLOSED' });
    });
  });

  it('eventrail emit: NDJSON on stdin, receipts on stdout, rejected lines on stderr with their code', () => {
    const dir = tempDir('eventrail-emit-');
    try {
      const store = dir.file('store');
      const id = '0190a5b4-7c3e-7abc-8def-0123456789ab';
      const good = `{"event_id":"${id}","timestamp":"2026-12-31T23:59:60.500Z","event_type":{"Custom":""},"payload":{"b":[9007199254740993,-0.0,1e16],"a":"\\u00e9"},"metadata":{"correlation_id":"${id}","causation_id":null,"user_id":null,"tenant_id":null,"source":""}}`;
      const input = [good, '', '{"event_type":"UserLoggedIn","payload":[18446744073709551616],"metadata":{"source":"x"}}', 'not json'].join(
        '\n',
      );
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EVENTRAIL_')));
      const r = spawnSync(process.execPath, [CLI, 'emit', '--store', store], { input, encoding: 'utf8', env });
      assert.equal(r.status, 1, r.stderr);
      const receipts = r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { line: number; event_id: string });
      assert.deepEqual(
        receipts.map((x) => [x.line, x.event_id]),
        [[1, id]],
      );
      assert.match(r.stderr, /line 3: ERR_EVENTRAIL_INEXACT_NUMBER/);
      assert.match(r.stderr, /line 4: ERR_EVENTRAIL_INVALID_EVENT/);
      const replay = spawnSync(process.execPath, [CLI, 'replay', '--store', store], { encoding: 'utf8', env });
      assert.equal(replay.status, 0, replay.stderr);
      assert.equal(
        replay.stdout,
        `{"event_id":"${id}","timestamp":"2026-12-31T23:59:60.500Z","event_type":{"Custom":""},"payload":{"a":"é","b":[9007199254740993,-0.0,1e16]},"metadata":{"correlation_id":"${id}","causation_id":null,"user_id":null,"tenant_id":null,"source":""}}\n`,
      );
    } finally {
      dir.remove();
    }
  });
});
