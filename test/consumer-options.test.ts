/**
 * Per-consumer options: a `consumers` entry may be `{ module, options }`; the
 * options (JSON) reach the handler in its worker as ctx.options, frozen, and
 * a consumer given as a bare path gets `{}`. Bad entries are refused with
 * errors naming the field.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { createBus, InvalidOptionsError, type BusOptions } from '../src/index.js';
import type { OptionsLine } from './fixtures/options-recorder.js';
import { fixture, recorder, tempDir } from './helpers.js';

const dir = tempDir();
after(() => dir.remove());

const read = (path: string): OptionsLine[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as OptionsLine)
    : [];

describe('consumer options', () => {
  it('reach the handler in its worker as ctx.options, deeply frozen', async () => {
    const out = dir.file('options.jsonl');
    const options = { out, nested: { list: [1, 2, 3] }, label: 'a', flag: true, none: null };
    const bus = await createBus({
      store: { kind: 'none' },
      consumers: [{ module: fixture('options-recorder'), options }],
      pool: { maxThreads: 2 },
    });
    try {
      assert.deepEqual(bus.options.consumers, [{ module: fixture('options-recorder'), options }]);
      assert.ok(Object.isFrozen(bus.options.consumers[0]!.options), 'frozen in the resolved options too');
      await bus.emitMany(Array.from({ length: 5 }, () => ({ event_type: 'SessionCreated' as const, metadata: { source: 'test' } })));
      await bus.flush();
    } finally {
      await bus.close();
    }
    const lines = read(out);
    assert.equal(lines.length, 5);
    for (const line of lines) {
      assert.deepEqual(line.options, options);
      assert.equal(line.frozen, true);
      assert.equal(line.mutationThrew, true, 'ctx.options cannot be changed by a handler (modules are strict)');
    }
  });

  it('are {} for a consumer given as a bare path', async () => {
    const out = recorder(dir);
    // The Recorder fails deliveries whose options name no `out`: a bare path gets {} and so fails them.
    const bus = await createBus({
      store: { kind: 'none' },
      consumers: [fixture('recorder')],
      pool: { maxThreads: 1 },
      delivery: { maxAttempts: 1 },
    });
    try {
      assert.deepEqual(bus.options.consumers, [{ module: fixture('recorder'), options: {} }]);
      await bus.emit({ event_type: 'SessionCreated', metadata: { source: 'test' } });
      await bus.flush();
      assert.equal(out.read().length, 0);
      const dead = await bus.deadLetters.list();
      assert.equal(dead.length, 1);
      assert.match(dead[0]!.error.message, /options\.out is not set/);
    } finally {
      await bus.close();
    }
  });

  const INVALID: Array<[string, unknown, string[]]> = [
    ['an entry that is neither a path nor an object', [42], ['consumers.0', '42', 'module']],
    ['an entry with no module', [{ options: {} }], ['consumers.0.module', 'module path or URL']],
    ['an empty module', [{ module: '' }], ['consumers.0.module', '""']],
    ['an unknown field in an entry', [{ module: 'x.js', option: {} }], ['consumers.0', '`option`']],
    ['options that are not an object', [{ module: 'x.js', options: [1] }], ['consumers.0.options', 'an array']],
    [
      'a function in the options',
      ['y.js', { module: 'x.js', options: { retry: { on: () => 1 } } }],
      ['consumers.1.options.retry.on', 'JSON', 'a function'],
    ],
    ['a number that is not JSON', [{ module: 'x.js', options: { n: Number.NaN } }], ['consumers.0.options.n', 'NaN']],
    ['an object that is not plain', [{ module: 'x.js', options: { when: new Date(0) } }], ['consumers.0.options.when', 'not plain']],
  ];
  for (const [name, consumers, mentions] of INVALID) {
    it(`are refused: ${name}`, async () => {
      await assert.rejects(createBus({ store: { kind: 'none' }, consumers } as BusOptions), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionsError, `an InvalidOptionsError, got ${String(err)}`);
        for (const m of mentions) assert.ok(err.message.includes(m), `the message names ${m}: ${err.message}`);
        return true;
      });
    });
  }
});
