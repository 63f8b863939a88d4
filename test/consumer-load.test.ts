/**
 * Consumer modules are checked when the bus starts: a module that cannot be
 * loaded, is not a consumer, or reuses a name makes createBus reject with a
 * ConsumerLoadError naming the module. defineConsumer checks its argument.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConsumerLoadError, createBus, defineConsumer, InvalidConsumerError, isConsumer, type ConsumerDefinition } from '../src/index.js';
import { fixture, recorder, tempDir } from './helpers.js';

const loadFailure = (path: string, detail: RegExp) => (err: unknown) => {
  assert.ok(err instanceof ConsumerLoadError, `a ConsumerLoadError, got ${String(err)}`);
  assert.equal(err.code, 'ERR_EVENTRAIL_CONSUMER_LOAD');
  assert.ok(err.message.includes(path), `the message names ${path}: ${err.message}`);
  assert.ok(err.specifier.includes(path), `the specifier names ${path}: ${err.specifier}`);
  assert.match(err.message, detail);
  return true;
};

describe('loading consumer modules', () => {
  it('a missing module', async () => {
    const missing = fixture('does-not-exist');
    await assert.rejects(
      createBus({ store: { kind: 'none' }, consumers: [fixture('recorder'), missing], pool: { maxThreads: 1 } }),
      loadFailure(missing, /could not be loaded/),
    );
  });

  it('a module whose top level throws', async () => {
    const path = fixture('throws-on-load');
    await assert.rejects(
      createBus({ store: { kind: 'none' }, consumers: [path], pool: { maxThreads: 1 } }),
      loadFailure(path, /this module fails to load/),
    );
  });

  it('a module without a consumer as its default export', async () => {
    const path = fixture('no-default');
    await assert.rejects(
      createBus({ store: { kind: 'none' }, consumers: [fixture('recorder'), path], pool: { maxThreads: 1 } }),
      loadFailure(path, /default export/),
    );
  });

  it('two modules declaring the same consumer name', async () => {
    const twin = fixture('recorder-twin');
    await assert.rejects(
      createBus({ store: { kind: 'none' }, consumers: [fixture('recorder'), twin], pool: { maxThreads: 1 } }),
      loadFailure(twin, /"Recorder"/),
    );
  });

  it('the same module listed twice', async () => {
    const path = fixture('recorder');
    await assert.rejects(
      createBus({ store: { kind: 'none' }, consumers: [path, path], pool: { maxThreads: 1 } }),
      loadFailure(path, /"Recorder"/),
    );
  });

  it('a failed start leaves nothing running: a good bus starts and works afterwards', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    await assert.rejects(
      createBus({ store: { kind: 'none' }, consumers: [fixture('throws-on-load')], pool: { maxThreads: 2 } }),
      ConsumerLoadError,
    );
    const bus = await createBus({ store: { kind: 'none' }, consumers: [out.consumer('recorder')], pool: { maxThreads: 1 } });
    try {
      const r = await bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } });
      await bus.flush();
      assert.deepEqual(
        out.read().map((d) => d.event_id),
        [r.event_id],
      );
    } finally {
      await bus.close();
      dir.remove();
    }
  });
});

describe('defineConsumer', () => {
  const ok: ConsumerDefinition = { name: 'Good', eventTypes: ['UserLoggedIn'], handle() {} };

  const INVALID: Array<[what: string, definition: unknown, mentions: RegExp]> = [
    ['null', null, /name, eventTypes, handle/],
    ['a function', () => undefined, /name, eventTypes, handle/],
    ['an empty name', { ...ok, name: '' }, /name/],
    ['a name with a space', { ...ok, name: 'Audit Logger' }, /name.*"Audit Logger"/],
    ['a name starting with a digit', { ...ok, name: '9lives' }, /name/],
    ['a name that is not a string', { ...ok, name: 42 }, /name/],
    ['a name over 128 characters', { ...ok, name: 'A'.repeat(129) }, /name/],
    ['no eventTypes', { name: 'X', handle() {} }, /eventTypes/],
    ['empty eventTypes', { ...ok, eventTypes: [] }, /eventTypes/],
    ["eventTypes 'all'", { ...ok, eventTypes: 'all' }, /eventTypes/],
    ['an unknown event type', { ...ok, eventTypes: ['UserLoggedIn', 'UserSignedUp'] }, /UserSignedUp/],
    ['{ Custom: 1 }', { ...ok, eventTypes: [{ Custom: 1 }] }, /Custom/],
    ['no handle', { name: 'X', eventTypes: '*' }, /handle/],
    ['a handle that is not a function', { ...ok, handle: 'run' }, /handle/],
  ];

  for (const [what, definition, mentions] of INVALID) {
    it(`throws InvalidConsumerError for ${what}`, () => {
      assert.throws(
        () => defineConsumer(definition as ConsumerDefinition),
        (err: unknown) => {
          assert.ok(err instanceof InvalidConsumerError, `an InvalidConsumerError, got ${String(err)}`);
          assert.equal(err.code, 'ERR_EVENTRAIL_INVALID_CONSUMER');
          assert.match(err.message, mentions);
          return true;
        },
      );
    });
  }

  it('returns a frozen consumer for a valid definition', () => {
    const types = ['UserLoggedIn', { Custom: 'Audited' }] as const;
    const consumer = defineConsumer({ name: 'Audit.Logger:v2-x', eventTypes: [...types], handle() {} });
    assert.equal(isConsumer(consumer), true);
    assert.equal(isConsumer({ ...ok }), false);
    assert.ok(Object.isFrozen(consumer));
    assert.ok(Object.isFrozen(consumer.eventTypes));
    assert.deepEqual(consumer.eventTypes, types);
    assert.equal(defineConsumer({ name: '_all', eventTypes: '*', handle() {} }).eventTypes, '*');
  });
});
